//! The OpenAI-compatible gateway (docs/PROTOCOL.md, "Gateway"): client-key auth, the chat request,
//! routing through the [`crate::orchestrator::hub`], and the answer: [`complete`] (one
//! `chat.completion`) or [`stream`] (server-sent `chat.completion.chunk`s, forwarded as they
//! arrive).
//!
//! Every answer carries `x-basis-worker-id` and `x-basis-job-id`. A non-streamed answer also
//! carries `x-basis-receipt-id` and `x-basis-receipt-hash`; a stream's headers leave before
//! the receipt exists, so its last chunk (the one with `finish_reason`) carries
//! `basis_receipt_id` and `basis_receipt_hash` instead, just before `data: [DONE]`.

pub mod complete;
pub mod forward;
pub mod stream;

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth;
use super::error::ApiError;
use super::hub::{JobFailure, JobHandle, NoRoute};
use super::state::AppState;
use super::store::{KeyRole, KeySha256};
use crate::domain::ErrorCode;
use crate::wire::{JOB_ID_HEADER, MAX_MODEL_LEN, WORKER_ID_HEADER};

/// How many times a job refused by a busy or draining worker is routed again.
const REROUTES: u32 = 2;

/// A validated chat request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    /// The whole body, forwarded to the worker as it is.
    pub body: Value,
}

impl ChatRequest {
    pub fn parse(body: Value) -> Result<Self, ApiError> {
        let bad = |m: &str| {
            ApiError::bad_request(ErrorCode::InvalidArgument, m)
                .with_fix("Send an OpenAI chat body: {\"model\": \"…\", \"messages\": [{\"role\": \"user\", \"content\": \"…\"}]}.")
        };
        let Value::Object(map) = &body else {
            return Err(bad("the request body must be a JSON object"));
        };
        let model = match map.get("model") {
            Some(Value::String(m)) if !m.is_empty() && m.chars().count() <= MAX_MODEL_LEN => {
                m.clone()
            }
            _ => return Err(bad("`model` must be a model name (see GET /v1/models)")),
        };
        match map.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => {}
            _ => return Err(bad("`messages` must be a non-empty array")),
        }
        let stream = match map.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("`stream` must be true or false")),
        };
        Ok(Self {
            model,
            stream,
            body,
        })
    }
}

/// `Authorization: Bearer <client key>`, unless the orchestrator runs `--open`.
pub async fn authorize(state: &AppState, headers: &HeaderMap, ip: IpAddr) -> Result<(), ApiError> {
    if state.config.open {
        return Ok(());
    }
    auth::not_locked_out(state, ip, headers)?;
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(unauthorized(
            ErrorCode::ClientKeyRequired,
            "the gateway needs a client key",
        ));
    };
    let sha = KeySha256::of(key);
    let now = std::time::Instant::now();
    if state.client_keys.is_fresh(&sha, now) {
        return Ok(());
    }
    if state.store.key_role(sha).await? == Some(KeyRole::Client) {
        state.client_keys.remember(sha, now);
        state.auth_succeeded(auth::presented(headers));
        Ok(())
    } else {
        state.auth_failed(ip, auth::presented(headers));
        Err(unauthorized(
            ErrorCode::ClientKeyInvalid,
            "the key is not a client key of this orchestrator (it was not shown)",
        ))
    }
}

fn unauthorized(code: ErrorCode, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message).with_fix(
        "Send Authorization: Bearer <client key>; the operator creates one with \
         `basis orchestrator keys create --role client`.",
    )
}

/// Where a request may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// By a worker connected here, or else by one connected to another replica.
    Anywhere,
    /// Only by a worker connected here: a call another replica forwarded (it never goes on).
    HereOnly,
}

/// Why no local worker took a request: the reason and the error to answer with.
#[derive(Debug)]
pub struct Refusal {
    pub why: NoRoute,
    pub error: ApiError,
}

impl Refusal {
    /// The answer: the refusal itself, or (`Reach::Anywhere`, no local worker free) the answer
    /// of another replica that has one.
    pub async fn answer(self, state: &AppState, req: &ChatRequest, reach: Reach) -> Response {
        let forwardable = matches!(self.why, NoRoute::NoWorker | NoRoute::AllBusy);
        if reach == Reach::Anywhere && forwardable && state.replica.is_some() {
            forward::respond(state, req, self.error).await
        } else {
            self.error.into_response()
        }
    }
}

/// Routes the request to a local worker, or says why not (503 + Retry-After).
pub fn dispatch(state: &AppState, req: &ChatRequest) -> Result<JobHandle, Refusal> {
    let timeout = std::time::Duration::from_secs(state.config.job_timeout_s);
    state
        .hub
        .dispatch(&req.model, req.body.clone(), req.stream, timeout)
        .map_err(|why| Refusal {
            why,
            error: no_route(state, &req.model, why),
        })
}

fn no_route(state: &AppState, model: &str, why: NoRoute) -> ApiError {
    let (code, message, retry) = match why {
        NoRoute::NoWorker => (
            ErrorCode::NoWorkerAvailable,
            format!("no online worker serves the model `{model}` now"),
            state.config.heartbeat_interval_s,
        ),
        NoRoute::AllBusy => (
            ErrorCode::NoWorkerAvailable,
            format!("every online worker serving `{model}` is at capacity"),
            1,
        ),
        NoRoute::Draining => (
            ErrorCode::OrchestratorDraining,
            "the orchestrator is shutting down and takes no new jobs".to_owned(),
            state.config.heartbeat_interval_s,
        ),
    };
    let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        .with_fix("Retry after the Retry-After delay; GET /v1/models lists the models served now.");
    e.retry_after_s = Some(retry.max(1));
    e
}

/// The error a failed job answers with.
pub fn failure_error(f: &JobFailure) -> ApiError {
    let mut e = ApiError::new(f.status, f.code, f.message.clone());
    if f.code == ErrorCode::WorkerBusy {
        e.retry_after_s = Some(1);
    }
    e
}

/// `x-basis-worker-id` and `x-basis-job-id`.
pub fn job_headers(job: &JobHandle) -> [(HeaderName, HeaderValue); 2] {
    [
        (
            HeaderName::from_static(WORKER_ID_HEADER),
            header_value(job.worker_id().as_str()),
        ),
        (
            HeaderName::from_static(JOB_ID_HEADER),
            header_value(job.job_id.as_str()),
        ),
    ]
}

/// Ids and hashes are ASCII; anything else becomes an empty value rather than a panic.
pub fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// An error response that still names the worker and the job.
pub fn job_error_response(job: &JobHandle, f: &JobFailure) -> Response {
    (job_headers(job), failure_error(f)).into_response()
}

/// `chatcmpl-` + the job id's hex.
pub fn completion_id(job: &JobHandle) -> String {
    let hex = job
        .job_id
        .as_str()
        .strip_prefix(crate::domain::JobId::PREFIX)
        .unwrap_or(job.job_id.as_str());
    format!("chatcmpl-{hex}")
}

/// Whether a failure may be routed again to another worker (nothing was sent yet).
pub fn may_reroute(f: &JobFailure, attempt: u32) -> bool {
    f.code == ErrorCode::WorkerBusy && attempt < REROUTES
}
