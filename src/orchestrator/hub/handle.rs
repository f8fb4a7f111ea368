//! [`JobHandle`]: the HTTP handler's end of a dispatched job. It reads the job's
//! [`JobEvent`]s; its drop (the client went away) sends `cancel` to the worker.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::jobs::{CancelReason, JobEvent, JobFailure};
use super::live::Live;
use crate::domain::{JobId, WorkerId};
use crate::wire::OrchestratorMessage;

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
