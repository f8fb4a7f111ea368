//! `GET /api/workers/connect`: the worker channel's WebSocket upgrade (§6). The bearer token is
//! checked before the upgrade (401 `WORKER_TOKEN_INVALID` otherwise; never logged); the
//! connection is then served by [`crate::orchestrator::hub::session`].

use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::{ErrorCode, WorkerToken};
use crate::orchestrator::error::ApiError;
use crate::orchestrator::hub::session;
use crate::orchestrator::rate_limit::retry_after_secs;
use crate::orchestrator::state::AppState;

/// Frames larger than this close the connection (a whole answer travels in `job_done`).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Small per-connection buffers: 10,000 idle connections must fit in little memory.
const READ_BUFFER: usize = 4 * 1024;

pub async fn connect(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0.0.ip());
    if let Err(wait) = state.auth_failure_limit.check(ip) {
        state.metrics.rate_limited("auth_failures");
        return Err(ApiError::rate_limited(
            "failed authentications",
            retry_after_secs(wait),
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .and_then(|t| WorkerToken::parse(t.trim()).ok());
    let candidates = match token {
        Some(token) => {
            let hash = token.sha256();
            state
                .store
                .workers_by_token(hash)
                .await?
                .into_iter()
                .filter(|row| token.matches(&row.token_sha256))
                .collect()
        }
        None => Vec::new(),
    };
    if candidates.is_empty() {
        state.auth_failed(ip);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::WorkerTokenInvalid,
            "the worker channel needs the token of a registered worker (it was not shown)",
        )
        .with_fix(
            "Register the worker with register_worker (`basis register`) from the env file it runs \
             with, then start it again (`basis stop`, `basis start`): it connects with that \
             file's token.",
        ));
    }
    if state.hub.is_draining() {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::OrchestratorDraining,
            "the orchestrator is shutting down",
        )
        .with_fix("Reconnect with backoff; it will be back after its restart.");
        e.retry_after_s = Some(state.config.heartbeat_interval_s.max(1));
        return Err(e);
    }
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::InvalidArgument,
            format!("this route is a WebSocket upgrade: {rejection}"),
        )
        .with_fix("Open it with a WebSocket client (`basis worker` does).")
    })?;
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| session::serve(state, socket, candidates))
        .into_response())
}
