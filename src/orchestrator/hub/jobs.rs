//! A gateway job between its dispatch and its end: the [`JobEntry`] the connection keeps,
//! the [`JobEvent`]s it sends to the waiting HTTP handler, and the handler's [`JobHandle`],
//! whose drop (the client went away) sends `cancel` to the worker.

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;
use tokio::sync::mpsc;

use super::live::Live;
use crate::domain::{ErrorCode, HashedReceipt, JobId, Usage, WorkerId};
use crate::wire::OrchestratorMessage;

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
    pub cancelled: Option<CancelReason>,
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

/// The handler's end of a dispatched job.
#[derive(Debug)]
pub struct JobHandle {
    pub job_id: JobId,
    pub model: String,
    pub created_unix: u64,
    live: Arc<Live>,
    events: mpsc::UnboundedReceiver<JobEvent>,
    ended: bool,
}

impl JobHandle {
    pub(super) fn new(
        job_id: JobId,
        model: String,
        created_unix: u64,
        live: Arc<Live>,
        events: mpsc::UnboundedReceiver<JobEvent>,
    ) -> Self {
        Self {
            job_id,
            model,
            created_unix,
            live,
            events,
            ended: false,
        }
    }

    pub fn worker_id(&self) -> &WorkerId {
        self.live.worker_id()
    }

    /// The next event; a closed channel reads as the worker lost.
    pub async fn next(&mut self) -> JobEvent {
        let event = self
            .events
            .recv()
            .await
            .unwrap_or_else(|| JobEvent::Failed(JobFailure::worker_lost()));
        if !matches!(event, JobEvent::Chunk(_)) {
            self.ended = true;
        }
        event
    }

    /// Tells the worker to stop, remembering why (decides how the job is recorded).
    pub fn cancel(&mut self, reason: CancelReason) {
        if self.ended {
            return;
        }
        self.ended = true;
        let pending = match self.live.jobs().get_mut(&self.job_id) {
            Some(entry) => {
                entry.cancelled.get_or_insert(reason);
                true
            }
            None => false,
        };
        if pending {
            let _ = self.live.send(OrchestratorMessage::Cancel {
                job_id: self.job_id.clone(),
            });
        }
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        if !self.ended {
            tracing::info!(job_id = %self.job_id, "the client went away; cancelling the job");
            self.cancel(CancelReason::ClientGone);
        }
    }
}
