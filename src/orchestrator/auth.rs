//! Who is asking: the enrollment key (gated registration), the admin key, the worker (its
//! signed request, `signed`, or a legacy worker's `Authorization: Bearer <token>`) and, for the task market, the evaluator
//! key (`Authorization: Bearer <key>`) and who may read a submission ([`submission_reader`]).
//! Keys and tokens are hashed and compared in constant time; none is ever logged or echoed.
//!
//! The failed-authentication lockout ([`not_locked_out`]): every failure counts against the
//! client address (the real client behind a trusted proxy: `client_ip`) and against the
//! credential presented ([`presented`]). A credential that keeps failing is refused unchecked
//! (429); an address that keeps failing is refused for every credential except one that
//! passed lately, so a worker or client already proven keeps working while someone behind
//! the same address (a NAT, a proxy) guesses.

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;
use super::market::problems::worker_not_found;
use super::rate_limit::retry_after_secs;
use super::signed::{self, WorkerRequest};
use super::state::AppState;
use super::store::{KeyRole, KeySha256, WorkerRow};
use crate::domain::{ErrorCode, TokenSha256, WorkerId, WorkerToken};
use crate::wire::signature::LABEL;
use crate::wire::{ADMIN_KEY_HEADER, ENROLLMENT_KEY_HEADER};

/// What a credential header held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Absent,
    Valid,
    Invalid,
}

impl Credential {
    pub fn is_valid(self) -> bool {
        self == Self::Valid
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap_or_default().trim())
}

/// The credentials `headers` present (`Authorization`, the admin key and the enrollment key
/// headers), hashed together; `None` when there are none.
pub fn presented(headers: &HeaderMap) -> Option<KeySha256> {
    let names = [
        header::AUTHORIZATION.as_str(),
        ADMIN_KEY_HEADER,
        ENROLLMENT_KEY_HEADER,
    ];
    let values: Vec<&str> = names
        .iter()
        .map(|name| header_str(headers, name).unwrap_or_default())
        .collect();
    values
        .iter()
        .any(|v| !v.is_empty())
        .then(|| KeySha256::of(&values.join("\n")))
}

/// Checks `x-basis-admin-key` against the config's admin hashes and the stored admin keys.
pub async fn admin_key(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<Credential, ApiError> {
    let Some(key) = header_str(headers, ADMIN_KEY_HEADER) else {
        return Ok(Credential::Absent);
    };
    let hash = KeySha256::of(key);
    // Check every configured hash (no early exit), then the store.
    let in_config = state
        .config
        .admin_keys
        .iter()
        .fold(false, |found, k| found | k.ct_eq(&hash));
    let valid = in_config || state.store.key_role(hash).await? == Some(KeyRole::Admin);
    if valid {
        tracing::info!(%ip, "admin key accepted");
        state.auth_succeeded(presented(headers));
        Ok(Credential::Valid)
    } else {
        state.auth_failed(ip, presented(headers));
        Ok(Credential::Invalid)
    }
}

/// Checks `Authorization: Bearer <token>` against the stored token hash (a legacy worker's
/// proof, and the one-time proof that moves it to a device key).
pub fn worker_proof(
    state: &AppState,
    headers: &HeaderMap,
    stored: &TokenSha256,
    ip: IpAddr,
) -> Credential {
    if header_str(headers, header::AUTHORIZATION.as_str()).is_none() {
        return Credential::Absent;
    }
    if token_matches(headers, stored) {
        state.auth_succeeded(presented(headers));
        Credential::Valid
    } else {
        state.auth_failed(ip, presented(headers));
        Credential::Invalid
    }
}

/// For a new registration while gated: the enrollment key must be present (401) and right (403).
pub fn enrollment_key(state: &AppState, headers: &HeaderMap, ip: IpAddr) -> Result<(), ApiError> {
    let Some(expected) = state.config.enrollment_key else {
        return Ok(());
    };
    let Some(key) = header_str(headers, ENROLLMENT_KEY_HEADER).filter(|k| !k.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::RegistrationGated,
            "this orchestrator registers new workers only with the operator's enrollment key",
        )
        .with_fix(
            "Ask the orchestrator's operator for the enrollment key and put it in the \
             BASIS_ENROLLMENT_KEY environment variable (or the env file), then register again \
             with register_worker (`basis register`); it is never a tool argument.",
        ));
    };
    if KeySha256::of(key).ct_eq(&expected) {
        state.auth_succeeded(presented(headers));
        Ok(())
    } else {
        state.auth_failed(ip, presented(headers));
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::EnrollmentKeyInvalid,
            "the enrollment key is not the one this orchestrator expects (it was not shown)",
        )
        .with_fix("Check BASIS_ENROLLMENT_KEY against the key the operator gave you."))
    }
}

/// Before a credential is checked: 429 while the credential `headers` present has spent its
/// failed-authentication bucket, or while `ip` has and that credential has not passed lately
/// (see the module doc).
pub fn not_locked_out(state: &AppState, ip: IpAddr, headers: &HeaderMap) -> Result<(), ApiError> {
    let credential = presented(headers);
    let refused = |wait| {
        state.metrics.rate_limited("auth_failures");
        Err(ApiError::rate_limited(
            "failed authentications",
            retry_after_secs(wait),
        ))
    };
    if let Some(credential) = credential {
        if let Err(wait) = state.credential_failure_limit.check(credential) {
            return refused(wait);
        }
        if state
            .proven
            .is_fresh(&credential, std::time::Instant::now())
        {
            return Ok(());
        }
    }
    match state.auth_failure_limit.check(ip) {
        Ok(()) => Ok(()),
        Err(wait) => refused(wait),
    }
}

/// Worker `id`'s row, checked to be the one asking: the one worker-auth check every worker
/// action goes through (docs/SECURITY.md, "Signed requests"). A worker with a device key must
/// sign the request (`signed::check`); a legacy worker without one proves its token
/// (`Authorization: Bearer`), which stops working once it registers a key. 404
/// `WORKER_NOT_FOUND`, 403 `WORKER_REVOKED`, 401 `WORKER_SIGNATURE_INVALID` or
/// `WORKER_TOKEN_INVALID`, 429 after too many failures.
pub async fn market_worker(
    state: &AppState,
    req: &WorkerRequest,
    ip: IpAddr,
    id: &WorkerId,
) -> Result<WorkerRow, ApiError> {
    not_locked_out(state, ip, &req.headers)?;
    let Some(row) = state.store.worker(id.clone()).await? else {
        return Err(worker_not_found(id));
    };
    let verdict = proven(state, req, &row).await;
    match &verdict {
        Ok(()) => state.auth_succeeded(presented(&req.headers)),
        Err(e) if e.problem.code != ErrorCode::Internal => {
            state.auth_failed(ip, presented(&req.headers));
        }
        Err(_) => {}
    }
    verdict.map(|()| row)
}

/// Whether `req` is by worker `row`: its signature, or for a legacy worker its token.
async fn proven(state: &AppState, req: &WorkerRequest, row: &WorkerRow) -> Result<(), ApiError> {
    let id = &row.worker_id;
    if row.revoked_at.is_some() {
        return Err(signed::revoked(id));
    }
    if let Some(key) = &row.public_key {
        if !req.is_signed() {
            return Err(signed::refused(format!(
                "worker `{id}` has a device key: this action must be signed with it (a bearer \
                 token is no longer accepted)"
            )));
        }
        return signed::check(state, req, LABEL, id, key).await;
    }
    if token_matches(&req.headers, &row.token_sha256) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::WorkerTokenInvalid,
        format!("this action needs the token of worker `{id}` (it was not shown)"),
    )
    .with_fix(
        "The env file's BASIS_WORKER_TOKEN is not the token this worker registered with. Run \
         register_worker (`basis register`) on the host whose env file holds the worker's \
         token: it moves the worker to a device key that never leaves the host.",
    ))
}

/// Whether `Authorization: Bearer <token>` holds the token whose hash is `stored`.
fn token_matches(headers: &HeaderMap, stored: &TokenSha256) -> bool {
    header_str(headers, header::AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| WorkerToken::parse(t.trim()).ok())
        .is_some_and(|token| token.matches(stored))
}

/// Who may read a submission (its output included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmissionReader {
    /// The admin key, in `x-basis-admin-key`.
    Admin,
    /// An evaluator key, as the bearer.
    Evaluator,
    /// The key the task was posted with (a client key; any key with `--open`), as the bearer.
    Poster,
    /// The submitting worker, by the worker-auth check.
    Worker,
}

/// Whether `headers` carry any credential a submission could be read with.
pub fn has_credential(headers: &HeaderMap) -> bool {
    if headers.contains_key(crate::wire::signature::SIGNATURE_INPUT_HEADER) {
        return true;
    }
    bearer(headers).is_some()
        || header_str(headers, ADMIN_KEY_HEADER).is_some_and(|k| !k.is_empty())
}

/// 401 `SUBMISSION_CREDENTIAL_REQUIRED`: reading a submission with no credential at all.
pub fn submission_credential_required() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::SubmissionCredentialRequired,
        "reading a submission needs a credential, and none was sent",
    )
    .with_fix(
        "Send Authorization: Bearer <key> with the client key that posted the task, an \
         evaluator key or the submitting worker's signature, or the admin key in \
         x-basis-admin-key; basis's get_submission and verify_output do this from the env file.",
    )
}

/// Who the credentials in `headers` make a reader of a submission by `worker` to a task
/// posted with the key hashed as `poster`, if anyone. A credential that matches none of them
/// counts as a failed authentication.
pub async fn submission_reader(
    state: &AppState,
    req: &WorkerRequest,
    ip: IpAddr,
    worker: &WorkerId,
    poster: Option<&KeySha256>,
) -> Result<Option<SubmissionReader>, ApiError> {
    let headers = &req.headers;
    if admin_key(state, headers, ip).await?.is_valid() {
        return Ok(Some(SubmissionReader::Admin));
    }
    if req.is_signed() {
        return Ok(match state.store.worker(worker.clone()).await? {
            Some(row) if proven(state, req, &row).await.is_ok() => Some(SubmissionReader::Worker),
            _ => None,
        });
    }
    let Some(key) = bearer(headers) else {
        return Ok(None);
    };
    let hash = KeySha256::of(key);
    let role = state.store.key_role(hash).await?;
    if role == Some(KeyRole::Evaluator) {
        return Ok(Some(SubmissionReader::Evaluator));
    }
    let posted_it = poster.is_some_and(|p| p.ct_eq(&hash));
    if posted_it && (state.config.open || role == Some(KeyRole::Client)) {
        return Ok(Some(SubmissionReader::Poster));
    }
    match state.store.worker(worker.clone()).await? {
        Some(row) if proven(state, req, &row).await.is_ok() => Ok(Some(SubmissionReader::Worker)),
        _ => Ok(None),
    }
}

/// The bearer key of `Authorization`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    header_str(headers, header::AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// An evaluator key in `Authorization: Bearer <key>`: 401 `EVALUATOR_KEY_REQUIRED` or
/// `EVALUATOR_KEY_INVALID`, 429 after too many failures.
pub async fn evaluator_key(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<(), ApiError> {
    not_locked_out(state, ip, headers)?;
    let fix = "Put the operator's evaluator key in the env file as BASIS_EVALUATOR_KEY; \
               verify_output (`basis evaluate SUBMISSION_ID`) sends it (it is never a tool \
               argument). The operator creates one with `basis orchestrator keys create --role \
               evaluator`.";
    let Some(key) = bearer(headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::EvaluatorKeyRequired,
            "evaluating a submission needs an evaluator key",
        )
        .with_fix(fix));
    };
    if state.store.key_role(KeySha256::of(key)).await? == Some(KeyRole::Evaluator) {
        state.auth_succeeded(presented(headers));
        Ok(())
    } else {
        state.auth_failed(ip, presented(headers));
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::EvaluatorKeyInvalid,
            "the key is not an evaluator key of this orchestrator (it was not shown)",
        )
        .with_fix(fix))
    }
}

/// The admin key in `x-basis-admin-key`: 401 `ADMIN_KEY_REQUIRED` when missing or wrong.
pub async fn require_admin(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<(), ApiError> {
    not_locked_out(state, ip, headers)?;
    if admin_key(state, headers, ip).await?.is_valid() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::AdminKeyRequired,
        "this action needs the operator's admin key (none was sent, or it is wrong; it was not shown)",
    )
    .with_fix(format!(
        "Send the admin key in the {ADMIN_KEY_HEADER} header; `basis orchestrator tasks resolve` \
         reads it from BASIS_ADMIN_KEY or --admin-key-file."
    )))
}
