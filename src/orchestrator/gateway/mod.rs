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
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::auth;
use super::error::ApiError;
use super::hub::{JobFailure, JobHandle, JobSpec, Lane, NoRoute};
use super::quota::{ClientGrant, OverQuota};
use super::reservation::Reservation;
use super::state::AppState;
use super::state::unix_now;
use super::store::{KeyRole, KeySha256, utc_day};
use crate::domain::ErrorCode;
use crate::wire::{JOB_ID_HEADER, MAX_MODEL_LEN, WORKER_ID_HEADER, WORKER_LABEL_HEADER};

/// How many times a job refused by a busy or draining worker is routed again.
const REROUTES: u32 = 2;

/// A validated chat request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub stream: bool,
    /// The whole body, forwarded to the worker as it is.
    pub body: Value,
    /// The caller's client key (none with `--open`): the job's tokens count against its
    /// quota and usage.
    pub client_key: Option<KeySha256>,
    /// Only a worker with this label (`x-basis-worker-label`).
    pub label: Option<String>,
    /// Its hold on its key's daily tokens, kept until its job ends.
    pub reservation: Option<Arc<Reservation>>,
    /// The most prompt tokens it can take, whatever the tokenizer (`metering::prompt_bound`).
    pub prompt_bound: u64,
    /// The most completion tokens it asked for, if it said (`metering::completion_limit`).
    pub completion_limit: Option<u64>,
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
            prompt_bound: super::metering::prompt_bound(&body),
            completion_limit: super::metering::completion_limit(&body),
            body,
            client_key: None,
            label: None,
            reservation: None,
        })
    }

    /// Reads `x-basis-worker-label` (400 when it is not a label).
    pub fn with_label(mut self, headers: &HeaderMap) -> Result<Self, ApiError> {
        let Some(value) = headers.get(WORKER_LABEL_HEADER) else {
            return Ok(self);
        };
        let label = value.to_str().unwrap_or_default().trim();
        crate::domain::check_label(label).map_err(|e| {
            ApiError::bad_request(
                ErrorCode::InvalidArgument,
                format!("{WORKER_LABEL_HEADER}: {e}"),
            )
            .with_fix("Ask for a label a worker registered with, e.g. region=eu.")
        })?;
        self.label = Some(label.to_owned());
        Ok(self)
    }

    /// What the hub runs for it.
    pub fn spec(&self, timeout: std::time::Duration) -> JobSpec {
        JobSpec {
            model: self.model.clone(),
            label: self.label.clone(),
            stream: self.stream,
            timeout,
            client_key: self.client_key,
            reservation: self.reservation.clone(),
            prompt_bound: self.prompt_bound,
            completion_limit: self.completion_limit,
        }
    }

    /// The model, and the label asked for, as messages name them.
    fn shown(&self) -> String {
        match &self.label {
            Some(label) => format!("`{}` with label `{label}`", self.model),
            None => format!("`{}`", self.model),
        }
    }
}

/// Who is calling the gateway: its wait-queue lane, its client key (none with `--open`), and
/// for a chat completion under a daily token quota, its hold on the key's tokens.
#[derive(Debug)]
pub struct Caller {
    pub lane: Lane,
    pub key: Option<KeySha256>,
    pub reservation: Option<Arc<Reservation>>,
}

/// `Authorization: Bearer <client key>`, unless the orchestrator runs `--open`, then the key's
/// quotas (`quota`): 401 without a valid client key, 429 `QUOTA_EXCEEDED` over a quota. The
/// caller's [`Lane`] in the wait queue is its key, or with `--open` its address.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<Caller, ApiError> {
    authorize_for(state, headers, ip, None).await
}

/// [`authorize`] for a chat completion that may use up to `max_tokens`: the key's daily token
/// quota applies too (`quota::Quotas::admit`).
pub async fn authorize_chat(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    max_tokens: u64,
) -> Result<Caller, ApiError> {
    authorize_for(state, headers, ip, Some(max_tokens)).await
}

/// What a chat body says it may use: `max_completion_tokens`, else `max_tokens`, else 1.
pub fn max_tokens_of(body: &Value) -> u64 {
    ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
        .unwrap_or(1)
}

async fn authorize_for(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    reserve: Option<u64>,
) -> Result<Caller, ApiError> {
    if state.config.open {
        return Ok(Caller {
            lane: lane_of(&format!("address {ip}")),
            key: None,
            reservation: None,
        });
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
    let unix = unix_now();
    let grant = if let Some(grant) = state.client_keys.get(&sha, now) {
        grant
    } else {
        let day = utc_day(unix);
        let epoch = state.client_keys.epoch();
        match state.store.key_grant(sha, day).await? {
            Some(found) if found.role == KeyRole::Client => {
                let grant = ClientGrant::read(&found, day);
                state
                    .client_keys
                    .remember_unless_forgotten(sha, now, grant.clone(), epoch);
                state.auth_succeeded(auth::presented(headers));
                grant
            }
            _ => {
                state.auth_failed(ip, auth::presented(headers));
                return Err(unauthorized(
                    ErrorCode::ClientKeyInvalid,
                    "the key is not a client key of this orchestrator (it was not shown)",
                ));
            }
        }
    };
    let reservation = match state.quotas.admit(sha, &grant, reserve, unix, now) {
        Ok(held) => held.map(Arc::new),
        Err(over) => {
            state.metrics.rate_limited("quota");
            return Err(over_quota(&over));
        }
    };
    Ok(Caller {
        lane: Lane(sha.0),
        key: Some(sha),
        reservation,
    })
}

fn over_quota(over: &OverQuota) -> ApiError {
    let secs = crate::orchestrator::rate_limit::retry_after_secs(over.retry_after());
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::QuotaExceeded,
        format!("{}; retry in {secs} s", over.message()),
    )
    .with_fix(
        "Wait for the Retry-After delay, or ask the operator for a higher limit \
         (`basis orchestrator keys set-limits`).",
    )
    .with_retry_after(secs)
}

fn unauthorized(code: ErrorCode, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message).with_fix(
        "Send Authorization: Bearer <client key>; the operator creates one with \
         `basis orchestrator keys create --role client`.",
    )
}

/// A wait-queue lane for a caller named by `who` (an address, a replica).
pub fn lane_of(who: &str) -> Lane {
    use sha2::Digest as _;
    Lane(sha2::Sha256::digest(who.as_bytes()).into())
}

/// Where a request may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// By a worker connected here, or else by one connected to another replica; it may wait
    /// in the queue.
    Anywhere,
    /// Only by a worker connected here, now: a call another replica forwarded (it is never
    /// forwarded again, and waits in the forwarding replica's queue rather than here).
    HereOnly,
}

/// A dispatched job, or the answer to give instead (a refusal, or another replica's answer).
pub async fn route(
    state: &AppState,
    req: &ChatRequest,
    reach: Reach,
    lane: Lane,
) -> Result<JobHandle, Response> {
    let spec = req.spec(std::time::Duration::from_secs(state.config.job_timeout_s));
    let why = match state.hub.dispatch(&spec, req.body.clone()) {
        Ok(job) => return Ok(job),
        Err(why) => why,
    };
    let anywhere = reach == Reach::Anywhere;
    let mut busy_elsewhere = None;
    if anywhere && matches!(why, NoRoute::NoWorker | NoRoute::AllBusy) && state.replica.is_some() {
        match forward::respond(state, req).await {
            forward::Forwarded::Answered(answer) => return Err(answer),
            forward::Forwarded::Busy(answer) => busy_elsewhere = Some(answer),
            forward::Forwarded::Nobody => {}
        }
    }
    if anywhere && why == NoRoute::AllBusy && state.config.queue.enabled() {
        return wait(state, req, lane).await;
    }
    Err(busy_elsewhere.unwrap_or_else(|| no_route(state, &req.shown(), why).into_response()))
}

/// Waits in the model's queue for a worker (at most `queue_timeout_ms`), then dispatches to
/// it; 503 with `Retry-After` when the queue is full or the wait runs out. Dropping the future
/// (the client went away) leaves the queue at once.
async fn wait(state: &AppState, req: &ChatRequest, lane: Lane) -> Result<JobHandle, Response> {
    let settings = state.config.queue;
    let started = std::time::Instant::now();
    let spec = req.spec(std::time::Duration::from_secs(state.config.job_timeout_s));
    let Ok(mut ticket) = state
        .hub
        .enqueue(&spec.queue_key(), lane, settings.max_per_model)
    else {
        state.metrics.queued("full", started.elapsed());
        return Err(busy(format!(
            "every online worker serving {} is at capacity and {} requests already wait for one",
            req.shown(),
            settings.max_per_model
        )));
    };
    let depth = QueueDepth::joined(state, started);
    let mut request = req.body.clone();
    let deadline = tokio::time::Instant::now() + settings.timeout;
    loop {
        let Ok(got) = tokio::time::timeout_at(deadline, ticket.worker()).await else {
            depth.settle("timeout");
            return Err(busy(format!(
                "every online worker serving {} stayed at capacity for the {} ms this \
                     request waited",
                req.shown(),
                settings.timeout.as_millis()
            )));
        };
        let Some(live) = got else {
            depth.settle("drained");
            return Err(no_route(state, &req.shown(), NoRoute::Draining).into_response());
        };
        match state.hub.dispatch_to(live, &spec, request) {
            Ok(job) => {
                depth.settle("served");
                return Ok(job);
            }
            // That worker's connection closed as it was handed over: wait for the next one.
            Err(back) => {
                request = back;
                let Ok(again) = state
                    .hub
                    .enqueue(&spec.queue_key(), lane, settings.max_per_model)
                else {
                    depth.settle("full");
                    return Err(busy("the wait queue filled up".to_owned()));
                };
                ticket = again;
            }
        }
    }
}

/// Counts a request in the queue-depth gauge while it waits, and its outcome once: `gone`
/// when its client left first (the future was dropped).
struct QueueDepth<'s> {
    state: &'s AppState,
    started: std::time::Instant,
    outcome: &'static str,
}

impl<'s> QueueDepth<'s> {
    fn joined(state: &'s AppState, started: std::time::Instant) -> Self {
        state.metrics.queue_depth(1);
        Self {
            state,
            started,
            outcome: "gone",
        }
    }

    fn settle(mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for QueueDepth<'_> {
    fn drop(&mut self) {
        self.state.metrics.queue_depth(-1);
        self.state
            .metrics
            .queued(self.outcome, self.started.elapsed());
    }
}

/// 503 `NO_WORKER_AVAILABLE` with `Retry-After: 1`.
fn busy(message: String) -> Response {
    let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NoWorkerAvailable, message)
        .with_fix("Retry after the Retry-After delay, or raise the workers' capacity (BASIS_WORKER_CAPACITY).");
    e.retry_after_s = Some(1);
    e.into_response()
}

/// `what`: the model (and label) asked for, quoted.
fn no_route(state: &AppState, what: &str, why: NoRoute) -> ApiError {
    let (code, message, retry) = match why {
        NoRoute::NoWorker => (
            ErrorCode::NoWorkerAvailable,
            format!("no online worker serves the model {what} now"),
            state.config.heartbeat_interval_s,
        ),
        NoRoute::AllBusy => (
            ErrorCode::NoWorkerAvailable,
            format!("every online worker serving {what} is at capacity"),
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
