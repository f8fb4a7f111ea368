//! `GET /api/workers/{id}` and `GET /api/workers` (paged by `?after=ID&limit=N`); a worker's
//! rewards are in `routes::settlement`.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use crate::domain::{ErrorCode, TokenFingerprint, WorkerId};
use crate::orchestrator::error::ApiError;
use crate::orchestrator::hub::{Hub, presence};
use crate::orchestrator::market::problems::worker_not_found;
use crate::orchestrator::state::{AppState, unix_now};
use crate::orchestrator::store::WorkerRow;
use crate::wire::{WORKERS_PAGE_DEFAULT, WORKERS_PAGE_MAX, WorkerList, WorkerRecord};

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
