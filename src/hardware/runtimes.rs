//! Inference runtimes over HTTP: Ollama (`/api/version`, `/api/tags`) and vLLM or any
//! OpenAI-compatible server (`/v1/models`, plus vLLM's `/version`). Each probe tells apart
//! nothing listening, no answer in time, a bad HTTP status and a body that is not the JSON
//! expected, and never takes longer than its timeout.

use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use super::exec;
use super::report::{ModelEntry, RuntimeState, RuntimeStatus};

#[derive(Deserialize)]
struct OllamaVersion {
    version: String,
}

#[derive(Deserialize)]
struct OllamaTags {
    models: Vec<OllamaModel>,
}

#[derive(Deserialize)]
struct OllamaModel {
    name: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    details: Option<OllamaDetails>,
}

#[derive(Deserialize)]
struct OllamaDetails {
    #[serde(default)]
    parameter_size: Option<String>,
    #[serde(default)]
    quantization_level: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiModels {
    data: Vec<OpenAiModel>,
}

#[derive(Deserialize)]
struct OpenAiModel {
    id: String,
    #[serde(default)]
    max_model_len: Option<u64>,
}

/// Models from an Ollama `/api/tags` body.
pub fn parse_ollama_tags(body: &[u8]) -> Result<Vec<ModelEntry>, serde_json::Error> {
    let tags: OllamaTags = serde_json::from_slice(body)?;
    Ok(tags
        .models
        .into_iter()
        .map(|m| {
            let details = m.details;
            ModelEntry {
                name: m.name,
                size_mib: m.size.map(exec::bytes_to_mib),
                parameter_size: details
                    .as_ref()
                    .and_then(|d| d.parameter_size.clone())
                    .filter(|s| !s.is_empty()),
                quantization: details
                    .and_then(|d| d.quantization_level)
                    .filter(|s| !s.is_empty()),
                max_model_len: None,
            }
        })
        .collect())
}

/// Models from an OpenAI-compatible `/v1/models` body.
pub fn parse_openai_models(body: &[u8]) -> Result<Vec<ModelEntry>, serde_json::Error> {
    let models: OpenAiModels = serde_json::from_slice(body)?;
    Ok(models
        .data
        .into_iter()
        .map(|m| ModelEntry {
            name: m.id,
            max_model_len: m.max_model_len,
            ..ModelEntry::default()
        })
        .collect())
}

/// A failed request, classified.
struct Failure {
    state: RuntimeState,
    http_status: Option<u16>,
    detail: String,
}

fn classify(err: &reqwest::Error) -> Failure {
    let state = if err.is_timeout() {
        RuntimeState::Timeout
    } else if err.is_connect() {
        RuntimeState::Down
    } else {
        RuntimeState::Error
    };
    Failure {
        state,
        http_status: None,
        detail: error_chain(err),
    }
}

/// The error and its sources, innermost last, without repeats: `error sending request: …:
/// Connection refused (os error 111)`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    exec::truncate(&parts.join(": "), 300)
}

/// GETs `url` and returns the body of a 2xx answer.
async fn get(client: &reqwest::Client, url: Url) -> Result<Vec<u8>, Failure> {
    let resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Failure {
            state: RuntimeState::BadStatus,
            http_status: Some(status.as_u16()),
            detail: format!("GET {} answered HTTP {status}", url.path()),
        });
    }
    resp.bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| classify(&e))
}

fn malformed(path: &str, e: &serde_json::Error) -> Failure {
    Failure {
        state: RuntimeState::Malformed,
        http_status: None,
        detail: format!("GET {path}: not the expected JSON: {e}"),
    }
}

fn client(base: &Url, timeout: Duration) -> Result<reqwest::Client, Failure> {
    let mut builder = crate::http::client_builder(timeout).timeout(timeout);
    // A local runtime must not be reached through an HTTP(S)_PROXY from the environment.
    let loopback = match base.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if loopback {
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| Failure {
        state: RuntimeState::Error,
        http_status: None,
        detail: error_chain(&e),
    })
}

/// `base` with a trailing slash so `join` appends instead of replacing the last segment.
fn dir_url(base: &Url) -> Url {
    let mut u = base.clone();
    if !u.path().ends_with('/') {
        let path = format!("{}/", u.path());
        u.set_path(&path);
    }
    u
}

fn join(base: &Url, path: &str) -> Result<Url, Failure> {
    dir_url(base).join(path).map_err(|e| Failure {
        state: RuntimeState::Error,
        http_status: None,
        detail: format!("bad URL {base}: {e}"),
    })
}

fn finish(
    base: &Url,
    start: Instant,
    res: Result<(Option<String>, Vec<ModelEntry>), Failure>,
) -> RuntimeStatus {
    let mut status = RuntimeStatus {
        url: base.to_string(),
        state: RuntimeState::Up,
        version: None,
        models: Vec::new(),
        http_status: None,
        detail: None,
        ms: 0,
    };
    match res {
        Ok((version, models)) => {
            status.version = version;
            status.models = models;
        }
        Err(f) => {
            status.state = f.state;
            status.http_status = f.http_status;
            status.detail = Some(f.detail);
        }
    }
    status.ms = exec::elapsed_ms(start);
    status
}

fn timed_out(timeout: Duration) -> Failure {
    Failure {
        state: RuntimeState::Timeout,
        http_status: None,
        detail: format!("no answer within {} ms", timeout.as_millis()),
    }
}

/// Probes Ollama at `base` (e.g. `http://127.0.0.1:11434`): version and pulled models.
pub async fn probe_ollama(base: &Url, timeout: Duration) -> RuntimeStatus {
    let start = Instant::now();
    let work = async {
        let client = client(base, timeout)?;
        let (version, tags) = tokio::join!(
            get(&client, join(base, "api/version")?),
            get(&client, join(base, "api/tags")?)
        );
        let version: OllamaVersion =
            serde_json::from_slice(&version?).map_err(|e| malformed("/api/version", &e))?;
        let models = parse_ollama_tags(&tags?).map_err(|e| malformed("/api/tags", &e))?;
        Ok((Some(version.version), models))
    };
    let res = tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(timed_out(timeout)));
    finish(base, start, res)
}

/// Probes vLLM or any OpenAI-compatible server at `base` (e.g. `http://127.0.0.1:8000`; a
/// trailing `/v1` is accepted): served models, and the version where the server has `/version`.
pub async fn probe_openai(base: &Url, timeout: Duration) -> RuntimeStatus {
    let start = Instant::now();
    let mut root = base.clone();
    if let Some(stripped) = root.path().trim_end_matches('/').strip_suffix("/v1") {
        let stripped = stripped.to_owned();
        root.set_path(&stripped);
    }
    let work = async {
        let client = client(&root, timeout)?;
        let (models, version) = tokio::join!(
            get(&client, join(&root, "v1/models")?),
            get(&client, join(&root, "version")?)
        );
        let models = parse_openai_models(&models?).map_err(|e| malformed("/v1/models", &e))?;
        // `/version` is vLLM's; other servers may not have it, which is fine.
        let version = version
            .ok()
            .and_then(|b| serde_json::from_slice::<OllamaVersion>(&b).ok())
            .map(|v| v.version);
        Ok((version, models))
    };
    let res = tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(timed_out(timeout)));
    finish(base, start, res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_tags_parse() {
        let body = br#"{"models":[{"name":"llama3.2:latest","model":"llama3.2:latest","modified_at":"2024-10-01T10:00:00Z","size":2019393189,"digest":"a80c4f17acd5","details":{"parent_model":"","format":"gguf","family":"llama","families":["llama"],"parameter_size":"3.2B","quantization_level":"Q4_K_M"}}]}"#;
        let models = parse_ollama_tags(body).unwrap();
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].name, "llama3.2:latest");
        assert_eq!(models[0].size_mib, Some(1925));
        assert_eq!(models[0].parameter_size.as_deref(), Some("3.2B"));
        assert_eq!(models[0].quantization.as_deref(), Some("Q4_K_M"));
        assert!(parse_ollama_tags(b"{\"models\":[]}").unwrap().is_empty());
        assert!(parse_ollama_tags(b"<html>").is_err());
    }

    #[test]
    fn openai_models_parse() {
        let body = br#"{"object":"list","data":[{"id":"meta-llama/Llama-3.1-8B-Instruct","object":"model","created":1727000000,"owned_by":"vllm","root":"meta-llama/Llama-3.1-8B-Instruct","parent":null,"max_model_len":131072}]}"#;
        let models = parse_openai_models(body).unwrap();
        assert_eq!(models[0].name, "meta-llama/Llama-3.1-8B-Instruct");
        assert_eq!(models[0].max_model_len, Some(131_072));
        assert!(parse_openai_models(b"{\"models\":[]}").is_err());
    }

    #[test]
    fn urls_join_under_a_base_path() {
        let base = Url::parse("http://h:1/ollama").unwrap();
        assert_eq!(
            join(&base, "api/tags").ok().unwrap().as_str(),
            "http://h:1/ollama/api/tags"
        );
        let base = Url::parse("http://h:1").unwrap();
        assert_eq!(
            join(&base, "v1/models").ok().unwrap().as_str(),
            "http://h:1/v1/models"
        );
    }
}
