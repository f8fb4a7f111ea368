//! Discovery routes (docs/DISCOVERY.md): the network's ERC-8004 registration file
//! (`/.well-known/agent-registration.json`) and its image, a worker's file
//! (`/api/workers/{id}/agent-registration.json`), the agent link a worker records after its
//! owner registered it on chain (`POST /api/workers/{id}/agent-link`, worker token), and the
//! leaderboard (`GET /api/leaderboard`).

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;

use super::workers::{path_id, record};
use crate::domain::{AgentRegistry, ErrorCode, MAX_SAFE_INTEGER, check_metric_name};
use crate::orchestrator::auth;
use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::discovery::{Ask, files, public_base};
use crate::orchestrator::error::ApiError;
use crate::orchestrator::extract::ApiJson;
use crate::orchestrator::hub::presence;
use crate::orchestrator::market::problems::worker_not_found;
use crate::orchestrator::signed::WorkerRequest;
use crate::orchestrator::state::{AppState, unix_now};
use crate::orchestrator::store::AgentLink;
use crate::wire::{
    AgentLinkRequest, AgentRegistration, Leaderboard, LeaderboardBy, LeaderboardQuery,
};

/// How recently the store must have heard from a connected worker for its open connection to
/// count up to now: the online window plus the period its heartbeats are written at (a
/// minute alone, a third of the window when replicas share the database).
fn heard_within(state: &AppState) -> u64 {
    let flush = state
        .config
        .shared_online_window()
        .map_or(presence::FLUSH_EVERY, presence::flush_every);
    state.config.online_window_s + flush.as_secs()
}

/// At most this many registries a worker's file lists.
pub const MAX_AGENT_LINKS: usize = 8;

fn base(state: &AppState, headers: &HeaderMap) -> String {
    public_base(
        state.config.discovery.public_url.as_ref(),
        headers,
        state.config.listen,
    )
}

pub async fn network(State(state): State<AppState>, headers: HeaderMap) -> Json<AgentRegistration> {
    Json(files::network(
        &state.config.discovery,
        &base(&state, &headers),
    ))
}

pub async fn image() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        files::IMAGE_SVG,
    )
}

pub async fn worker(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<AgentRegistration>, ApiError> {
    let id = path_id(id)?;
    let Some(row) = state.store.worker(id.clone()).await? else {
        return Err(worker_not_found(&id));
    };
    let now = unix_now();
    let observed = state
        .store
        .worker_stats(
            0,
            now,
            now.saturating_sub(heard_within(&state)),
            Some(id.clone()),
        )
        .await?;
    let links = state.store.agent_links(id).await?;
    let public = record(row.clone(), &state.hub, state.config.shared_online_window());
    Ok(Json(files::worker(
        &state.config.discovery,
        &base(&state, &headers),
        &row,
        &public,
        observed.first(),
        &links,
    )))
}

pub async fn agent_link(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: WorkerRequest,
    id: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<AgentLinkRequest>,
) -> Result<(StatusCode, Json<AgentRegistration>), ApiError> {
    let id = path_id(id)?;
    if req.worker_id != id {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            "the worker_id in the body is not the one in the path",
        ));
    }
    let registry = AgentRegistry::parse(&req.agent_registry).map_err(|e| {
        ApiError::bad_request(ErrorCode::InvalidArgument, e.to_string())
            .with_fix("Name the Identity Registry as eip155:<chain id>:<registry address>.")
    })?;
    if req.agent_id > MAX_SAFE_INTEGER {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            "agent_id must be below 2^53",
        ));
    }
    auth::market_worker(&state, &request, ip, &id).await?;
    let held = state.store.agent_links(id.clone()).await?;
    if held.len() >= MAX_AGENT_LINKS
        && !held
            .iter()
            .any(|l| l.agent_registry == registry.to_string())
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            format!("a worker lists at most {MAX_AGENT_LINKS} registrations"),
        )
        .with_fix("Link again in a registry already listed to replace its agent id."));
    }
    let link = AgentLink {
        agent_registry: registry.to_string(),
        agent_id: req.agent_id,
        linked_at: unix_now(),
    };
    if !state.store.link_agent(id.clone(), link).await? {
        return Err(worker_not_found(&id));
    }
    tracing::info!(worker_id = %id, agent_registry = %registry, agent_id = req.agent_id, "ERC-8004 agent linked");
    let Json(file) = worker(State(state), request.headers, Ok(Path(id.to_string()))).await?;
    Ok((StatusCode::OK, Json(file)))
}

pub async fn leaderboard(
    State(state): State<AppState>,
    query: Result<Query<LeaderboardQuery>, QueryRejection>,
) -> Result<Json<Leaderboard>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_query(
            &e,
            "Use ?window=24h|7d|all&by=score|tasks_passed|pass_rate|online|tokens|ttft|metric\
             &family=<task family>&worker=<worker id>&limit=<1-1000>.",
        )
    })?;
    let by = q.by.unwrap_or_default();
    match (&q.family, by) {
        (None, LeaderboardBy::Metric) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidArgument,
                "by=metric ranks one task family: add family=<name>",
            )
            .with_fix("Add family=<name>; a task's family is shown with the task (fetch_tasks, `basis tasks`)."));
        }
        (Some(f), _) if check_metric_name(f).is_err() => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidArgument,
                "family is a lowercase name (letters, digits, . _ - : /)",
            ));
        }
        _ => {}
    }
    let ask = Ask {
        window: q.window.unwrap_or_default(),
        by,
        family: q.family.filter(|_| by == LeaderboardBy::Metric),
        worker: q.worker,
        limit: Ask::limit(q.limit),
    };
    let board = state
        .leaderboards
        .board(
            &*state.store,
            ask,
            unix_now(),
            heard_within(&state),
            state.config.discovery.leaderboard_cache,
        )
        .await?;
    Ok(Json(board))
}
