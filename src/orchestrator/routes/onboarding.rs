//! `GET /api/workers/onboarding/status`: what a worker can expect before it registers.

use axum::Json;
use axum::extract::State;

use crate::orchestrator::state::AppState;
use crate::wire::{OnboardingStatus, PROTOCOL_VERSION, Settlement};

/// This build routes gateway jobs to connected workers.
const JOB_ROUTING: bool = true;

pub async fn status(State(state): State<AppState>) -> Json<OnboardingStatus> {
    let c = &state.config;
    Json(OnboardingStatus {
        registration: c.registration,
        job_routing: JOB_ROUTING,
        can_receive_jobs: state.hub.any_routable(),
        settlement: Settlement::OffChain,
        heartbeat_interval_s: c.heartbeat_interval_s,
        online_window_s: c.online_window_s,
        protocol_version: PROTOCOL_VERSION,
        orchestrator_version: env!("CARGO_PKG_VERSION").to_owned(),
        task_market: Some(c.tasks.policy(c.asset_units())),
    })
}
