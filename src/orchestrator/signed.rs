//! Checking a worker's signed request (docs/SECURITY.md, "Signed requests"): the body against
//! its `Content-Digest` ([`digest`], a middleware, before any handler reads the body), then in
//! [`check`] the RFC 9421 signature against the worker's registered key, the clock window, the
//! origins this orchestrator answers to, and the nonce memory. The profile itself (what is
//! signed, in which order) is `wire::signature`, shared with the worker's side.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::{AppState, unix_now};
use crate::domain::{DevicePublicKey, ErrorCode, WorkerId};
use crate::wire::signature::{
    self, CONTENT_DIGEST_HEADER, MAX_SKEW_S, ReceivedSignature, SIGNATURE_HEADER,
    SIGNATURE_INPUT_HEADER,
};

/// The body's digest, checked against its `Content-Digest` by [`digest`].
#[derive(Debug, Clone)]
struct CheckedDigest(String);

/// The largest body [`digest`] reads (the biggest route limit; each route still applies its
/// own when it parses the body).
#[derive(Debug, Clone, Copy)]
pub struct DigestLimit(pub usize);

/// Middleware: a request carrying `Signature-Input` must carry a `Content-Digest` that matches
/// its body; the checked digest is handed to [`WorkerRequest`]. Other requests pass untouched
/// (the gateway's bodies are never buffered here).
pub async fn digest(State(limit): State<DigestLimit>, req: Request, next: Next) -> Response {
    if !req.headers().contains_key(SIGNATURE_INPUT_HEADER) {
        return next.run(req).await;
    }
    let claimed = req
        .headers()
        .get(CONTENT_DIGEST_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit.0).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidArgument,
            "the signed request's body is too large or could not be read",
        )
        .into_response();
    };
    let actual = signature::content_digest(&bytes);
    if claimed.as_deref() != Some(actual.as_str()) {
        return refused(
            "the body does not match its Content-Digest (it was changed after signing, or the \
             header is missing)",
        )
        .into_response();
    }
    parts.extensions.insert(CheckedDigest(actual));
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// What a worker route needs to check a signature: the method, the path and query as
/// received, the headers, and the body's checked digest.
#[derive(Debug, Clone)]
pub struct WorkerRequest {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    digest: Option<String>,
}

impl WorkerRequest {
    pub fn is_signed(&self) -> bool {
        self.headers.contains_key(SIGNATURE_INPUT_HEADER)
    }
}

impl FromRequestParts<AppState> for WorkerRequest {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Infallible> {
        Ok(Self {
            method: parts.method.clone(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
            headers: parts.headers.clone(),
            digest: parts.extensions.get::<CheckedDigest>().map(|d| d.0.clone()),
        })
    }
}

/// 401 `WORKER_SIGNATURE_INVALID` with `why`.
pub fn refused(why: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::WorkerSignatureInvalid,
        why,
    )
    .with_fix(
        "basis signs every worker request with the device key in the env file \
         (BASIS_DEVICE_KEY): run the action again with basis on the worker's host. If the key \
         there is not the one registered, run register_worker (`basis register`) to register \
         it, or `basis rotate-key` to change keys. If the orchestrator's clock or yours is off \
         by minutes, fix the clock; if this orchestrator is reached under another name, its \
         operator lists it in `origins`.",
    )
}

/// 403 `WORKER_REVOKED`.
pub fn revoked(id: &WorkerId) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::WorkerRevoked,
        format!("worker `{id}` was revoked by the orchestrator's operator"),
    )
    .with_fix(
        "Ask the operator to re-register the worker with the admin key (`basis register` with \
         BASIS_ADMIN_KEY set on the host), or register under another worker_id.",
    )
}

/// The origins a signature may name here: `origins`, as the server resolved it at start
/// (configured, or the bound address's own; never the request's `Host`, which the sender
/// chooses).
pub fn origins(state: &AppState) -> &[String] {
    &state.config.origins
}

/// Checks the `label` signature of `req`: by `key`, for worker `id`, made within
/// [`MAX_SKEW_S`], for this orchestrator (one of [`origins`]) and this method, path and body,
/// with a nonce never seen before (then remembered). The message says which check failed;
/// none shows a header's value.
pub async fn check(
    state: &AppState,
    req: &WorkerRequest,
    label: &'static str,
    id: &WorkerId,
    key: &DevicePublicKey,
) -> Result<(), ApiError> {
    let header = |name| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let got = signature::received(
        label,
        header(SIGNATURE_INPUT_HEADER),
        header(SIGNATURE_HEADER),
    )
    .map_err(|e| refused(e.to_string()))?;
    let Some(digest) = req.digest.as_deref() else {
        return Err(refused("the request's Content-Digest was not checked"));
    };
    if got.keyid != *id {
        return Err(refused(format!(
            "the `{label}` signature's keyid names another worker than `{id}`"
        )));
    }
    let now = unix_now();
    if !got.fresh(now) {
        return Err(refused(format!(
            "the `{label}` signature was made {} s from the orchestrator's clock (at most \
             {MAX_SKEW_S} s)",
            got.created.abs_diff(now)
        )));
    }
    if !verifies_here(state, req, &got, key, digest) {
        return Err(refused(format!(
            "the `{label}` signature is not worker `{id}`'s registered key's over this request \
             to this orchestrator (signed for another origin, method, path or body, or by \
             another key)"
        )));
    }
    // Kept twice the window past `created`: a replica whose clock runs ahead must not forget
    // a nonce that another, slower one would still accept.
    let expires_ms = got
        .created
        .saturating_add(2 * MAX_SKEW_S + 1)
        .saturating_mul(1000);
    if !state
        .store
        .remember_nonce(id.clone(), got.nonce.clone(), expires_ms, now * 1000)
        .await?
    {
        return Err(refused(format!(
            "the `{label}` signature's nonce was used before: a replayed request"
        )));
    }
    Ok(())
}

/// Whether `req` carries a signature labelled `label` at all.
pub fn received_label(req: &WorkerRequest, label: &str) -> bool {
    req.headers
        .get(SIGNATURE_INPUT_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| signature::has_member(v, label))
}

fn verifies_here(
    state: &AppState,
    req: &WorkerRequest,
    got: &ReceivedSignature,
    key: &DevicePublicKey,
    digest: &str,
) -> bool {
    origins(state).iter().any(|origin| {
        let target = format!("{origin}{}", req.path_and_query);
        got.verifies(key, req.method.as_str(), &target, digest)
    })
}
