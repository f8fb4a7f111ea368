//! The `echo` runtime: a deterministic simulator that needs no GPU. It answers
//! `echo: <text of the last user message>`, streamed one word at a time with a configurable
//! pause before each, and marks its results simulated (they pay nothing). Deterministic, so
//! tests and the canary can predict the output and its hash: see [`answer`] and [`tokens`].

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::text::{content_text, max_tokens, messages, prompt_words};
use super::{Backend, Completion, Health, RuntimeError, cancellable};
use crate::domain::{Runtime, Usage};

/// The environment variable (or env-file key) holding echo's per-token delay in ms.
pub const ECHO_DELAY_ENV: &str = "BASIS_ECHO_DELAY_MS";
/// Echo's per-token delay when none is configured.
pub const DEFAULT_ECHO_DELAY: Duration = Duration::from_millis(5);
/// The largest per-token delay accepted.
pub const MAX_ECHO_DELAY: Duration = Duration::from_mins(1);

/// The echo simulator.
#[derive(Debug, Clone)]
pub struct Echo {
    models: Vec<String>,
    delay: Duration,
}

impl Echo {
    /// Serves `models` (empty: any model) with `delay` before each token.
    pub fn new(models: Vec<String>, delay: Duration) -> Self {
        Self { models, delay }
    }

    async fn run(
        &self,
        model: &str,
        request: &Value,
        chunks: mpsc::Sender<String>,
    ) -> Result<Completion, RuntimeError> {
        if !self.models.is_empty() && !self.models.iter().any(|m| m == model) {
            return Err(RuntimeError::ModelNotFound {
                runtime: Runtime::Echo,
                model: model.to_owned(),
            });
        }
        let prompt_tokens = prompt_words(messages(request)?);
        let pieces = tokens(&answer(request)?);
        let limit = max_tokens(request).map_or(pieces.len(), |m| {
            usize::try_from(m).unwrap_or(usize::MAX).min(pieces.len())
        });
        let mut output = String::new();
        for piece in pieces.into_iter().take(limit) {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            output.push_str(&piece);
            chunks
                .send(piece)
                .await
                .map_err(|_| RuntimeError::Cancelled)?;
        }
        Ok(Completion {
            output,
            usage: Usage {
                prompt_tokens,
                completion_tokens: u64::try_from(limit).unwrap_or(u64::MAX),
            },
            simulated: true,
        })
    }
}

/// Echo's whole answer to `request`: `echo: ` followed by the text of the last user message.
pub fn answer(request: &Value) -> Result<String, RuntimeError> {
    let last_user = messages(request)?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .ok_or_else(|| RuntimeError::bad_request("the request has no user message"))?;
    Ok(format!("echo: {}", content_text(last_user)))
}

/// Splits `text` into echo's tokens: each word with the whitespace before it, so the tokens
/// concatenate back to `text` exactly (`"echo: a b"` → `["echo:", " a", " b"]`).
pub fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        let space = c.is_whitespace();
        if space && in_word {
            out.push(std::mem::take(&mut current));
        }
        in_word = !space;
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl Backend for Echo {
    fn runtime(&self) -> Runtime {
        Runtime::Echo
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        futures::future::ready(Health::up("echo simulator")).boxed()
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<String>, RuntimeError>> {
        futures::future::ready(Ok(self.models.clone())).boxed()
    }

    fn chat<'a>(
        &'a self,
        model: &'a str,
        request: &'a Value,
        chunks: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Completion, RuntimeError>> {
        async move { cancellable(&cancel, self.run(model, request, chunks)).await }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(text: &str) -> Value {
        json!({"model": "m", "stream": true, "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": text},
        ]})
    }

    async fn collect(echo: &Echo, req: &Value) -> (Result<Completion, RuntimeError>, Vec<String>) {
        let (tx, mut rx) = mpsc::channel(64);
        let result = echo.chat("m", req, tx, CancellationToken::new()).await;
        let mut pieces = Vec::new();
        while let Ok(p) = rx.try_recv() {
            pieces.push(p);
        }
        (result, pieces)
    }

    #[test]
    fn tokens_concatenate_back() {
        assert_eq!(tokens("echo: a  b\nc"), ["echo:", " a", "  b", "\nc"]);
        assert_eq!(tokens("echo: "), ["echo:", " "]);
        assert!(tokens("").is_empty());
        for text in ["echo: héllo wörld ", " lead", "x"] {
            assert_eq!(tokens(text).concat(), text);
        }
    }

    #[tokio::test]
    async fn streams_the_last_user_message_deterministically() {
        let echo = Echo::new(vec!["m".into()], Duration::ZERO);
        let req = request("hello there world");
        let (first, pieces) = collect(&echo, &req).await;
        let first = first.unwrap();
        assert_eq!(first.output, "echo: hello there world");
        assert_eq!(pieces, ["echo:", " hello", " there", " world"]);
        assert!(first.simulated);
        assert_eq!(first.usage.completion_tokens, 4);
        assert_eq!(first.usage.prompt_tokens, 2 + 2 + 3);
        let (second, _) = collect(&echo, &req).await;
        assert_eq!(second.unwrap(), first, "same request, same completion");
        assert_eq!(answer(&req).unwrap(), first.output);
    }

    #[tokio::test]
    async fn honours_max_tokens_models_and_bad_requests() {
        let echo = Echo::new(vec!["m".into()], Duration::ZERO);
        let mut req = request("a b c d");
        req["max_tokens"] = json!(2);
        let (done, pieces) = collect(&echo, &req).await;
        assert_eq!(done.unwrap().output, "echo: a");
        assert_eq!(pieces.len(), 2);

        let (tx, _rx) = mpsc::channel(4);
        let err = echo
            .chat("other", &req, tx, CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(err.code(), crate::wire::JobErrorCode::ModelNotFound);

        let (err, _) = collect(
            &echo,
            &json!({"messages": [{"role": "system", "content": "x"}]}),
        )
        .await;
        assert_eq!(
            err.unwrap_err().code(),
            crate::wire::JobErrorCode::BadRequest
        );
        // No model list: any model is served.
        let any = Echo::new(Vec::new(), Duration::ZERO);
        assert!(collect(&any, &request("x")).await.0.is_ok());
    }

    #[tokio::test]
    async fn cancel_and_closed_receiver_stop_it() {
        let echo = Echo::new(Vec::new(), Duration::from_millis(50));
        let req = request("one two three four five six");
        let cancel = CancellationToken::new();
        let (tx, _rx) = mpsc::channel(64);
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            trigger.cancel();
        });
        let started = std::time::Instant::now();
        let err = echo.chat("m", &req, tx, cancel).await.unwrap_err();
        assert_eq!(err, RuntimeError::Cancelled);
        assert!(started.elapsed() < Duration::from_millis(250));

        let (tx, rx) = mpsc::channel(64);
        drop(rx);
        let err = Echo::new(Vec::new(), Duration::ZERO)
            .chat("m", &req, tx, CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(err, RuntimeError::Cancelled);
    }
}
