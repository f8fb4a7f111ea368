//! The worker's job table: jobs in flight (with their cancellation) and finished results kept
//! until the orchestrator's `job_ack`, and [`Outgoing`], what job tasks hand to the
//! connection. Plain state behind `Shared`'s lock; the job tasks themselves are `jobs`.

use std::collections::HashMap;

use tokio_util::sync::CancellationToken;

use crate::domain::JobId;
use crate::wire::{CurrentJob, WorkerMessage};

/// Finished results kept for a missing `job_ack` at most; the oldest go first.
const MAX_UNACKED: usize = 1024;
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

    /// Whether `job_id` runs now.
    pub(super) fn is_running(&self, job_id: &JobId) -> bool {
        self.running.contains_key(job_id)
    }

    /// How many jobs run now.
    pub(super) fn running_len(&self) -> usize {
        self.running.len()
    }

    /// The kept result of `job_id`: finished, not yet acknowledged.
    pub(super) fn kept(&self, job_id: &JobId) -> Option<&WorkerMessage> {
        self.unacked
            .iter()
            .find(|u| &u.job_id == job_id)
            .map(|u| &u.message)
    }

    /// Records `job_id` as running (`cancel` stops it).
    pub(super) fn start(
        &mut self,
        job_id: JobId,
        cancel: CancellationToken,
        model: String,
        started_at: u64,
    ) {
        self.running.insert(
            job_id,
            Running {
                cancel,
                model,
                started_at,
            },
        );
    }

    /// The job ended with `message`: it stops running and its result is kept until acked.
    pub(super) fn finish(&mut self, job_id: &JobId, message: WorkerMessage) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Usage;
    use crate::wire::JobTimings;

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
