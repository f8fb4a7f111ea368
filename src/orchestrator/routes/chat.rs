//! `POST /v1/chat/completions`: client key (unless `--open`), then the body, then the gateway
//! answers streamed or not (see [`crate::orchestrator::gateway`]).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::extract::ApiJson;
use crate::orchestrator::gateway::{self, ChatRequest, Reach, complete, stream};
use crate::orchestrator::state::AppState;

pub async fn completions(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<ApiJson<Value>, ApiError>,
) -> Response {
    let max_tokens = body
        .as_ref()
        .map_or(1, |ApiJson(body)| gateway::max_tokens_of(body));
    let caller = match gateway::authorize_chat(&state, &headers, ip, max_tokens).await {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let lane = caller.lane;
    let mut req = match body
        .and_then(|ApiJson(body)| ChatRequest::parse(body))
        .and_then(|req| req.with_label(&headers))
    {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    req.client_key = caller.key;
    req.reservation = caller.reservation;
    if req.stream {
        stream::respond(state, req, Reach::Anywhere, lane).await
    } else {
        complete::respond(state, req, Reach::Anywhere, lane).await
    }
}
