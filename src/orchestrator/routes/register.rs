//! `POST /api/workers/register`: create (201), idempotent re-register (200), update, rotate
//! the device key or move a legacy token worker to one, with proof (200), or refuse: 400 bad input, 401/403 gated, 403 closed,
//! 409 `WORKER_ID_TAKEN`, 429 rate limited. The per-IP limits run in [`limit`], before the
//! body is read.

use std::net::IpAddr;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::workers::CloseReason;
use super::workers::record;
use crate::domain::ErrorCode;
use crate::orchestrator::auth::{self, Credential};
use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::extract::ApiJson;
use crate::orchestrator::metrics::RegistrationOutcome;
use crate::orchestrator::rate_limit::retry_after_secs;
use crate::orchestrator::registration::parse_register;
use crate::orchestrator::signed::{self, WorkerRequest};
use crate::orchestrator::state::{AppState, unix_now};
use crate::orchestrator::store::{StoreError, WorkerRow};
use crate::wire::signature::{LABEL, PREVIOUS_LABEL};
use crate::wire::{RegisterRequest, RegistrationMode, worker_path};

/// The peer address, handed from [`limit`] to the handler.
#[derive(Debug, Clone, Copy)]
pub struct Peer(IpAddr);

/// Per-IP limits: registrations, and an address whose failed-authentication bucket is empty.
pub async fn limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ClientIp(ip) = ClientIp::of(&state, req.extensions(), req.headers());
    if let Err(refused) = auth::not_locked_out(&state, ip, req.headers()) {
        tracing::warn!(%ip, "registration refused: too many failed authentications");
        return refused.into_response();
    }
    if let Err(wait) = state.register_limit.try_acquire(ip) {
        state.metrics.rate_limited("register");
        return ApiError::rate_limited("registration attempts", retry_after_secs(wait))
            .into_response();
    }
    req.extensions_mut().insert(Peer(ip));
    next.run(req).await
}

pub async fn register(
    State(state): State<AppState>,
    peer: Option<axum::Extension<Peer>>,
    request: WorkerRequest,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0.0);
    let outcome = decide(&state, &request, ip, body).await;
    let metric = match &outcome {
        Ok((status, _)) if *status == StatusCode::CREATED => RegistrationOutcome::Created,
        Ok((_, Changed::Yes(_))) => RegistrationOutcome::Updated,
        Ok((_, Changed::No(_))) => RegistrationOutcome::Unchanged,
        Err(e) if e.problem.code == ErrorCode::WorkerIdTaken => RegistrationOutcome::Conflict,
        Err(_) => RegistrationOutcome::Refused,
    };
    state.metrics.registration(metric);
    let (status, changed) = outcome?;
    let row = changed.row();
    let path = worker_path(&row.worker_id);
    let mut response = (
        status,
        Json(record(row, &state.hub, state.config.shared_online_window())),
    )
        .into_response();
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&path)
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Whether the stored registration changed.
enum Changed {
    Yes(WorkerRow),
    No(WorkerRow),
}

impl Changed {
    fn row(self) -> WorkerRow {
        match self {
            Self::Yes(r) | Self::No(r) => r,
        }
    }
}

async fn decide(
    state: &AppState,
    request: &WorkerRequest,
    ip: IpAddr,
    body: Value,
) -> Result<(StatusCode, Changed), ApiError> {
    let req = parse_register(&body)?;
    let headers = &request.headers;
    let admin = auth::admin_key(state, headers, ip).await?;
    // A device key proves possession first: the request is signed by the key it registers.
    if let Some(key) = &req.public_key
        && let Err(e) = signed::check(state, request, LABEL, &req.worker_id, key).await
    {
        state.auth_failed(ip, auth::presented(headers));
        return Err(e);
    }
    match state.store.worker(req.worker_id.clone()).await? {
        None => create(state, request, ip, req, admin).await,
        Some(row) => reregister(state, request, ip, req, row, admin).await,
    }
}

async fn create(
    state: &AppState,
    request: &WorkerRequest,
    ip: IpAddr,
    req: RegisterRequest,
    admin: Credential,
) -> Result<(StatusCode, Changed), ApiError> {
    let headers = &request.headers;
    if !admin.is_valid() {
        match state.config.registration {
            RegistrationMode::Open => {}
            RegistrationMode::Gated => auth::enrollment_key(state, headers, ip)?,
            RegistrationMode::Closed => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::RegistrationClosed,
                    "this orchestrator does not accept new workers",
                )
                .with_fix("Ask the operator to open registration, or use another orchestrator."));
            }
        }
    }
    if req.public_key.is_none() {
        tracing::warn!(worker_id = %req.worker_id,
            "a legacy client registered a worker with a bearer token instead of a device key");
    }
    let id = req.worker_id.clone();
    match state.store.insert_worker(req.clone(), unix_now()).await {
        Ok(row) => {
            tracing::info!(worker_id = %id, key = ?row.public_key.map(|k| k.fingerprint()),
                "worker registered");
            Ok((StatusCode::CREATED, Changed::Yes(row)))
        }
        // A concurrent registration of the same id won the insert: this one is now a
        // re-registration (the same request is answered as unchanged; another credential
        // needs the proof as always).
        Err(StoreError::Conflict) => match state.store.worker(id.clone()).await? {
            Some(row) => Box::pin(reregister(state, request, ip, req, row, admin)).await,
            None => Err(taken(&id)),
        },
        Err(e) => Err(e.into()),
    }
}

/// Who may change an existing registration (docs/SECURITY.md, "Registration"): the admin
/// key, always (recovery, and the only way back from a revocation); else the holder of the
/// registered credential: the same device key (its signature was checked in [`decide`]), the
/// old key's `previous` signature for a new key (rotation), or a legacy worker's token, which
/// may move it to a device key once and is refused from then on.
async fn authorised(
    state: &AppState,
    request: &WorkerRequest,
    ip: IpAddr,
    req: &RegisterRequest,
    row: &WorkerRow,
    admin: Credential,
) -> Result<&'static str, ApiError> {
    if admin.is_valid() {
        return Ok("admin key");
    }
    let id = &req.worker_id;
    if row.revoked_at.is_some() {
        return Err(signed::revoked(id));
    }
    match (&row.public_key, &req.public_key) {
        (Some(old), Some(new)) if old == new => Ok("device key"),
        (Some(old), Some(_)) => {
            if !request
                .headers
                .contains_key(crate::wire::signature::SIGNATURE_INPUT_HEADER)
            {
                return Err(taken(id));
            }
            signed::check(state, request, PREVIOUS_LABEL, id, old)
                .await
                .map_err(|e| {
                    // No `previous` signature at all: the id is someone else's.
                    if signed::received_label(request, PREVIOUS_LABEL) {
                        e
                    } else {
                        taken(id)
                    }
                })?;
            Ok("rotation signed by the previous key")
        }
        (Some(_), None) => Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::WorkerIdTaken,
            format!(
                "worker `{id}` authenticates with a device key; a token registration is no \
                 longer accepted for it"
            ),
        )
        .with_fix(
            "Run register_worker (`basis register`) with a basis that has the device key \
             (BASIS_DEVICE_KEY in the env file); if the key is lost, the operator re-registers \
             the worker with the admin key.",
        )),
        (None, _) => {
            if auth::worker_proof(state, &request.headers, &row.token_sha256, ip).is_valid() {
                Ok(if req.public_key.is_some() {
                    "token, moving to a device key"
                } else {
                    "token"
                })
            } else {
                Err(taken(id))
            }
        }
    }
}

async fn reregister(
    state: &AppState,
    request: &WorkerRequest,
    ip: IpAddr,
    req: RegisterRequest,
    row: WorkerRow,
    admin: Credential,
) -> Result<(StatusCode, Changed), ApiError> {
    if row.same_registration(&req) {
        return Ok((StatusCode::OK, Changed::No(row)));
    }
    let by = authorised(state, request, ip, &req, &row, admin).await?;
    let id = req.worker_id.clone();
    let rotated = !row.token_sha256.ct_eq(&req.token_sha256);
    match state
        .store
        .update_registration(req, row.token_sha256, unix_now(), admin.is_valid())
        .await?
    {
        Some(updated) => {
            tracing::info!(worker_id = %id, rotated, by,
                key = ?updated.public_key.map(|k| k.fingerprint()), "worker re-registered");
            if rotated {
                // A channel opened with the old key or token must not outlive it.
                super::workers::close_channel(state, &id, CloseReason::KeyChanged).await;
            }
            Ok((StatusCode::OK, Changed::Yes(updated)))
        }
        // The credential changed (or the worker vanished) between our read and our write.
        None => Err(taken(&id)),
    }
}

fn taken(id: &crate::domain::WorkerId) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::WorkerIdTaken,
        format!(
            "worker id `{id}` is registered with another key or token; changing it needs proof of the current one"
        ),
    )
    .with_fix(
        "If this is your worker, run register_worker (`basis register`) on the host whose env \
         file holds its device key (basis signs with it; the key never leaves the host), or \
         `basis rotate-key` there to change keys. Otherwise choose another worker_id.",
    )
}
