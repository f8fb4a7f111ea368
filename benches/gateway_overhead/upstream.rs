//! The upstream of the gateway bench: an OpenAI-compatible axum server on 127.0.0.1:0 that
//! stands in for vLLM (which needs a GPU). `GET /v1/models` lists the one model;
//! `POST /v1/chat/completions` answers the fixed [`PIECES`] as one `chat.completion`, or with
//! `"stream": true` as one SSE event per piece, then a usage chunk and `data: [DONE]`;
//! optionally waiting [`piece_delay`] per piece, as a model would per token.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::{MODEL, Result, env_usize};

/// The fixed answer, streamed one piece per SSE event.
pub const PIECES: [&str; 8] = [
    "Hello",
    " from",
    " the",
    " bench",
    " upstream",
    ",",
    " as",
    " ever.",
];

pub fn answer() -> String {
    PIECES.concat()
}

async fn models() -> Json<Value> {
    Json(json!({"object": "list", "data": [{"id": MODEL, "object": "model"}]}))
}

/// `BASIS_GATEWAY_PIECE_DELAY_US` (0): time the upstream takes per piece, to see the gateway
/// against an upstream that does some work (a real model takes milliseconds per token).
pub fn piece_delay() -> Duration {
    Duration::from_micros(u64::try_from(env_usize("BASIS_GATEWAY_PIECE_DELAY_US", 0)).unwrap_or(0))
}

async fn completions(State(delay): State<Duration>, Json(body): Json<Value>) -> Response {
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let mut events: Vec<String> = PIECES
            .iter()
            .enumerate()
            .map(|(i, piece)| {
                let delta = if i == 0 {
                    json!({"role": "assistant", "content": piece})
                } else {
                    json!({"content": piece})
                };
                let chunk = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                    "created": 0, "model": MODEL,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
                format!("data: {chunk}\n\n")
            })
            .collect();
        let last = json!({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
            "created": 0, "model": MODEL,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": PIECES.len()}});
        events.push(format!("data: {last}\n\ndata: [DONE]\n\n"));
        // A wait before each piece; the closing usage + `[DONE]` event follows the last one
        // at once (the non-streamed answer waits as many times).
        let stream = futures::stream::iter(events.into_iter().enumerate()).then(
            move |(i, event)| async move {
                if !delay.is_zero() && i < PIECES.len() {
                    tokio::time::sleep(delay).await;
                }
                Ok::<_, Infallible>(event)
            },
        );
        return (
            [("content-type", "text/event-stream")],
            Body::from_stream(stream),
        )
            .into_response();
    }
    // One wait per piece, as the stream has (tokio's timer rounds each one up alike).
    for _ in 0..PIECES.len() {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    Json(json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer()},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": PIECES.len(),
                  "total_tokens": 5 + PIECES.len()}
    }))
    .into_response()
}

/// Serves on 127.0.0.1:0; returns the base URL.
pub async fn serve() -> Result<String> {
    let app = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(completions))
        .with_state(piece_delay());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}
