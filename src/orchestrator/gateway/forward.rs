//! Forwarding a gateway request to another replica when no worker connected here can take it:
//! the replicas whose workers serve the model ([`crate::orchestrator::replica::Directory`]) are
//! tried in turn with a signed `POST /internal/v1/chat/completions`; the first answer that is
//! not "busy" is relayed to the client as it arrives (status, the `x-basis-*` headers, and the
//! body chunk by chunk, so a stream stays a stream), with `x-basis-replica-id` naming the
//! replica that served it.
//!
//! What may be retried elsewhere: a replica that cannot be connected to, refuses the call's
//! signature, or answers 503 (its workers are busy too, or it is draining; a forwarded call
//! never waits in the receiving replica's queue, so the request can wait in this one's). What may not: a
//! replica that took the call and then broke off. The job's outcome is then unknown, so the
//! client gets `502 REPLICA_UNREACHABLE` (or, mid-stream, a truncated stream without
//! `[DONE]`), never a success; a receipt exists only if the serving replica recorded the job.

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ChatRequest;
use crate::domain::ErrorCode;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::replica::{Node, Target, sign};
use crate::orchestrator::state::{AppState, unix_now};
use crate::wire::{REPLICA_CHAT_COMPLETIONS, REPLICA_ID_HEADER};

/// The query parameter of a forwarded call naming the caller's client key (its sha256).
pub const CLIENT_QUERY: &str = "client";
/// The query parameter of a forwarded call naming the worker label asked for.
pub const LABEL_QUERY: &str = "label";

/// Another replica's answer to relay, or that it could not take the call.
enum Tried {
    Answered(Response),
    /// Busy or draining there (503): relayed only if no other replica answers.
    Busy(Response),
    /// Not reached, or refused the signature: try the next one.
    Skipped,
    /// Reached, then lost: the job's outcome is unknown.
    Lost(ApiError),
}

/// What the other replicas made of a request.
pub enum Forwarded {
    /// One took it: its answer (a success, or an error other than "busy").
    Answered(Response),
    /// Those reached were all busy: the last one's 503.
    Busy(Response),
    /// No other replica serves the model, or none could be reached.
    Nobody,
}

/// The answer of the first other replica that takes `req`.
pub async fn respond(state: &AppState, req: &ChatRequest) -> Forwarded {
    let Some(node) = &state.replica else {
        return Forwarded::Nobody;
    };
    let targets = node
        .directory
        .serving(state.store.as_ref(), &req.model, unix_now())
        .await;
    if targets.is_empty() {
        return Forwarded::Nobody;
    }
    let body = match serde_json::to_vec(&req.body) {
        Ok(body) => Bytes::from(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a chat request to forward");
            return Forwarded::Nobody;
        }
    };
    let mut busy = None;
    for target in &targets {
        match try_one(node, target, body.clone(), req).await {
            Tried::Answered(answer) => {
                state.metrics.forwarded("answered");
                return Forwarded::Answered(answer);
            }
            Tried::Busy(answer) => {
                state.metrics.forwarded("busy");
                busy = Some(answer);
            }
            Tried::Skipped => state.metrics.forwarded("unreachable"),
            Tried::Lost(e) => {
                state.metrics.forwarded("unreachable");
                return Forwarded::Answered(e.into_response());
            }
        }
    }
    busy.map_or(Forwarded::Nobody, Forwarded::Busy)
}

async fn try_one(node: &Node, target: &Target, body: Bytes, req: &ChatRequest) -> Tried {
    // The client key's hash and the label asked for ride in the signed path: the serving
    // replica counts the job against the key's usage and serves it on a worker with the label
    // (labels are `[a-z0-9._=:/-]`, safe in a query as they are).
    let mut query = Vec::new();
    if let Some(key) = &req.client_key {
        query.push(format!("{CLIENT_QUERY}={key}"));
    }
    if let Some(label) = &req.label {
        query.push(format!("{LABEL_QUERY}={label}"));
    }
    let path = if query.is_empty() {
        REPLICA_CHAT_COMPLETIONS.to_owned()
    } else {
        format!("{REPLICA_CHAT_COMPLETIONS}?{}", query.join("&"))
    };
    let url = match target.internal_url.join(&path) {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(replica = %target.replica_id, error = %e, "cannot form a replica URL");
            return Tried::Skipped;
        }
    };
    let signed = sign::sign(
        &node.config.secret,
        &node.config.id,
        &target.replica_id,
        "POST",
        &path,
        &body,
        unix_now(),
    );
    let mut request = node
        .client
        .post(url)
        .header(header::CONTENT_TYPE, "application/json");

    for (name, value) in signed {
        request = request.header(name, value);
    }
    let resp = match request.body(body).send().await {
        Ok(resp) => resp,
        Err(e) if e.is_connect() => {
            tracing::warn!(replica = %target.replica_id, error = %e, "cannot reach a replica; trying the next");
            return Tried::Skipped;
        }
        Err(e) => {
            tracing::warn!(replica = %target.replica_id, error = %e, "a replica took a forwarded call and broke off");
            return Tried::Lost(lost(target));
        }
    };
    match resp.status() {
        StatusCode::UNAUTHORIZED => {
            tracing::error!(
                replica = %target.replica_id,
                "a replica refused this replica's signature: do all replicas hold the same \
                 replica secret, and are their clocks in step?"
            );
            Tried::Skipped
        }
        StatusCode::SERVICE_UNAVAILABLE => Tried::Busy(relay(resp, target)),
        _ => Tried::Answered(relay(resp, target)),
    }
}

/// `resp` as this replica's answer: status, content and `x-basis-*` headers, the body relayed
/// chunk by chunk as it arrives.
fn relay(resp: reqwest::Response, target: &Target) -> Response {
    let status = resp.status();
    let mut out = Response::builder().status(status.as_u16());
    for (name, value) in resp.headers() {
        let keep = name == header::CONTENT_TYPE
            || name == header::CACHE_CONTROL
            || name == header::RETRY_AFTER
            || name.as_str() == "x-accel-buffering"
            || name.as_str().starts_with("x-basis-");
        if keep {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    if let Ok(id) = HeaderValue::from_str(target.replica_id.as_str()) {
        out = out.header(HeaderName::from_static(REPLICA_ID_HEADER), id);
    }
    let body = Body::from_stream(resp.bytes_stream());
    out.body(body).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot relay a replica's answer");
        lost(target).into_response()
    })
}

fn lost(target: &Target) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        ErrorCode::ReplicaUnreachable,
        format!(
            "replica {} took the request and then broke off; the job's outcome is unknown",
            target.replica_id
        ),
    )
    .with_fix("Retry the request; GET /health on each replica shows which are up.")
}
