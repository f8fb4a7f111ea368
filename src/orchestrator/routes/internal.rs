//! `POST /internal/v1/chat/completions`: a gateway request another replica forwarded here
//! because a worker connected here serves its model. Authenticated by the replica signature
//! (`replica::sign`), not by a client key (the forwarding replica checked that); served by a
//! local worker only, never forwarded again. 404 on an orchestrator that is not a replica.
//! `?client=0x…&label=…` (signed with the path) name the caller's client key, whose usage
//! the job adds to, and the worker label it asked for.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::domain::{ErrorCode, ReplicaId};
use crate::orchestrator::error::ApiError;
use crate::orchestrator::gateway::forward::{CLIENT_QUERY, LABEL_QUERY};
use crate::orchestrator::gateway::{self, ChatRequest, Reach, complete, stream};
use crate::orchestrator::state::{AppState, unix_now};
use crate::orchestrator::store::KeySha256;
use crate::wire::REPLICA_CHAT_COMPLETIONS;

pub async fn chat(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The signature covers the query too (the caller's client key).
    let signed_path = uri
        .path_and_query()
        .map_or(REPLICA_CHAT_COMPLETIONS, |p| p.as_str());
    let from = match from_replica(&state, &headers, signed_path, &body) {
        Ok(from) => from,
        Err(refused) => return refused.into_response(),
    };
    let lane = gateway::lane_of(&format!("replica {from}"));
    let param = |name: &str| {
        uri.query().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        })
    };
    let client_key = param(CLIENT_QUERY).as_deref().and_then(KeySha256::parse);
    let label = param(LABEL_QUERY);
    let mut req = match serde_json::from_slice::<Value>(&body)
        .map_err(|e| {
            ApiError::bad_request(ErrorCode::InvalidJson, format!("the forwarded body: {e}"))
        })
        .and_then(ChatRequest::parse)
    {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    req.client_key = client_key;
    // Signed with the path, and checked by the forwarding replica.
    req.label = label.filter(|l| crate::domain::check_label(l).is_ok());
    if req.stream {
        stream::respond(state, req, Reach::HereOnly, lane).await
    } else {
        complete::respond(state, req, Reach::HereOnly, lane).await
    }
}

/// The replica that signed a replica-to-replica call (`POST path` with `body`): 404 on an
/// orchestrator that is not a replica, 401 `REPLICA_AUTH_FAILED` for a bad signature. The one
/// check every `/internal/v1/…` route goes through.
pub(super) fn from_replica(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
    body: &[u8],
) -> Result<ReplicaId, ApiError> {
    let Some(node) = &state.replica else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "this orchestrator is not a replica",
        ));
    };
    node.verifier
        .verify(headers, "POST", path, body, unix_now())
        .map_err(|why| {
            tracing::warn!(error = %why, "a replica call was refused");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::ReplicaAuthFailed,
                why.to_string(),
            )
            .with_fix(
                "Give every replica the same replica secret (BASIS_REPLICA_SECRET or [replica] \
                 secret_file) and keep their clocks in step (NTP).",
            )
        })
}
