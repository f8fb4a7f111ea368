//! `GET /health`: liveness, version, and whether the store answers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::orchestrator::state::AppState;
use crate::wire::{Health, HealthStatus, PROTOCOL_VERSION};

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (status, code) = match state.store.ping().await {
        Ok(()) => (HealthStatus::Ok, StatusCode::OK),
        Err(e) => {
            tracing::error!(error = %e, "health check: store does not answer");
            (HealthStatus::Degraded, StatusCode::SERVICE_UNAVAILABLE)
        }
    };
    let body = Health {
        status,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_version: PROTOCOL_VERSION,
        uptime_s: state.started.elapsed().as_secs(),
    };
    (code, Json(body))
}
