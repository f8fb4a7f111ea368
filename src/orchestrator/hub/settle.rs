//! Recording how a job ended, then telling the worker (`job_ack`) and the waiting client.
//! Every outcome is written to the store first: a completed job with its sealed receipt and
//! `jobs_completed` + 1, a failed one with `jobs_failed` + 1, in one transaction that is
//! idempotent on `job_id`. Only then does the worker get `job_ack`, so a result is never
//! acknowledged before it is durable; a result re-sent for a job already recorded is simply
//! acknowledged again.
//!
//! Receipts (docs/RECEIPTS.md, "Gateway job receipts"): one per completed gateway job.
//! `output_hash` is keccak256 of exactly the text the client received; `duration_ms` is measured by
//! the orchestrator; `simulated` is true when the worker says so or runs the echo runtime; `reward`
//! is what the worker is owed, net of the fee, in the configured `asset`, and `metering`
//! records the counts and prices it was computed from (docs/SETTLEMENT.md, "Metered
//! inference"). A paying job's credit is written in the same transaction as its receipt.

use std::sync::Arc;
use std::time::Instant;

use axum::http::StatusCode;

use super::jobs::{CancelReason, Finished, JobEntry, JobEvent, JobFailure};
use super::live::Live;
use crate::domain::{
    ErrorCode, HashedReceipt, JobId, MAX_SAFE_INTEGER, OutputHash, RECEIPT_VERSION, Receipt,
    ReceiptId, ReceiptKind, Runtime, Usage,
};
use crate::orchestrator::metering;
use crate::orchestrator::state::{AppState, unix_now};
use crate::orchestrator::store::{JobOutcome, JobRecord, KeySha256, Recorded};
use crate::wire::{JobErrorCode, OrchestratorMessage};

/// How long past its deadline a job the worker never answered is kept before it is dropped.
const LATE_GRACE_MS: u128 = 30_000;
/// At most this many characters of a worker's error message reach the client.
const MAX_WORKER_MESSAGE: usize = 300;

/// A `job_done` for a running job.
pub fn done(
    state: &AppState,
    live: &Arc<Live>,
    job_id: JobId,
    entry: JobEntry,
    output: Option<String>,
    usage: Usage,
    simulated: bool,
) {
    let streamed = entry.stream && entry.chunks > 0;
    let text = if streamed {
        entry.text.clone()
    } else {
        output.unwrap_or_else(|| entry.text.clone())
    };
    if entry.cancelled == Some(CancelReason::Deadline) {
        record(
            state,
            live,
            job_id,
            entry,
            JobOutcome::Failed(ErrorCode::JobTimeout),
            None,
        );
        return;
    }
    let receipt = match seal(state, live, &job_id, &entry, &text, usage, simulated) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%job_id, error = %e, "cannot seal a receipt");
            let failure = JobFailure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the orchestrator could not seal this job's receipt",
            );
            record(
                state,
                live,
                job_id,
                entry,
                JobOutcome::Failed(ErrorCode::Internal),
                Some(failure),
            );
            return;
        }
    };
    // The client sees (and its key is billed) the tokens credited, not the worker's report.
    let billed = receipt.receipt.metering.map_or(usage, |m| m.credited);
    let finished = Finished {
        text,
        streamed,
        usage: billed,
        receipt: receipt.clone(),
    };
    let state = state.clone();
    let live = Arc::clone(live);
    tokio::spawn(async move {
        let _settling = state.hub.settling();
        let job = JobRecord {
            job_id: job_id.clone(),
            worker_id: live.worker_id().clone(),
            model: entry.model.clone(),
            outcome: JobOutcome::Completed(Box::new(receipt)),
            started_at: entry.started_unix,
            finished_at: unix_now(),
            client_key: entry.client_key,
            partial_usage: None,
            ttft_ms: Some(ttft_ms(&entry)),
        };
        let recorded_from = Instant::now();
        match state.store.record_job(job).await {
            Ok(r) => {
                if r == Recorded::New {
                    spend(&state, entry.client_key.as_ref(), billed, recorded_from);
                    let paid = &finished.receipt.receipt;
                    state.metrics.settled("credited", &paid.asset, paid.reward);
                } else {
                    tracing::warn!(%job_id, ?r, "a running job was already recorded");
                }
                state.metrics.job("completed");
                let _ = live.send(OrchestratorMessage::JobAck { job_id });
                let _ = entry.sink.send(JobEvent::Done(Box::new(finished)));
            }
            Err(e) => {
                tracing::error!(%job_id, error = %e, "cannot record a finished job; not acknowledging it");
                let _ = entry.sink.send(JobEvent::Failed(internal()));
            }
        }
    });
}

/// Milliseconds from dispatch to the first streamed chunk, or to the answer when nothing was
/// streamed.
fn ttft_ms(entry: &JobEntry) -> u64 {
    let first = entry.first_chunk.unwrap_or_else(Instant::now);
    u64::try_from(first.saturating_duration_since(entry.started).as_millis()).unwrap_or(u64::MAX)
}

/// A `job_error` for a running job.
pub fn failed(
    state: &AppState,
    live: &Arc<Live>,
    job_id: JobId,
    entry: JobEntry,
    code: JobErrorCode,
    message: &str,
) {
    let (outcome, failure) = match entry.cancelled {
        Some(CancelReason::ClientGone) => (JobOutcome::Cancelled, None),
        Some(CancelReason::Deadline) => (JobOutcome::Failed(ErrorCode::JobTimeout), None),
        None => {
            let failure = map_job_error(code, message);
            // A refusal (draining, at capacity) is not a failed job: the gateway routes again.
            let outcome = if failure.code == ErrorCode::WorkerBusy {
                JobOutcome::Cancelled
            } else {
                JobOutcome::Failed(failure.code)
            };
            (outcome, Some(failure))
        }
    };
    record(state, live, job_id, entry, outcome, failure);
}

/// The connection ended with these jobs still running: each fails at once.
pub fn lost(state: &AppState, live: &Arc<Live>, jobs: Vec<(JobId, JobEntry)>, shutdown: bool) {
    for (job_id, entry) in jobs {
        let failure = if shutdown {
            JobFailure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::OrchestratorDraining,
                "the orchestrator shut down before the job finished",
            )
        } else {
            JobFailure::worker_lost()
        };
        let code = failure.code;
        tracing::warn!(%job_id, worker_id = %live.worker_id(), "job lost with its worker");
        record(
            state,
            live,
            job_id,
            entry,
            JobOutcome::Failed(code),
            Some(failure),
        );
    }
}

/// Drops jobs the worker never answered long after their deadline (the client already got
/// `JOB_TIMEOUT`), giving their capacity back.
pub fn sweep_expired(state: &AppState, live: &Arc<Live>) {
    let now = Instant::now();
    let expired: Vec<JobId> = {
        let jobs = live.jobs();
        if jobs.is_empty() {
            return;
        }
        jobs.iter()
            .filter(|(_, e)| now.saturating_duration_since(e.deadline).as_millis() > LATE_GRACE_MS)
            .map(|(id, _)| id.clone())
            .collect()
    };
    for job_id in expired {
        if let Some(entry) = live.finish(&job_id) {
            state.hub.freed(live);
            let failure = JobFailure::timeout();
            record(
                state,
                live,
                job_id,
                entry,
                JobOutcome::Failed(ErrorCode::JobTimeout),
                Some(failure),
            );
        }
    }
}

/// A result for a job this connection is not running: re-sent after a reconnect, or for a
/// job this orchestrator no longer knows (it restarted; the client is gone). Either way it is
/// acknowledged so the worker can forget it; nothing is counted twice.
pub fn unknown(state: &AppState, live: &Arc<Live>, job_id: JobId) {
    let state = state.clone();
    let live = Arc::clone(live);
    tokio::spawn(async move {
        match state.store.job_status(job_id.clone()).await {
            Ok(status) => {
                tracing::info!(%job_id, ?status, "acknowledging a re-sent result");
                let _ = live.send(OrchestratorMessage::JobAck { job_id });
            }
            Err(e) => tracing::error!(%job_id, error = %e, "cannot look up a re-sent result"),
        }
    });
}

/// Writes a failed or cancelled outcome, then acknowledges and tells the client.
fn record(
    state: &AppState,
    live: &Arc<Live>,
    job_id: JobId,
    entry: JobEntry,
    outcome: JobOutcome,
    failure: Option<JobFailure>,
) {
    let failure = failure.unwrap_or_else(|| match &outcome {
        JobOutcome::Failed(ErrorCode::JobTimeout) => JobFailure::timeout(),
        _ => JobFailure::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::JobCancelled,
            "the job was cancelled",
        ),
    });
    let metric = match outcome {
        JobOutcome::Completed(_) => "completed",
        JobOutcome::Failed(_) => "failed",
        JobOutcome::Cancelled => "cancelled",
    };
    let state = state.clone();
    let live = Arc::clone(live);
    tokio::spawn(async move {
        let _settling = state.hub.settling();
        let job = JobRecord {
            job_id: job_id.clone(),
            worker_id: live.worker_id().clone(),
            model: entry.model.clone(),
            outcome,
            started_at: entry.started_unix,
            finished_at: unix_now(),
            client_key: entry.client_key,
            partial_usage: partial_usage(&entry),
            ttft_ms: None,
        };
        let partial = job.partial_usage;
        // The client hears first: a failure needs no receipt to be shown.
        let _ = entry.sink.send(JobEvent::Failed(failure));
        let recorded_from = Instant::now();
        match state.store.record_job(job).await {
            Ok(r) => {
                if let (Recorded::New, Some(used)) = (r, partial) {
                    spend(&state, entry.client_key.as_ref(), used, recorded_from);
                }
                state.metrics.job(metric);
                let _ = live.send(OrchestratorMessage::JobAck { job_id });
            }
            Err(e) => tracing::error!(%job_id, error = %e, "cannot record a failed job"),
        }
    });
}

/// Seals a completed job's receipt, metered (docs/SETTLEMENT.md, "Metered inference"): the
/// tokens credited are the reported ones bounded by what this orchestrator relayed, priced by
/// `[pricing]`, after anti-cheat; `reward` is what the worker is owed, net of the fee.
fn seal(
    state: &AppState,
    live: &Live,
    job_id: &JobId,
    entry: &JobEntry,
    text: &str,
    usage: Usage,
    simulated: bool,
) -> Result<HashedReceipt, crate::domain::CanonicalError> {
    let safe = |n: u64| n.min(MAX_SAFE_INTEGER);
    let simulated = simulated || live.hello.runtime == Runtime::Echo;
    let elapsed = entry.started.elapsed();
    let duration_ms = safe(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    let streamed = entry.stream && entry.chunks > 0;
    let relayed = Usage {
        prompt_tokens: safe(entry.prompt_bound),
        completion_tokens: safe(metering::completion_bound(&metering::Relayed {
            streamed,
            text_chunks: entry.text_chunks,
            text,
            delivered: entry.cancelled.is_none(),
            limit: entry.completion_limit,
        })),
    };
    let reported = Usage {
        prompt_tokens: safe(usage.prompt_tokens),
        completion_tokens: safe(usage.completion_tokens),
    };
    if reported.prompt_tokens > relayed.prompt_tokens {
        state.metrics.usage_capped("prompt");
    }
    if reported.completion_tokens > relayed.completion_tokens {
        state.metrics.usage_capped("completion");
    }
    if reported.capped_by(relayed) != reported {
        tracing::warn!(
            %job_id,
            worker_id = %live.worker_id(),
            reported_prompt = reported.prompt_tokens,
            reported_completion = reported.completion_tokens,
            relayed_prompt = relayed.prompt_tokens,
            relayed_completion = relayed.completion_tokens,
            "the worker reported more tokens than the orchestrator relayed; crediting what it relayed"
        );
    }
    let tasks = &state.config.tasks;
    let metered = metering::meter(
        state.config.pricing.of(&entry.model),
        reported,
        relayed,
        tasks.protocol_fee_bps,
        |credited| {
            metering::unpaid(&metering::Evidence {
                simulated,
                text,
                completion_tokens: credited.completion_tokens,
                duration_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                max_tokens_per_s: tasks.max_tokens_per_s,
            })
        },
    );
    Receipt {
        receipt_version: RECEIPT_VERSION,
        receipt_id: ReceiptId::generate(),
        kind: ReceiptKind::GatewayJob,
        issued_at: unix_now(),
        worker_id: live.worker_id().clone(),
        wallet: Some(live.hello.wallet),
        model: Some(entry.model.clone()),
        job_id: Some(job_id.clone()),
        task_id: None,
        submission_id: None,
        output_hash: OutputHash::of(text.as_bytes()),
        usage: reported,
        duration_ms,
        simulated,
        reward: metered.net(),
        asset: state.config.asset.clone(),
        attestation_hash: None,
        metering: Some(metered),
    }
    .seal()
}

/// What a job that ends without completing used of its client's tokens: the chunks it had
/// streamed to the client (each one piece of text, about a token), if any.
fn partial_usage(entry: &JobEntry) -> Option<Usage> {
    (entry.stream && entry.text_chunks > 0).then(|| Usage {
        prompt_tokens: 0,
        completion_tokens: u64::from(entry.text_chunks),
    })
}

/// Counts a job's tokens against its client key's daily quota on this replica (the database
/// counted them already, in the job's transaction, whose write began at `recorded_from`).
fn spend(state: &AppState, key: Option<&KeySha256>, usage: Usage, recorded_from: Instant) {
    if let Some(key) = key
        && let Some(grant) = state.client_keys.get(key, Instant::now())
    {
        let tokens = usage.prompt_tokens.saturating_add(usage.completion_tokens);
        grant.spend(tokens, recorded_from);
    }
}

fn internal() -> JobFailure {
    JobFailure::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "the orchestrator could not record this job",
    )
}

/// The client's view of a worker's `job_error`.
fn map_job_error(code: JobErrorCode, message: &str) -> JobFailure {
    let (status, code, what) = match code {
        JobErrorCode::ModelNotFound => (
            StatusCode::BAD_GATEWAY,
            ErrorCode::ModelNotFound,
            "the worker's runtime does not serve this model",
        ),
        JobErrorCode::RuntimeDown => (
            StatusCode::BAD_GATEWAY,
            ErrorCode::RuntimeDown,
            "the worker's runtime is down",
        ),
        JobErrorCode::Timeout => (
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::JobTimeout,
            "the worker's runtime timed out",
        ),
        JobErrorCode::BadResponse => (
            StatusCode::BAD_GATEWAY,
            ErrorCode::RuntimeBadResponse,
            "the worker's runtime answered something that is not a completion",
        ),
        JobErrorCode::Cancelled => (
            StatusCode::BAD_GATEWAY,
            ErrorCode::JobCancelled,
            "the job was cancelled on the worker",
        ),
        JobErrorCode::Draining | JobErrorCode::AtCapacity => (
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::WorkerBusy,
            "the worker could not take the job",
        ),
        JobErrorCode::BadRequest => (
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidArgument,
            "the worker's runtime refused the request",
        ),
    };
    let detail: String = message.chars().take(MAX_WORKER_MESSAGE).collect();
    let message = if detail.is_empty() || crate::guard::check_text("message", &detail).is_err() {
        what.to_owned()
    } else {
        format!("{what}: {detail}")
    };
    JobFailure::new(status, code, message)
}
