//! The `ollama` and `vllm` runtimes: both serve an OpenAI-compatible
//! `POST /v1/chat/completions`, called here with `stream: true`; every `data:` event's delta is
//! forwarded the moment it is read. Health and model discovery use each runtime's own
//! endpoints: Ollama `GET /api/version` and `GET /api/tags`, vLLM `GET /v1/models`.
//!
//! Failures map to `job_error` codes: 404 → `MODEL_NOT_FOUND`; connection refused →
//! `RUNTIME_DOWN`; no answer (or no next piece) within the idle timeout → `TIMEOUT`; a
//! malformed event, a stream cut before `[DONE]` or another non-2xx status → `BAD_RESPONSE`.

use std::error::Error as _;
use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde::Deserialize as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::sse::SseReader;
use super::text::{messages, prompt_words};
use super::{Backend, Completion, Health, RuntimeError, cancellable};
use crate::domain::{Runtime, Usage};

/// The longest wait for the response headers and between two streamed pieces.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_mins(2);
/// The longest wait for a health or model-list answer.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Upstream error texts are cut to this many characters in our messages.
const MAX_UPSTREAM_TEXT: usize = 300;

/// Which OpenAI-compatible server this is (they differ in health and model discovery only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Ollama,
    Vllm,
}

impl Flavor {
    pub fn runtime(self) -> Runtime {
        match self {
            Self::Ollama => Runtime::Ollama,
            Self::Vllm => Runtime::Vllm,
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.runtime().as_str())
    }
}

/// An Ollama or vLLM server at `base` (e.g. `http://127.0.0.1:11434`).
#[derive(Debug, Clone)]
pub struct OpenAiBackend {
    flavor: Flavor,
    base: String,
    /// `{base}/v1/chat/completions`, parsed once (a job should not re-parse its URL).
    chat_url: Url,
    client: reqwest::Client,
    idle_timeout: Duration,
    probe_timeout: Duration,
}

impl OpenAiBackend {
    pub fn new(flavor: Flavor, base: &Url, idle_timeout: Duration) -> Result<Self, RuntimeError> {
        let client = crate::http::client_builder(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| RuntimeError::Down {
                runtime: flavor.runtime(),
                reason: format!("cannot build an HTTP client: {}", chain(&e)),
            })?;
        let base = base.as_str().trim_end_matches('/').to_owned();
        let chat_url =
            Url::parse(&format!("{base}/v1/chat/completions")).map_err(|e| RuntimeError::Down {
                runtime: flavor.runtime(),
                reason: format!("`{base}` cannot form a chat URL: {e}"),
            })?;
        Ok(Self {
            flavor,
            base,
            chat_url,
            client,
            idle_timeout,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
        })
    }

    /// Another limit for health and model-list probes.
    #[must_use]
    pub fn with_probe_timeout(mut self, probe_timeout: Duration) -> Self {
        self.probe_timeout = probe_timeout;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn rt(&self) -> Runtime {
        self.flavor.runtime()
    }

    fn bad(&self, reason: impl Into<String>) -> RuntimeError {
        RuntimeError::BadResponse {
            runtime: self.rt(),
            reason: reason.into(),
        }
    }

    fn timed_out(&self, after: Duration) -> RuntimeError {
        RuntimeError::Timeout {
            runtime: self.rt(),
            after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// A reqwest failure before or while reading a response.
    fn transport(&self, e: &reqwest::Error, reading: bool) -> RuntimeError {
        if e.is_timeout() {
            self.timed_out(self.idle_timeout)
        } else if reading && !e.is_connect() {
            self.bad(format!("the connection broke mid-answer: {}", chain(e)))
        } else {
            RuntimeError::Down {
                runtime: self.rt(),
                reason: format!("cannot connect to {}: {}", self.base, chain(e)),
            }
        }
    }

    async fn get_json(&self, path: &str) -> Result<Value, RuntimeError> {
        let fetch = async {
            let resp = self
                .client
                .get(self.url(path))
                .send()
                .await
                .map_err(|e| self.transport(&e, false))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(self.bad(format!("GET {path} answered HTTP {status}")));
            }
            resp.json::<Value>()
                .await
                .map_err(|e| self.bad(format!("GET {path} is not JSON: {}", chain(&e))))
        };
        timeout(self.probe_timeout, fetch)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(self.probe_timeout)))
    }

    async fn probe(&self) -> Health {
        let result = match self.flavor {
            Flavor::Ollama => self.get_json("/api/version").await.map(|v| {
                let version = v.get("version").and_then(Value::as_str).unwrap_or("?");
                format!("ollama {version}")
            }),
            Flavor::Vllm => self
                .list_models()
                .await
                .map(|m| format!("vllm serving {} model(s)", m.len())),
        };
        match result {
            Ok(detail) => Health::up(detail),
            Err(e) => Health::down(e.to_string()),
        }
    }

    async fn list_models(&self) -> Result<Vec<String>, RuntimeError> {
        let (path, list, key) = match self.flavor {
            Flavor::Ollama => ("/api/tags", "models", "name"),
            Flavor::Vllm => ("/v1/models", "data", "id"),
        };
        let body = self.get_json(path).await?;
        let items = body
            .get(list)
            .and_then(Value::as_array)
            .ok_or_else(|| self.bad(format!("GET {path} has no `{list}` array")))?;
        Ok(items
            .iter()
            .filter_map(|m| m.get(key).and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    async fn stream(
        &self,
        model: &str,
        request: &Value,
        chunks: mpsc::Sender<String>,
    ) -> Result<Completion, RuntimeError> {
        let prompt_estimate = prompt_words(messages(request)?);
        let mut body = request.clone();
        if let Some(object) = body.as_object_mut() {
            object.insert("model".into(), Value::String(model.to_owned()));
            object.insert("stream".into(), Value::Bool(true));
            object.insert("stream_options".into(), json!({"include_usage": true}));
        }
        let send = self.client.post(self.chat_url.clone()).json(&body).send();
        let resp = timeout(self.idle_timeout, send)
            .await
            .map_err(|_| self.timed_out(self.idle_timeout))?
            .map_err(|e| self.transport(&e, false))?;
        let status = resp.status();
        if !status.is_success() {
            let text = timeout(self.probe_timeout, resp.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(self.status_error(status, model, &text));
        }
        let mut state = StreamState::default();
        let mut reader = SseReader::default();
        let mut bytes = resp.bytes_stream();
        loop {
            let next = timeout(self.idle_timeout, bytes.next())
                .await
                .map_err(|_| self.timed_out(self.idle_timeout))?;
            let (events, eof) = if let Some(read) = next {
                let read = read.map_err(|e| self.transport(&e, true))?;
                let events = reader.push(&read).map_err(|e| self.bad(e.to_string()))?;
                (events, false)
            } else {
                let last = reader.finish().map_err(|e| self.bad(e.to_string()))?;
                (last.into_iter().collect(), true)
            };
            for data in events {
                if let Some(delta) = self.event(&data, model, &mut state)? {
                    chunks
                        .send(delta)
                        .await
                        .map_err(|_| RuntimeError::Cancelled)?;
                }
                if state.done {
                    break;
                }
            }
            if state.done {
                break;
            }
            if eof {
                return Err(self.bad("the stream ended before `data: [DONE]`"));
            }
        }
        Ok(Completion {
            output: state.output,
            usage: state.usage.unwrap_or(Usage {
                prompt_tokens: prompt_estimate,
                completion_tokens: state.pieces,
            }),
            simulated: false,
        })
    }

    /// Handles one event's data; returns the delta to forward, if any.
    fn event(
        &self,
        data: &str,
        model: &str,
        state: &mut StreamState,
    ) -> Result<Option<String>, RuntimeError> {
        if data.trim() == "[DONE]" {
            state.done = true;
            return Ok(None);
        }
        // The common chunk, read without building a JSON tree; anything unusual (an error,
        // an odd shape) takes the general path below, which decides exactly as before.
        // (An object only: serde would also read a struct from an array.)
        if data.trim_start().starts_with('{')
            && let Ok(chunk) = serde_json::from_str::<FastChunk<'_>>(data)
            && !chunk.error
        {
            if let Some(usage) = chunk.usage {
                state.usage = Some(Usage {
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                });
            }
            let delta = chunk
                .choices
                .and_then(|c| c.into_iter().next())
                .and_then(|c| c.delta)
                .and_then(|d| d.content)
                .filter(|d| !d.is_empty());
            return Ok(delta.map(|d| {
                state.output.push_str(&d);
                state.pieces += 1;
                d.into_owned()
            }));
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| self.bad(format!("a streamed chunk is not JSON ({e})")))?;
        let Some(object) = chunk.as_object() else {
            return Err(self.bad("a streamed chunk is not a JSON object"));
        };
        if let Some(error) = object.get("error") {
            let text = upstream_text(error);
            return Err(if says_model_missing(&text) {
                self.model_missing(model)
            } else {
                self.bad(format!("the runtime reported an error mid-stream: {text}"))
            });
        }
        if let Some(usage) = object.get("usage").filter(|u| !u.is_null()) {
            let count = |k: &str| usage.get(k).and_then(Value::as_u64);
            match (count("prompt_tokens"), count("completion_tokens")) {
                (Some(prompt_tokens), Some(completion_tokens)) => {
                    state.usage = Some(Usage {
                        prompt_tokens,
                        completion_tokens,
                    });
                }
                _ => return Err(self.bad("a streamed chunk has a malformed `usage`")),
            }
        }
        let delta = match object.get("choices") {
            None => None,
            Some(Value::Array(choices)) => choices
                .first()
                .and_then(|c| c.pointer("/delta/content"))
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty()),
            Some(_) => return Err(self.bad("a streamed chunk's `choices` is not an array")),
        };
        Ok(delta.map(|d| {
            state.output.push_str(d);
            state.pieces += 1;
            d.to_owned()
        }))
    }

    fn model_missing(&self, model: &str) -> RuntimeError {
        RuntimeError::ModelNotFound {
            runtime: self.rt(),
            model: model.to_owned(),
        }
    }

    fn status_error(&self, status: reqwest::StatusCode, model: &str, body: &str) -> RuntimeError {
        let text = serde_json::from_str::<Value>(body)
            .map_or_else(|_| cut(body.trim()), |v| upstream_text(&v));
        match status.as_u16() {
            404 => self.model_missing(model),
            400 | 422 if says_model_missing(&text) => self.model_missing(model),
            400 | 422 => RuntimeError::bad_request(format!(
                "the {} runtime refused the request (HTTP {status}): {text}",
                self.flavor
            )),
            _ => self.bad(format!("HTTP {status}: {text}")),
        }
    }
}

/// The usual streamed chunk, borrowed from the event's text where it can be. Fields absent or
/// `null` read as `None`; a field of another type fails the read (the general path decides).
#[derive(Debug, serde::Deserialize)]
struct FastChunk<'a> {
    /// Only tells that an `error` member is there (whatever it holds); the general path
    /// reads it.
    #[serde(default, deserialize_with = "present")]
    error: bool,
    #[serde(default)]
    usage: Option<FastUsage>,
    /// Present means an array: `null` fails the read, as the general path refuses it.
    #[serde(default, borrow, deserialize_with = "array")]
    choices: Option<Vec<FastChoice<'a>>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

fn array<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Vec::<T>::deserialize(d).map(Some)
}

#[derive(Debug, serde::Deserialize)]
struct FastUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

#[derive(Debug, serde::Deserialize)]
struct FastChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<FastDelta<'a>>,
}

#[derive(Debug, serde::Deserialize)]
struct FastDelta<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
}

/// What a stream has produced so far.
#[derive(Debug, Default)]
struct StreamState {
    output: String,
    usage: Option<Usage>,
    pieces: u64,
    done: bool,
}

/// The readable text of an upstream error value (`{"error":{"message"}}`, `{"message"}`,
/// `{"detail"}` or a string), cut to a bounded length.
fn upstream_text(v: &Value) -> String {
    let text = ["/error/message", "/message", "/error", "/detail"]
        .iter()
        .find_map(|p| v.pointer(p).and_then(Value::as_str))
        .or_else(|| v.as_str())
        .map_or_else(|| v.to_string(), str::to_owned);
    cut(&text)
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_UPSTREAM_TEXT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn says_model_missing(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("model") && (t.contains("not found") || t.contains("does not exist"))
}

/// A reqwest error's causes, without the URL-laden top line when there are causes.
fn chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

impl Backend for OpenAiBackend {
    fn runtime(&self) -> Runtime {
        self.rt()
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        self.probe().boxed()
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<String>, RuntimeError>> {
        self.list_models().boxed()
    }

    fn chat<'a>(
        &'a self,
        model: &'a str,
        request: &'a Value,
        chunks: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Completion, RuntimeError>> {
        async move { cancellable(&cancel, self.stream(model, request, chunks)).await }.boxed()
    }
}

#[cfg(test)]
mod fast_chunk_tests {
    use super::*;
    use crate::wire::JobErrorCode;

    /// The fast read of the usual chunk decides exactly as the general path: the same delta, the
    /// same usage, and every odd shape refused or ignored as before.
    #[test]
    fn odd_chunks_are_decided_as_the_general_path_decides() {
        let b = OpenAiBackend::new(
            Flavor::Vllm,
            &Url::parse("http://127.0.0.1:9").unwrap(),
            Duration::from_secs(1),
        )
        .unwrap();
        let decide = |data: &str| {
            let mut state = StreamState::default();
            let out = b.event(data, "m", &mut state).map_err(|e| e.code());
            (out, state.usage)
        };
        let usage = |p, c| {
            Some(crate::domain::Usage {
                prompt_tokens: p,
                completion_tokens: c,
            })
        };
        let bad = || Err(JobErrorCode::BadResponse);
        for (data, expected) in [
            (
                r#"{"choices":[{"delta":{"content":"hi"}}]}"#,
                (Ok(Some("hi".to_owned())), None),
            ),
            (
                r#"{"choices":[{"delta":{"content":"a\nb"}}]}"#,
                (Ok(Some("a\nb".to_owned())), None),
            ),
            (
                r#"{"choices":[{"delta":{"content":""}}]}"#,
                (Ok(None), None),
            ),
            (r#"{"choices":[{"delta":{"content":5}}]}"#, (Ok(None), None)),
            (r#"{"choices":[{"delta":"x"}]}"#, (Ok(None), None)),
            (r#"{"choices":[null]}"#, (Ok(None), None)),
            (r#"{"choices":[]}"#, (Ok(None), None)),
            (r"{}", (Ok(None), None)),
            (
                r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
                (Ok(None), usage(3, 4)),
            ),
            (r#"{"choices":[],"usage":null}"#, (Ok(None), None)),
            (r#"{"choices":null}"#, (bad(), None)),
            (r#"{"choices":{}}"#, (bad(), None)),
            (r#"{"usage":{"prompt_tokens":3}}"#, (bad(), None)),
            (
                r#"{"usage":{"prompt_tokens":-1,"completion_tokens":1}}"#,
                (bad(), None),
            ),
            (r#"{"error":null}"#, (bad(), None)),
            (
                r#"{"error":{"message":"overloaded"},"choices":[]}"#,
                (bad(), None),
            ),
            (r#"[{"choices":[]}]"#, (bad(), None)),
            (r"{not json", (bad(), None)),
        ] {
            assert_eq!(decide(data), expected, "{data}");
        }
    }
}
