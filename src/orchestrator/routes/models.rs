//! `GET /v1/models`: the models routable online workers serve (here, or on another replica of
//! the same database), in `OpenAI`'s list shape.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::gateway;
use crate::orchestrator::state::{AppState, unix_now};
use crate::wire::{ModelEntry, ModelList};

pub async fn list(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Json<ModelList>, ApiError> {
    gateway::authorize(&state, &headers, ip).await?;
    let mut models = state.hub.models();
    // Models served only by workers connected to other replicas are served here too (the
    // gateway forwards them).
    if let Some(node) = &state.replica {
        let now = unix_now();
        for route in node
            .directory
            .routes(state.store.as_ref(), now)
            .await
            .iter()
        {
            for m in &route.models {
                models.entry(m.clone()).or_insert(now);
            }
        }
    }
    let data = models
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
