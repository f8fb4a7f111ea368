//! `GET /api/workers/{id}`, `GET /api/workers` (paged by `?after=ID&limit=N`) and the admin's
//! `POST /api/workers/{id}/revoke`; a worker's
//! rewards are in `routes::settlement`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::domain::{ErrorCode, TokenFingerprint, WorkerId};
use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::hub::session::codes::{KEY_CHANGED, REVOKED};
use crate::orchestrator::hub::{Hub, presence};
use crate::orchestrator::market::problems::worker_not_found;
use crate::orchestrator::replica::notify;
use crate::orchestrator::state::{AppState, unix_now};
use crate::orchestrator::store::WorkerRow;
use crate::wire::{
    REPLICA_WORKER_REVOKED, WORKERS_PAGE_DEFAULT, WORKERS_PAGE_MAX, WorkerList, WorkerRecord,
};

/// The public view of a stored worker: the token hash becomes its fingerprint, and while it is
/// connected here its presence comes from the hub (heartbeats are not written one by one).
/// With several orchestrators on one database (`shared_window`: the online window, when the
/// database is shared), a worker connected to another one is online while the store says it
/// is connected and heard from within the window (its heartbeats are written every third of
/// it); otherwise a worker not connected here is offline, whatever its last heartbeat.
pub fn record(row: WorkerRow, hub: &Hub, shared_window: Option<u64>) -> WorkerRecord {
    let live = hub.presence(&row.worker_id);
    let elsewhere = live.is_none()
        && shared_window.is_some_and(|window| {
            presence::online_in_store(row.connected_since, row.last_seen, unix_now(), window)
        });
    let caps = row.capabilities();
    WorkerRecord {
        online: live.is_some_and(|p| p.online) || elsewhere,
        last_seen: live.map(|p| p.last_seen).or(row.last_seen),
        connected_since: live
            .map(|p| p.connected_since)
            .or(row.connected_since.filter(|_| elsewhere)),
        token_fingerprint: TokenFingerprint::of(&row.token_sha256).to_string(),
        key_fingerprint: row.public_key.map(|k| k.fingerprint()),
        revoked: row.revoked_at.is_some(),
        worker_id: row.worker_id,
        wallet: row.wallet,
        runtime: row.runtime,
        models: row.models,
        jobs_completed: row.jobs_completed,
        jobs_failed: row.jobs_failed,
        rewards_pending: row.rewards_pending,
        version: row.version,
        registered_at: row.registered_at,
        updated_at: row.updated_at,
        multi_task: row.multi_task,
        capabilities: caps.tags,
        vram_mib: caps.vram_mib,
        hardware: row.hardware,
        labels: row.labels,
    }
}

pub(super) fn parse_id(id: &str) -> Result<WorkerId, ApiError> {
    WorkerId::parse(id)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidWorkerId, e.to_string()))
}

pub(super) fn path_id(id: Result<Path<String>, PathRejection>) -> Result<WorkerId, ApiError> {
    let Path(id) = id.map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidWorkerId,
            "the worker id in the path is not valid UTF-8",
        )
    })?;
    parse_id(&id)
}

pub async fn get(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<WorkerRecord>, ApiError> {
    let id = path_id(id)?;
    match state.store.worker(id.clone()).await? {
        Some(row) => Ok(Json(record(
            row,
            &state.hub,
            state.config.shared_online_window(),
        ))),
        None => Err(worker_not_found(&id)),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<WorkerList>, ApiError> {
    let Query(q) =
        query.map_err(|e| ApiError::bad_query(&e, "Use ?after=<worker_id>&limit=<1-1000>."))?;
    let after = q.after.as_deref().map(parse_id).transpose()?;
    let limit = q.limit.unwrap_or(WORKERS_PAGE_DEFAULT);
    if !(1..=WORKERS_PAGE_MAX).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            format!("limit must be between 1 and {WORKERS_PAGE_MAX}"),
        ));
    }
    // One extra row tells whether there is a next page.
    let mut rows = state.store.workers(after, limit + 1).await?;
    let next_after = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| r.worker_id.clone())
    } else {
        None
    };
    Ok(Json(WorkerList {
        workers: rows
            .into_iter()
            .map(|r| record(r, &state.hub, state.config.shared_online_window()))
            .collect(),
        next_after,
    }))
}

/// `POST /api/workers/{id}/revoke` (admin): the worker's key (or legacy token) stops
/// authenticating anything at once, and its open channel here closes (`WORKER_REVOKED`). An
/// admin re-registration lifts it (docs/SECURITY.md, "Revocation").
pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<WorkerRecord>, ApiError> {
    crate::orchestrator::auth::require_admin(&state, &headers, ip).await?;
    let id = path_id(id)?;
    let Some(row) = state.store.revoke_worker(id.clone(), unix_now()).await? else {
        return Err(worker_not_found(&id));
    };
    close_channel(&state, &id, CloseReason::Revoked).await;
    tracing::warn!(worker_id = %id, %ip, "worker revoked");
    Ok(Json(record(
        row,
        &state.hub,
        state.config.shared_online_window(),
    )))
}

/// Why a worker's channel is closed from outside its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// An admin revoked the worker.
    Revoked,
    /// Its key (or legacy token) was replaced: the channel was opened with the old one.
    KeyChanged,
}

impl CloseReason {
    pub fn code(self) -> &'static str {
        match self {
            Self::Revoked => REVOKED,
            Self::KeyChanged => KEY_CHANGED,
        }
    }

    fn parse(code: &str) -> Option<Self> {
        [Self::Revoked, Self::KeyChanged]
            .into_iter()
            .find(|r| r.code() == code)
    }

    fn message(self) -> &'static str {
        match self {
            Self::Revoked => "the orchestrator's operator revoked this worker",
            Self::KeyChanged => {
                "this worker's key was replaced; reconnect with the new one (`basis stop`, `basis start`)"
            }
        }
    }
}

/// Closes worker `id`'s channel here, if it holds one.
fn close_here(state: &AppState, id: &WorkerId, reason: CloseReason) {
    if let Some(live) = state.hub.get(id) {
        live.close(reason.code(), reason.message());
    }
}

/// Closes worker `id`'s channel wherever it is open: here, and on the other replicas, which
/// this one tells (best effort; see `replica::notify`).
pub async fn close_channel(state: &AppState, id: &WorkerId, reason: CloseReason) {
    close_here(state, id, reason);
    if let Some(node) = &state.replica {
        let window = state.config.online_window_s;
        notify::worker_closed(
            node,
            state.store.as_ref(),
            id,
            reason.code(),
            unix_now(),
            window,
        )
        .await;
    }
}

/// `POST /internal/v1/workers/revoked` (another replica, signed): close the worker's channel
/// here, for the reason given (`code`: `WORKER_REVOKED`, the default, or `WORKER_KEY_CHANGED`).
pub async fn revoked_elsewhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    super::internal::from_replica(&state, &headers, REPLICA_WORKER_REVOKED, &body)?;
    let parsed = serde_json::from_slice::<serde_json::Value>(&body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v[name].as_str().map(str::to_owned))
    };
    let id = field("worker_id").and_then(|s| WorkerId::parse(&s).ok());
    let reason = field("code").map_or(Some(CloseReason::Revoked), |c| CloseReason::parse(&c));
    let (Some(id), Some(reason)) = (id, reason) else {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidJson,
            "expected {\"worker_id\": \"…\", \"code\": \"WORKER_REVOKED\" or \"WORKER_KEY_CHANGED\"}",
        ));
    };
    close_here(&state, &id, reason);
    Ok(StatusCode::NO_CONTENT)
}
