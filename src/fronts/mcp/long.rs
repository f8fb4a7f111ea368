//! Long tools (hardware probes, orchestrator calls, starting and verifying the worker):
//! progress notifications when the client sent a `progressToken`, and cancellation. A
//! `notifications/cancelled` for the request drops the operation's future (closing its
//! sockets and probes) instead of letting it run on.

use std::future::Future;

use rmcp::model::{CallToolResult, ErrorCode as RpcCode, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde::Serialize;
use tokio::sync::mpsc;

use super::args::reply;
use crate::domain::Problem;

/// JSON-RPC code for a request the client cancelled (LSP's `RequestCancelled`).
const REQUEST_CANCELLED: i32 = -32800;

/// What an operation reports as it goes: `done` of `total`, and what it is doing.
#[derive(Debug)]
struct Step {
    done: f64,
    total: f64,
    message: String,
}

/// Hands an operation's progress callbacks to the tool call (sync, never blocks).
#[derive(Debug, Clone)]
pub struct Reporter(mpsc::UnboundedSender<Step>);

impl Reporter {
    pub fn report(&self, done: u32, total: u32, message: impl Into<String>) {
        let _ = self.0.send(Step {
            done: f64::from(done),
            total: f64::from(total),
            message: message.into(),
        });
    }
}

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
    run_reporting(context, what, |_| op).await
}

/// [`run`] for an operation that reports its own steps through the [`Reporter`] it is given;
/// each step becomes a progress notification.
pub async fn run_reporting<T, F>(
    context: &RequestContext<RoleServer>,
    what: &str,
    op: impl FnOnce(Reporter) -> F,
) -> Result<CallToolResult, ErrorData>
where
    T: Serialize,
    F: Future<Output = Result<T, Problem>>,
{
    let (tx, mut steps) = mpsc::unbounded_channel();
    let op = op(Reporter(tx));
    tokio::pin!(op);
    let mut sent = Progress::new(context);
    sent.send(0.0, what).await;
    let outcome = loop {
        tokio::select! {
            outcome = &mut op => break outcome,
            Some(step) = steps.recv() => sent.step(&step).await,
            () = context.ct.cancelled() => {
                return Err(ErrorData::new(RpcCode(REQUEST_CANCELLED), "the request was cancelled", None));
            }
        }
    };
    while let Ok(step) = steps.try_recv() {
        sent.step(&step).await;
    }
    sent.send(1.0, "done").await;
    reply(outcome)
}

/// The progress notifications of one call, as fractions of 1 that only ever increase (the
/// spec requires it; a step that would go back, e.g. a check failing again, is not sent).
struct Progress<'a> {
    context: &'a RequestContext<RoleServer>,
    last: Option<f64>,
}

impl<'a> Progress<'a> {
    fn new(context: &'a RequestContext<RoleServer>) -> Self {
        Self {
            context,
            last: None,
        }
    }

    async fn step(&mut self, step: &Step) {
        if step.total > 0.0 {
            // Below 1: only the end of the call is complete.
            let fraction = (step.done / step.total).clamp(0.0, 0.99);
            self.send(fraction, &step.message).await;
        }
    }

    async fn send(&mut self, fraction: f64, message: &str) {
        let Some(token) = self.context.meta.get_progress_token() else {
            return;
        };
        if self.last.is_some_and(|last| fraction <= last) {
            return;
        }
        self.last = Some(fraction);
        let param = ProgressNotificationParam::new(token, fraction)
            .with_total(1.0)
            .with_message(message);
        if let Err(e) = self.context.peer.notify_progress(param).await {
            tracing::debug!("cannot send a progress notification: {e}");
        }
    }
}
