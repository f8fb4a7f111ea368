//! A gateway job between its dispatch and its end: the [`JobEntry`] the connection keeps and
//! the [`JobEvent`]s it sends to the waiting HTTP handler (whose end is
//! [`JobHandle`](super::handle::JobHandle)). Plain data: a leaf of the hub.

use std::time::Instant;

use axum::http::StatusCode;
use tokio::sync::mpsc;

use crate::domain::{ErrorCode, HashedReceipt, Usage};
use crate::orchestrator::store::KeySha256;

/// Why the orchestrator cancelled a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The client disconnected.
    ClientGone,
    /// The job passed its deadline; the client got `JOB_TIMEOUT`.
    Deadline,
}

/// A job the connection waits on.
#[derive(Debug)]
pub struct JobEntry {
    pub model: String,
    /// The client asked for a stream: chunks are forwarded as they arrive.
    pub stream: bool,
    pub started: Instant,
    /// Unix seconds.
    pub started_unix: u64,
    pub deadline: Instant,
    pub sink: mpsc::UnboundedSender<JobEvent>,
    /// The streamed text so far.
    pub text: String,
    pub chunks: u32,
    /// The chunks with text forwarded to the client (what a streamed answer is credited at
    /// most).
    pub text_chunks: u32,
    /// The most prompt tokens the request can take (`metering::prompt_bound`).
    pub prompt_bound: u64,
    /// The most completion tokens it asked for (`metering::completion_limit`).
    pub completion_limit: Option<u64>,
    /// When the first streamed chunk arrived (time to first token; for an answer that is not
    /// streamed, the whole answer is its first token).
    pub first_chunk: Option<Instant>,
    pub cancelled: Option<CancelReason>,
    /// The client key the request came with, for its usage and quota.
    pub client_key: Option<KeySha256>,
    /// Its hold on the key's daily tokens: dropped (released) with the entry, when the job
    /// ends.
    pub reservation: Option<std::sync::Arc<crate::orchestrator::reservation::Reservation>>,
}

/// What the handler hears about its job.
#[derive(Debug)]
pub enum JobEvent {
    /// A piece of a streamed answer (streams only).
    Chunk(String),
    /// Finished and recorded.
    Done(Box<Finished>),
    /// Failed (and recorded as failed).
    Failed(JobFailure),
}

/// A recorded, finished job.
#[derive(Debug)]
pub struct Finished {
    /// The whole answer: exactly the bytes `receipt.output_hash` covers.
    pub text: String,
    /// Whether the answer already went out as chunks.
    pub streamed: bool,
    pub usage: Usage,
    pub receipt: HashedReceipt,
}

/// Why a job failed, as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl JobFailure {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn worker_lost() -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::WorkerLost,
            "the worker running this job disconnected or stopped heartbeating before it finished",
        )
    }

    pub fn timeout() -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::JobTimeout,
            "the job did not finish before its deadline",
        )
    }
}
