//! `GET /v1/models`: the models routable online workers serve, in `OpenAI`'s list shape.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::gateway;
use crate::orchestrator::state::AppState;
use crate::wire::{ModelEntry, ModelList};

pub async fn list(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Json<ModelList>, ApiError> {
    gateway::authorize(&state, &headers, ip).await?;
    let data = state
        .hub
        .models()
        .into_iter()
        .map(|(id, created)| ModelEntry {
            id,
            object: "model".into(),
            created,
            owned_by: "basis".into(),
        })
        .collect();
    Ok(Json(ModelList {
        object: "list".into(),
        data,
    }))
}
