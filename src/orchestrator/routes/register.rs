//! `POST /api/workers/register`: create (201), idempotent re-register (200), update or rotate
//! the token with proof (200), or refuse: 400 bad input, 401/403 gated, 403 closed,
//! 409 `WORKER_ID_TAKEN`, 429 rate limited. The per-IP limits run in [`limit`], before the
//! body is read.

use std::net::IpAddr;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::workers::record;
use crate::domain::ErrorCode;
use crate::orchestrator::auth::{self, Credential};
use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::extract::ApiJson;
use crate::orchestrator::metrics::RegistrationOutcome;
use crate::orchestrator::rate_limit::retry_after_secs;
use crate::orchestrator::registration::parse_register;
use crate::orchestrator::state::{AppState, unix_now};
use crate::orchestrator::store::{StoreError, WorkerRow};
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
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0.0);
    let outcome = decide(&state, &headers, ip, body).await;
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
    headers: &HeaderMap,
    ip: IpAddr,
    body: Value,
) -> Result<(StatusCode, Changed), ApiError> {
    let req = parse_register(&body)?;
    let admin = auth::admin_key(state, headers, ip).await?;
    match state.store.worker(req.worker_id.clone()).await? {
        None => create(state, headers, ip, req, admin).await,
        Some(row) => reregister(state, headers, ip, req, row, admin).await,
    }
}

async fn create(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    req: RegisterRequest,
    admin: Credential,
) -> Result<(StatusCode, Changed), ApiError> {
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
    let id = req.worker_id.clone();
    match state.store.insert_worker(req.clone(), unix_now()).await {
        Ok(row) => {
            tracing::info!(worker_id = %id, "worker registered");
            Ok((StatusCode::CREATED, Changed::Yes(row)))
        }
        // A concurrent registration of the same id won the insert: this one is now a
        // re-registration (the same request is answered as unchanged; another token needs
        // the proof as always).
        Err(StoreError::Conflict) => match state.store.worker(id.clone()).await? {
            Some(row) => Box::pin(reregister(state, headers, ip, req, row, admin)).await,
            None => Err(taken(&id)),
        },
        Err(e) => Err(e.into()),
    }
}

async fn reregister(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
    req: RegisterRequest,
    row: WorkerRow,
    admin: Credential,
) -> Result<(StatusCode, Changed), ApiError> {
    if row.same_registration(&req) {
        return Ok((StatusCode::OK, Changed::No(row)));
    }
    let proof = auth::worker_proof(state, headers, &row.token_sha256, ip);
    if !(proof.is_valid() || admin.is_valid()) {
        return Err(taken(&req.worker_id));
    }
    let id = req.worker_id.clone();
    let rotated = !row.token_sha256.ct_eq(&req.token_sha256);
    match state
        .store
        .update_registration(req, row.token_sha256, unix_now())
        .await?
    {
        Some(updated) => {
            let by = if proof.is_valid() {
                "token"
            } else {
                "admin key"
            };
            tracing::info!(worker_id = %id, rotated, by, "worker re-registered");
            Ok((StatusCode::OK, Changed::Yes(updated)))
        }
        // The token changed (or the worker vanished) between our read and our write.
        None => Err(taken(&id)),
    }
}

fn taken(id: &crate::domain::WorkerId) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::WorkerIdTaken,
        format!(
            "worker id `{id}` is registered with another token; changing it needs proof of the current token"
        ),
    )
    .with_fix(
        "If this is your worker, run register_worker (`basis register`) on the host whose env \
         file holds its token (basis proves it without showing it). Otherwise choose another \
         worker_id.",
    )
}
