//! Jobs: admission (capacity, drain, duplicates) and one task per job that streams the
//! runtime's pieces out as `job_chunk`s in order and ends in `job_done`/`job_error`, its
//! result filed in the job table (`job_table`: kept until the orchestrator's `job_ack`,
//! resent after a reconnect).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(super) use super::job_table::Outgoing;
use super::shared::Shared;
use super::status::unix_now;
use crate::domain::JobId;
use crate::runtime::RuntimeError;
use crate::wire::{JobErrorCode, JobTimings, WorkerMessage};

/// Pieces buffered between a runtime and its job task.
const PIECE_QUEUE: usize = 64;

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
        if table.is_running(&job.job_id) {
            return Admission::Duplicate;
        }
        if let Some(kept) = table.kept(&job.job_id) {
            return Admission::Reply(kept.clone());
        }
        if refusing || shared.is_draining() {
            return refuse(
                JobErrorCode::Draining,
                "the worker is draining and takes no new jobs",
            );
        }
        if table.running_len() >= usize::try_from(shared.config.capacity).unwrap_or(usize::MAX) {
            return refuse(
                JobErrorCode::AtCapacity,
                "the worker already runs as many jobs as its capacity",
            );
        }
        table.start(
            job.job_id.clone(),
            cancel.clone(),
            job.model.clone(),
            unix_now(),
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
