//! The task market's submission routes (docs/TASK_MARKET.md): the claim holder's
//! `POST /api/tasks/{id}/submit` (the output checked by `market::intake`, recorded by the
//! engine, idempotent), `GET /api/submissions/{id}` (only for the
//! poster, an evaluator, the submitting worker or the admin), `evaluate` (evaluator key;
//! settles in one transaction), `dispute` (worker token, within the window) and `resolve`
//! (admin key).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::tasks::task_id;
use crate::domain::{Evaluation, SubmissionId, TaskStatus};
use crate::guard::{GuardText, HostSecrets, check_free_text};
use crate::orchestrator::auth;
use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::extract::ApiJson;
use crate::orchestrator::market::engine::{
    self, DisputeArgs, EvaluateArgs, NewSubmission, ResolveArgs, TaskError,
};
use crate::orchestrator::market::intake;
use crate::orchestrator::market::problems::{invalid, submission_not_readable, task_not_found};
use crate::orchestrator::signed::WorkerRequest;
use crate::orchestrator::state::{AppState, unix_now_ms};
use crate::orchestrator::store::SubmissionRow;
use crate::wire::{
    DisputeRequest, MAX_DISPUTE_REASON_LEN, ResolveRequest, Submission, SubmitRequest,
};

/// Extra body bytes a submit may carry besides its output (ids, hash, usage, JSON escapes).
pub const SUBMIT_HEADROOM: usize = 64 * 1024;

/// The body limit of `POST /api/tasks/{id}/submit`: the output (base64 or escaped text can
/// be larger than its raw bytes) plus headroom.
pub fn submit_body_limit(max_output_bytes: usize) -> usize {
    max_output_bytes
        .saturating_mul(2)
        .saturating_add(SUBMIT_HEADROOM)
}

fn submission_id(path: Result<Path<String>, PathRejection>) -> Result<SubmissionId, ApiError> {
    let bad = || {
        invalid(
            "a submission id is sub- followed by 32 lowercase hex characters",
            "Use the submission_id that submit_output (`basis submit`) returned.",
        )
    };
    let Path(id) = path.map_err(|_| bad())?;
    SubmissionId::parse(&id).map_err(|_| bad())
}

pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: WorkerRequest,
    path: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<SubmitRequest>,
) -> Result<Response, ApiError> {
    let id = task_id(path)?;
    req.output.guard_free_text("output")?;
    let worker = auth::market_worker(&state, &request, ip, &req.worker_id).await?;
    let Some(task) = state.store.task(id.clone()).await? else {
        return Err(task_not_found());
    };
    intake::check_output(&task, &req, &worker, state.config.tasks.max_output_bytes).await?;
    let result = engine::submit(
        &*state.store,
        NewSubmission {
            submission_id: SubmissionId::generate(),
            task_id: id,
            worker_id: req.worker_id,
            output: req.output,
            output_hash: req.output_hash,
            usage: req.usage,
            duration_ms: req.duration_ms,
            metric: req.metric,
            now_ms: unix_now_ms(),
            evaluation_timeout_ms: state.config.tasks.evaluation_timeout_s.saturating_mul(1000),
        },
    )
    .await;
    match result {
        Ok(s) => {
            let (status, outcome) = if s.new {
                (StatusCode::CREATED, "new")
            } else {
                (StatusCode::OK, "duplicate")
            };
            state.metrics.task_submission(outcome);
            if s.new {
                tracing::info!(submission_id = %s.submission.submission_id, task_id = %s.submission.task_id, "output submitted");
            }
            Ok((
                status,
                Json(s.submission.to_wire(&state.config.asset_units())),
            )
                .into_response())
        }
        Err(e) => {
            if matches!(e, TaskError::Refused(_)) {
                state.metrics.task_submission("refused");
            }
            Err(e.into())
        }
    }
}

/// A submission, for its poster, an evaluator, the submitting worker or the admin only:
/// 401 `SUBMISSION_CREDENTIAL_REQUIRED` with no credential, else the same 404 for a submission
/// that does not exist and one the credential may not read.
pub async fn get(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: WorkerRequest,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Submission>, ApiError> {
    let id = submission_id(path)?;
    auth::not_locked_out(&state, ip, &request.headers)?;
    if !auth::has_credential(&request.headers) {
        return Err(auth::submission_credential_required());
    }
    let Some(row) = state.store.submission(id).await? else {
        return Err(submission_not_readable());
    };
    let poster = state
        .store
        .task(row.task_id.clone())
        .await?
        .and_then(|t| t.client_key);
    let reader =
        auth::submission_reader(&state, &request, ip, &row.worker_id, poster.as_ref()).await?;
    match reader {
        Some(reader) => {
            tracing::debug!(submission_id = %row.submission_id, ?reader, "submission read");
            Ok(Json(row.to_wire(&state.config.asset_units())))
        }
        None => Err(submission_not_readable()),
    }
}

fn settled(state: &AppState, row: &SubmissionRow, by: &'static str) {
    let outcome = if row.status == TaskStatus::Completed {
        "completed"
    } else {
        "rejected"
    };
    state.metrics.task_evaluation(outcome, by);
    if let Some(c) = &row.credit {
        state.metrics.settled("credited", &c.asset, c.net);
    }
    tracing::info!(submission_id = %row.submission_id, outcome, by, "submission settled");
}

pub async fn evaluate(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    ApiJson(evaluation): ApiJson<Evaluation>,
) -> Result<Json<Submission>, ApiError> {
    let id = submission_id(path)?;
    evaluation.reasons.guard_free_text("reasons")?;
    auth::evaluator_key(&state, &headers, ip).await?;
    evaluation.validate().map_err(|e| {
        invalid(
            e.to_string(),
            "Send {score: 0-100, passed, reasons: [...], metric?}; a rejection needs a reason.",
        )
    })?;
    let row = engine::evaluate(
        &*state.store,
        EvaluateArgs {
            submission_id: id,
            evaluation,
            auto: false,
            now_ms: unix_now_ms(),
            policy: state.config.tasks.settle_policy(),
        },
    )
    .await?;
    settled(&state, &row, "evaluator");
    Ok(Json(row.to_wire(&state.config.asset_units())))
}

pub async fn dispute(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: WorkerRequest,
    path: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<DisputeRequest>,
) -> Result<Json<Submission>, ApiError> {
    let id = submission_id(path)?;
    req.reason.guard_free_text("reason")?;
    let worker = auth::market_worker(&state, &request, ip, &req.worker_id).await?;
    // What the orchestrator knows of the worker's secrets: its token's verifier, its wallet.
    let (wallets, hashes) = ([worker.wallet], [worker.token_sha256]);
    let host = HostSecrets {
        known: &[],
        wallets: &wallets,
        token_hashes: &hashes,
    };
    check_free_text("reason", &req.reason, &host)?;
    if req.reason.trim().is_empty() || req.reason.chars().count() > MAX_DISPUTE_REASON_LEN {
        return Err(invalid(
            format!("reason must be 1 to {MAX_DISPUTE_REASON_LEN} characters, not blank"),
            "Say why the rejection is wrong, briefly.",
        ));
    }
    let row = engine::dispute(
        &*state.store,
        DisputeArgs {
            submission_id: id,
            worker_id: req.worker_id,
            reason: req.reason,
            now_ms: unix_now_ms(),
        },
    )
    .await?;
    tracing::info!(submission_id = %row.submission_id, "rejection disputed");
    Ok(Json(row.to_wire(&state.config.asset_units())))
}

pub async fn resolve(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Json<Submission>, ApiError> {
    let id = submission_id(path)?;
    req.note.guard_free_text("note")?;
    auth::require_admin(&state, &headers, ip).await?;
    let for_worker = match req.outcome {
        TaskStatus::Completed => true,
        TaskStatus::Rejected => false,
        _ => {
            return Err(invalid(
                "outcome must be completed (for the worker) or rejected (the rejection stands)",
                "Resolve with --outcome completed or --outcome rejected.",
            ));
        }
    };
    if req.note.chars().count() > MAX_DISPUTE_REASON_LEN {
        return Err(invalid(
            format!("note must be at most {MAX_DISPUTE_REASON_LEN} characters"),
            "Shorten the note.",
        ));
    }
    let row = engine::resolve(
        &*state.store,
        ResolveArgs {
            submission_id: id,
            for_worker,
            note: req.note,
            now_ms: unix_now_ms(),
            policy: state.config.tasks.settle_policy(),
        },
    )
    .await?;
    settled(&state, &row, "operator");
    Ok(Json(row.to_wire(&state.config.asset_units())))
}
