//! Long tools (hardware probes, orchestrator calls): progress notifications when the client
//! sent a `progressToken`, and cancellation. A `notifications/cancelled` for the request drops
//! the operation's future (closing its sockets and probes) instead of letting it run on.

use std::future::Future;

use rmcp::model::{CallToolResult, ErrorCode as RpcCode, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde::Serialize;

use super::args::reply;
use crate::domain::Problem;

/// JSON-RPC code for a request the client cancelled (LSP's `RequestCancelled`).
const REQUEST_CANCELLED: i32 = -32800;

/// Runs `op` for a tool call: reports `what` as progress 0/1 when it starts and 1/1 when it
/// ends, stops early on cancellation, and turns the outcome into a tool result.
pub async fn run<T, F>(
    context: &RequestContext<RoleServer>,
    what: &str,
    op: F,
) -> Result<CallToolResult, ErrorData>
where
    T: Serialize,
    F: Future<Output = Result<T, Problem>>,
{
    progress(context, 0.0, what).await;
    let outcome = tokio::select! {
        outcome = op => outcome,
        () = context.ct.cancelled() => {
            return Err(ErrorData::new(RpcCode(REQUEST_CANCELLED), "the request was cancelled", None));
        }
    };
    progress(context, 1.0, "done").await;
    reply(outcome)
}

async fn progress(context: &RequestContext<RoleServer>, done: f64, message: &str) {
    let Some(token) = context.meta.get_progress_token() else {
        return;
    };
    let param = ProgressNotificationParam::new(token, done)
        .with_total(1.0)
        .with_message(message);
    if let Err(e) = context.peer.notify_progress(param).await {
        tracing::debug!("cannot send a progress notification: {e}");
    }
}
