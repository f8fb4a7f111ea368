//! Runtimes: where a worker runs its jobs, behind one [`Backend`] trait. `echo` is the
//! deterministic, GPU-free simulator ([`Echo`]); `ollama` and `vllm` are reached through their
//! OpenAI-compatible `/v1/chat/completions` with streaming ([`OpenAiBackend`]), with health and
//! model discovery on each one's own endpoints.
//!
//! A backend streams the answer's pieces into an `mpsc` channel as the runtime produces them
//! (no buffering) and returns the whole [`Completion`] at the end; failures are
//! [`RuntimeError`]s, each with the `job_error` code the orchestrator sees.

mod echo;
mod error;
mod openai;
mod sse;
mod text;

#[cfg(test)]
mod openai_tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::domain::{Runtime, Usage};

pub use echo::{DEFAULT_ECHO_DELAY, ECHO_DELAY_ENV, Echo, MAX_ECHO_DELAY, answer, tokens};
pub use error::RuntimeError;
pub use openai::{DEFAULT_IDLE_TIMEOUT, DEFAULT_PROBE_TIMEOUT, Flavor, OpenAiBackend};

/// Whether a runtime can take jobs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub healthy: bool,
    /// What was seen, e.g. `ollama 0.6.2` or why it is unhealthy.
    pub detail: String,
}

impl Health {
    pub fn up(detail: impl Into<String>) -> Self {
        Self {
            healthy: true,
            detail: detail.into(),
        }
    }

    pub fn down(detail: impl Into<String>) -> Self {
        Self {
            healthy: false,
            detail: detail.into(),
        }
    }
}

/// A finished chat completion. Timings are measured by the caller, which knows when the job
/// arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The whole answer text (the concatenation of every streamed piece).
    pub output: String,
    /// As reported by the runtime, or counted when it reports none.
    pub usage: Usage,
    /// True when the echo simulator produced the answer.
    pub simulated: bool,
}

/// One inference runtime. Object safe (boxed futures), so a worker holds an
/// `Arc<dyn Backend>` and tests can plug in their own.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Which runtime this is.
    fn runtime(&self) -> Runtime;

    /// Probes the runtime (cheap; the worker calls it periodically, not per heartbeat).
    fn health(&self) -> BoxFuture<'_, Health>;

    /// The models the runtime serves now.
    fn models(&self) -> BoxFuture<'_, Result<Vec<String>, RuntimeError>>;

    /// Runs one chat completion for `model` on the OpenAI-compatible `request` body, sending
    /// each piece of the answer into `chunks` as it is produced, in order. Returns
    /// [`RuntimeError::Cancelled`] promptly once `cancel` fires or `chunks` is closed.
    fn chat<'a>(
        &'a self,
        model: &'a str,
        request: &'a Value,
        chunks: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Completion, RuntimeError>>;
}

/// What [`build`] needs to construct a worker's backend.
#[derive(Debug, Clone)]
pub struct RuntimeSpec {
    pub runtime: Runtime,
    /// The models the worker announces (echo answers only these; empty: any).
    pub models: Vec<String>,
    /// Base URL of Ollama or vLLM (unused for echo).
    pub base_url: Url,
    /// Echo's pause before each token.
    pub echo_delay: Duration,
    /// Ollama/vLLM: the longest wait for the response and between two streamed pieces.
    pub idle_timeout: Duration,
}

/// Builds the backend for `spec.runtime`.
pub fn build(spec: &RuntimeSpec) -> Result<Arc<dyn Backend>, RuntimeError> {
    Ok(match spec.runtime {
        Runtime::Echo => Arc::new(Echo::new(spec.models.clone(), spec.echo_delay)),
        Runtime::Ollama => Arc::new(OpenAiBackend::new(
            Flavor::Ollama,
            &spec.base_url,
            spec.idle_timeout,
        )?),
        Runtime::Vllm => Arc::new(OpenAiBackend::new(
            Flavor::Vllm,
            &spec.base_url,
            spec.idle_timeout,
        )?),
    })
}

/// Runs `work` until it ends or `cancel` fires (then [`RuntimeError::Cancelled`]); dropping
/// `work` closes whatever connection it held.
async fn cancellable<T>(
    cancel: &CancellationToken,
    work: impl Future<Output = Result<T, RuntimeError>>,
) -> Result<T, RuntimeError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(RuntimeError::Cancelled),
        result = work => result,
    }
}
