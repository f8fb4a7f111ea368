//! The HTTP routes, one file per noun, assembled by [`router`]. Every handler returns
//! `Result<_, ApiError>`; the fallbacks answer JSON errors too.

mod chat;
mod connect;
mod discovery;
mod health;
mod internal;
mod keys;
mod meta;
mod models;
mod onboarding;
mod receipts;
mod register;
mod settlement;
mod submissions;
mod tasks;
mod workers;

use std::convert::Infallible;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Router, middleware};

use super::signed::{self, DigestLimit};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use super::error::ApiError;
use super::extract::BodyLimit;
use super::metrics;
use super::state::AppState;
use crate::domain::ErrorCode;
use crate::wire;

/// Settlement's routes (docs/SETTLEMENT.md): a wallet's rewards, the operator's batches.
fn settlement_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/wallets/{address}/rewards",
            get(settlement::wallet_rewards),
        )
        .route(
            wire::SETTLEMENT_BATCHES,
            get(settlement::list).post(settlement::close),
        )
        .route("/api/settlement/batches/{id}", get(settlement::get))
        .route(
            "/api/settlement/batches/{id}/leaves",
            get(settlement::leaves),
        )
        .route("/api/settlement/batches/{id}/paid", post(settlement::paid))
}

/// The middleware function [`digest`] wraps `signed::digest` in.
type DigestFn = fn(
    axum::extract::State<DigestLimit>,
    axum::extract::Request,
    middleware::Next,
) -> futures::future::BoxFuture<'static, axum::response::Response>;
/// The layer [`digest`] makes.
type DigestLayer = middleware::FromFnLayer<
    DigestFn,
    DigestLimit,
    (axum::extract::State<DigestLimit>, axum::extract::Request),
>;

/// The body-against-`Content-Digest` check of a worker route that may be signed, reading at
/// most `limit` bytes (the route's own limit). Only worker routes carry it: nothing else
/// buffers a body because of a header.
fn digest(limit: usize) -> DigestLayer {
    middleware::from_fn_with_state(DigestLimit(limit), |s, r, n| {
        Box::pin(signed::digest(s, r, n))
    })
}

/// The task market's routes (docs/TASK_MARKET.md, "Who may do what"); a worker's may be
/// signed, so they check the body's digest first.
fn market_routes(limit: usize, gateway_limit: usize, submit_limit: usize) -> Router<AppState> {
    Router::new()
        .route(
            wire::TASKS,
            get(tasks::list).merge(
                post(tasks::post)
                    .layer::<_, Infallible>(DefaultBodyLimit::max(gateway_limit))
                    .layer::<_, Infallible>(Extension(BodyLimit(gateway_limit))),
            ),
        )
        .route("/api/tasks/{id}", get(tasks::get))
        .route(
            "/api/tasks/{id}/claim",
            post(tasks::claim).route_layer(digest(limit)),
        )
        .route(
            "/api/tasks/{id}/release",
            post(tasks::release).route_layer(digest(limit)),
        )
        .route(
            "/api/tasks/{id}/submit",
            post(submissions::submit)
                .route_layer(digest(submit_limit))
                .layer::<_, Infallible>(DefaultBodyLimit::max(submit_limit))
                .layer::<_, Infallible>(Extension(BodyLimit(submit_limit))),
        )
        .route(
            "/api/submissions/{id}",
            get(submissions::get).route_layer(digest(limit)),
        )
        .route(
            "/api/submissions/{id}/evaluate",
            post(submissions::evaluate),
        )
        .route(
            "/api/submissions/{id}/dispute",
            post(submissions::dispute).route_layer(digest(limit)),
        )
        .route("/api/submissions/{id}/resolve", post(submissions::resolve))
}

/// The orchestrator's router over `state`.
pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit_bytes;
    let gateway_limit = state.config.gateway_body_limit_bytes;
    let submit_limit = submissions::submit_body_limit(state.config.tasks.max_output_bytes);
    Router::new()
        .route(wire::HEALTH, get(health::health))
        .route(wire::METRICS, get(meta::metrics))
        .route(wire::OPENAPI, get(meta::openapi))
        .route(wire::ONBOARDING_STATUS, get(onboarding::status))
        .route(
            wire::REGISTER,
            post(register::register)
                .route_layer(digest(limit))
                .route_layer(middleware::from_fn_with_state(
                    state.clone(),
                    register::limit,
                )),
        )
        .route(wire::WORKERS, get(workers::list))
        .route(wire::NETWORK_REGISTRATION, get(discovery::network))
        .route(
            crate::orchestrator::discovery::files::IMAGE_PATH,
            get(discovery::image),
        )
        .route(
            "/api/workers/{id}/agent-registration.json",
            get(discovery::worker),
        )
        .route(
            "/api/workers/{id}/agent-link",
            post(discovery::agent_link).route_layer(digest(limit)),
        )
        .route(wire::LEADERBOARD, get(discovery::leaderboard))
        .route(wire::WORKER_CONNECT, get(connect::connect))
        .route("/api/workers/{id}", get(workers::get))
        .route("/api/workers/{id}/revoke", post(workers::revoke))
        .route(wire::RECEIPTS, get(receipts::list))
        .route("/api/receipts/{id}", get(receipts::get))
        .route("/api/workers/{id}/rewards", get(settlement::worker_rewards))
        .merge(settlement_routes())
        .merge(market_routes(limit, gateway_limit, submit_limit))
        .route(wire::KEYS, get(keys::list))
        .route("/api/keys/{id}/usage", get(keys::usage))
        .route("/api/keys/{id}/revoke", post(keys::revoke))
        .route("/api/keys/{id}/limits", put(keys::set_limits))
        .route(wire::REPLICA_KEY_CHANGED, post(keys::changed_elsewhere))
        .route(
            wire::REPLICA_WORKER_REVOKED,
            post(workers::revoked_elsewhere),
        )
        .route(wire::MODELS, get(models::list))
        .route(
            wire::CHAT_COMPLETIONS,
            post(chat::completions)
                .layer::<_, Infallible>(DefaultBodyLimit::max(gateway_limit))
                .layer::<_, Infallible>(Extension(BodyLimit(gateway_limit))),
        )
        .route(
            wire::REPLICA_CHAT_COMPLETIONS,
            post(internal::chat)
                .layer::<_, Infallible>(DefaultBodyLimit::max(gateway_limit))
                .layer::<_, Infallible>(Extension(BodyLimit(gateway_limit))),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(Extension(BodyLimit(limit)))
        .layer(DefaultBodyLimit::max(limit))
        // A body that stalls longer than this between pieces ends its request (`[http]`).
        .layer(RequestBodyTimeoutLayer::new(
            state.config.http.body_read_timeout,
        ))
        // 5xx answers are expected conditions here (503 no worker, 502 worker lost) and are
        // logged where they arise; internal failures are logged by `ApiError::internal`.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .layer(CatchPanicLayer::custom(|_| panicked()))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route on this orchestrator")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::NotFound,
        "this route does not accept that method",
    )
    .with_fix("See /openapi.json for each route's methods.")
}

fn panicked() -> Response {
    ApiError::internal("a handler panicked", &"panic").into_response()
}
