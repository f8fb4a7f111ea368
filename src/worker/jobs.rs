//! Jobs: admission (capacity, drain, duplicates), one task per job that streams the runtime's
//! pieces out as `job_chunk`s in order and ends in `job_done`/`job_error`, and the table of
//! finished results kept until the orchestrator's `job_ack` (resent after a reconnect).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use super::status::{CurrentJob, unix_now};
use crate::domain::JobId;
use crate::runtime::RuntimeError;
use crate::wire::{JobErrorCode, JobTimings, WorkerMessage};

/// Finished results kept for a missing `job_ack` at most; the oldest go first.
const MAX_UNACKED: usize = 1024;
/// Pieces buffered between a runtime and its job task.
const PIECE_QUEUE: usize = 64;

/// What job tasks hand to the connection.
#[derive(Debug)]
pub(super) enum Outgoing {
    /// A streamed piece of a job started on connection `session`.
    Chunk {
        session: u64,
        job_id: JobId,
        delta: String,
    },
    /// The job's result is in the table: send it.
    Finished { job_id: JobId },
}

#[derive(Debug)]
struct Running {
    cancel: CancellationToken,
    model: String,
    started_at: u64,
}

#[derive(Debug)]
struct Unacked {
    job_id: JobId,
    message: WorkerMessage,
    /// The connection it was last sent on.
    sent_in: Option<u64>,
}

/// Jobs in flight and results awaiting `job_ack`.
#[derive(Debug, Default)]
pub(super) struct JobTable {
    running: HashMap<JobId, Running>,
    unacked: Vec<Unacked>,
}

impl JobTable {
    pub(super) fn in_flight(&self) -> u32 {
        u32::try_from(self.running.len()).unwrap_or(u32::MAX)
    }

    /// Nothing running and nothing left to deliver.
    pub(super) fn is_idle(&self) -> bool {
        self.running.is_empty() && self.unacked.is_empty()
    }

    pub(super) fn has_running(&self) -> bool {
        !self.running.is_empty()
    }

    pub(super) fn current_jobs(&self) -> Vec<CurrentJob> {
        let mut jobs: Vec<CurrentJob> = self
            .running
            .iter()
            .map(|(id, r)| CurrentJob {
                job_id: id.clone(),
                model: r.model.clone(),
                started_at: r.started_at,
            })
            .collect();
        jobs.sort_by(|a, b| (a.started_at, &a.job_id).cmp(&(b.started_at, &b.job_id)));
        jobs
    }

    /// `job_ack`: forget the result.
    pub(super) fn ack(&mut self, job_id: &JobId) {
        self.unacked.retain(|u| &u.job_id != job_id);
    }

    /// `cancel`: stop the job if it runs.
    pub(super) fn cancel(&self, job_id: &JobId) {
        if let Some(r) = self.running.get(job_id) {
            r.cancel.cancel();
        }
    }

    pub(super) fn cancel_all(&self) {
        for r in self.running.values() {
            r.cancel.cancel();
        }
    }

    /// Every result not yet sent on connection `session`, oldest first; marks them sent.
    pub(super) fn unsent(&mut self, session: u64) -> Vec<WorkerMessage> {
        self.unacked
            .iter_mut()
            .filter(|u| u.sent_in != Some(session))
            .map(|u| {
                u.sent_in = Some(session);
                u.message.clone()
            })
            .collect()
    }

    /// The result of `job_id` if it was not yet sent on `session`; marks it sent.
    pub(super) fn take_unsent(&mut self, job_id: &JobId, session: u64) -> Option<WorkerMessage> {
        let u = self
            .unacked
            .iter_mut()
            .find(|u| &u.job_id == job_id && u.sent_in != Some(session))?;
        u.sent_in = Some(session);
        Some(u.message.clone())
    }

    fn finish(&mut self, job_id: &JobId, message: WorkerMessage) {
        self.running.remove(job_id);
        if self.unacked.len() >= MAX_UNACKED {
            let dropped = self.unacked.remove(0);
            tracing::warn!(job_id = %dropped.job_id, "dropping an old unacknowledged result");
        }
        self.unacked.push(Unacked {
            job_id: job_id.clone(),
            message,
            sent_in: None,
        });
    }
}

/// What became of a `job` frame.
#[derive(Debug)]
pub(super) enum Admission {
    Started,
    /// Answer this at once (`DRAINING`, `AT_CAPACITY`, or the kept result of a repeated job).
    Reply(WorkerMessage),
    /// The job already runs: nothing to do.
    Duplicate,
}

/// A `job` frame's contents.
#[derive(Debug)]
pub(super) struct JobRequest {
    pub job_id: JobId,
    pub model: String,
    pub request: Value,
    /// From receipt of the job; past it the job ends in `TIMEOUT`. 0: no deadline.
    pub deadline_ms: u64,
}

/// Admits `job` on connection `session` (refusing it while `refusing` or at capacity) and
/// starts its task.
pub(super) fn admit(
    shared: &Arc<Shared>,
    session: u64,
    refusing: bool,
    job: JobRequest,
) -> Admission {
    let refuse = |code, message: &str| {
        Admission::Reply(WorkerMessage::JobError {
            job_id: job.job_id.clone(),
            code,
            message: message.to_owned(),
        })
    };
    let cancel = CancellationToken::new();
    let current = {
        let mut table = shared.table();
        if table.running.contains_key(&job.job_id) {
            return Admission::Duplicate;
        }
        if let Some(kept) = table.unacked.iter().find(|u| u.job_id == job.job_id) {
            return Admission::Reply(kept.message.clone());
        }
        if refusing || shared.is_draining() {
            return refuse(
                JobErrorCode::Draining,
                "the worker is draining and takes no new jobs",
            );
        }
        if table.running.len() >= usize::try_from(shared.config.capacity).unwrap_or(usize::MAX) {
            return refuse(
                JobErrorCode::AtCapacity,
                "the worker already runs as many jobs as its capacity",
            );
        }
        table.running.insert(
            job.job_id.clone(),
            Running {
                cancel: cancel.clone(),
                model: job.model.clone(),
                started_at: unix_now(),
            },
        );
        table.current_jobs()
    };
    shared.status.update(|s| s.current_jobs = current);
    tokio::spawn(run(Arc::clone(shared), session, job, cancel));
    Admission::Started
}

/// Runs one job to its end and files the result.
async fn run(shared: Arc<Shared>, session: u64, job: JobRequest, cancel: CancellationToken) {
    let received = Instant::now();
    let JobRequest {
        job_id,
        model,
        request,
        deadline_ms,
    } = job;
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    let runtime = shared.backend.runtime();
    let (pieces_tx, mut pieces) = mpsc::channel::<String>(PIECE_QUEUE);
    let chat = async {
        let chat = shared.backend.chat(&model, &request, pieces_tx, cancel);
        if deadline_ms == 0 {
            return chat.await;
        }
        tokio::time::timeout(Duration::from_millis(deadline_ms), chat)
            .await
            .unwrap_or(Err(RuntimeError::Timeout {
                runtime,
                after_ms: deadline_ms,
            }))
    };
    let forward = async {
        let mut first = None;
        while let Some(delta) = pieces.recv().await {
            first.get_or_insert_with(|| received.elapsed());
            if stream {
                let chunk = Outgoing::Chunk {
                    session,
                    job_id: job_id.clone(),
                    delta,
                };
                // Only fails when the daemon is gone.
                let _ = shared.out.send(chunk).await;
            }
        }
        first
    };
    let (result, first) = tokio::join!(chat, forward);
    let total = received.elapsed();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let ok = result.is_ok();
    let message = match result {
        Ok(done) => WorkerMessage::JobDone {
            job_id: job_id.clone(),
            output: Some(done.output),
            usage: done.usage,
            timings: JobTimings {
                first_token_ms: ms(first.unwrap_or(total)),
                total_ms: ms(total),
            },
            simulated: done.simulated,
        },
        Err(e) => {
            tracing::info!(%job_id, code = ?e.code(), error = %e, "job failed");
            WorkerMessage::JobError {
                job_id: job_id.clone(),
                code: e.code(),
                message: e.to_string(),
            }
        }
    };
    let current = {
        let mut table = shared.table();
        table.finish(&job_id, message);
        table.current_jobs()
    };
    shared.status.update(|s| {
        s.current_jobs = current;
        if ok {
            s.counters.jobs_completed += 1;
        } else {
            s.counters.jobs_failed += 1;
        }
    });
    let _ = shared.out.send(Outgoing::Finished { job_id }).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Usage;

    fn done(job_id: &JobId) -> WorkerMessage {
        WorkerMessage::JobDone {
            job_id: job_id.clone(),
            output: Some("x".into()),
            usage: Usage::default(),
            timings: JobTimings::default(),
            simulated: true,
        }
    }

    #[test]
    fn results_are_kept_until_acked_and_sent_once_per_connection() {
        let mut t = JobTable::default();
        let (a, b) = (JobId::generate(), JobId::generate());
        t.finish(&a, done(&a));
        t.finish(&b, done(&b));
        assert!(!t.is_idle());
        assert_eq!(t.take_unsent(&a, 1), Some(done(&a)));
        assert_eq!(
            t.take_unsent(&a, 1),
            None,
            "already sent on this connection"
        );
        assert_eq!(t.unsent(1), [done(&b)]);
        assert!(t.unsent(1).is_empty());
        assert_eq!(
            t.unsent(2),
            [done(&a), done(&b)],
            "resent on the next one, in order"
        );
        t.ack(&a);
        t.ack(&b);
        assert!(t.is_idle());
    }
}
