//! The MCP front (`basis mcp`): the tools, resources and prompts an agent uses, on rmcp, over
//! stdio (default) or streamable HTTP at `/mcp`.
//!
//! - [`BasisMcp`] (`server`) is the handler; the tool router (`tools/`, one file per toolset)
//!   and the operations' context are built once per process.
//! - `args` turns tool arguments into an operation's `Input` and its `Result<Output, Problem>`
//!   into a tool result (`isError` + structured `{code, message, fix}` for a problem).
//! - `resources` (the masked env file, the redacted log tail), `prompts`
//!   (`onboard_gpu_worker`, runtime completion), `logging` (`logging/setLevel` per session;
//!   the crate's `tracing` events, guarded, forwarded as `notifications/message`),
//!   `long` (progress notifications and cancellation for the slow tools).
//! - `http` serves `/mcp` behind `security` (Host/Origin allow-lists, bearer token, body limit).
//!
//! Architecture invariant: no logic lives here. A tool parses nothing itself and calls exactly
//! one operation in `crate::ops`; nothing else in the crate imports this module.

mod args;
mod http;
mod logging;
mod long;
mod prompts;
mod resources;
mod security;
mod server;
mod tools;

pub use http::{HttpOptions, HttpServer};
pub use resources::{ENV_URI, LOG_URI};
pub use security::{BearerToken, MAX_BODY_BYTES, TOKEN_ENV};
pub use server::BasisMcp;
pub use tools::is_read_only;
/// The tool catalogue (the CLI's vocabulary test checks it names every tool).
#[cfg(test)]
pub(crate) use tools::router as tool_router;

use rmcp::ServiceExt;
use rmcp::model::Tool;
use tokio::runtime::RuntimeFlavor;

use crate::domain::{ErrorCode, Problem};

/// Every tool this server can offer (the full catalogue, as `tools/list` shows it without
/// `--read-only`), sorted by name. `tests/schemas.rs` snapshots it into `schemas/tools/`.
pub fn catalogue() -> Vec<Tool> {
    tools::router(false).list_all()
}

/// Serves `server` on stdin/stdout until the client closes the stream.
///
/// One client, one event loop: on a multi-threaded runtime, the protocol runs on a
/// current-thread runtime of its own, on this very thread (`block_in_place`), so reading a
/// request, answering it and writing the answer never hop between threads. Tool calls go back
/// to the multi-threaded runtime, where a probe's blocking work cannot stall the session.
pub async fn serve_stdio(server: BasisMcp) -> Result<(), Problem> {
    let work = match tokio::runtime::Handle::try_current() {
        Ok(work) if work.runtime_flavor() == RuntimeFlavor::MultiThread => work,
        _ => return stdio_session(server).await,
    };
    let server = server.with_work_runtime(work);
    tokio::task::block_in_place(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| io_problem("cannot start the session's runtime", &e))?
            .block_on(stdio_session(server))
    })
}

async fn stdio_session(server: BasisMcp) -> Result<(), Problem> {
    let running = server
        .serve(rmcp::transport::stdio_pipes())
        .await
        .map_err(|e| io_problem("the client did not initialize", &e))?;
    running
        .waiting()
        .await
        .map(|_| ())
        .map_err(|e| io_problem("the session ended abnormally", &e))
}

fn io_problem(what: &str, e: &dyn std::fmt::Display) -> Problem {
    Problem::new(ErrorCode::IoError, format!("MCP over stdio: {what}: {e}"))
}
