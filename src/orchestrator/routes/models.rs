//! `GET /v1/models`: the models routable online workers serve, in `OpenAI`'s list shape.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};

use crate::orchestrator::error::ApiError;
use crate::orchestrator::gateway;
use crate::orchestrator::state::AppState;
use crate::wire::{ModelEntry, ModelList};

pub async fn list(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Result<Json<ModelList>, ApiError> {
    let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0.0.ip());
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
