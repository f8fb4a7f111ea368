//! `GET /api/workers/connect`: the worker channel's WebSocket upgrade (docs/PROTOCOL.md,
//! "Connecting"). A worker with a device key connects without a credential and signs the
//! challenge `session` sends (its `hello` proof); a legacy worker's bearer token is checked
//! before the upgrade (401 `WORKER_TOKEN_INVALID` otherwise; never logged). The connection is
//! then served by [`crate::orchestrator::hub::session`].

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::{ErrorCode, WorkerToken};
use crate::orchestrator::auth;
use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::hub::session::{self, ChannelAuth};
use crate::orchestrator::signed;
use crate::orchestrator::state::AppState;

/// Frames larger than this close the connection (a whole answer travels in `job_done`).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Small per-connection buffers: 10,000 idle connections must fit in little memory.
const READ_BUFFER: usize = 4 * 1024;

pub async fn connect(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    auth::not_locked_out(&state, ip, &headers)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .and_then(|t| WorkerToken::parse(t.trim()).ok());
    let auth = if headers.contains_key(header::AUTHORIZATION) {
        // A legacy worker: its token, which a worker with a device key (or a revoked one) no
        // longer has.
        let candidates: Vec<_> = match token {
            Some(token) => state
                .store
                .workers_by_token(token.sha256())
                .await?
                .into_iter()
                .filter(|row| {
                    token.matches(&row.token_sha256)
                        && row.public_key.is_none()
                        && row.revoked_at.is_none()
                })
                .collect(),
            None => Vec::new(),
        };
        if candidates.is_empty() {
            state.auth_failed(ip, auth::presented(&headers));
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::WorkerTokenInvalid,
                "the worker channel's bearer token is not that of a registered worker that still \
                 uses one (it was not shown)",
            )
            .with_fix(
                "Register the worker with register_worker (`basis register`) from the env file it \
                 runs with (it moves the worker to a device key), then start it again \
                 (`basis stop`, `basis start`): it connects by signing a challenge.",
            ));
        }
        state.auth_succeeded(auth::presented(&headers));
        ChannelAuth::Token(candidates)
    } else {
        // A worker with a device key proves itself in its hello, over this origin.
        ChannelAuth::Challenge {
            origins: signed::origins(&state).to_vec(),
            ip,
        }
    };
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
        .on_upgrade(move |socket| session::serve(state, socket, auth))
        .into_response())
}
