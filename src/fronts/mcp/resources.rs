//! MCP resources: `basis://worker/env`, the worker env file with its secret masked
//! (`BASIS_WORKER_TOKEN` shows only the token's fingerprint), `basis://worker/log`, the tail
//! of the worker log, redacted, and the template `basis://receipts/{id}`: one receipt as
//! sealed, verified here before it is served (docs/RECEIPTS.md).

use rmcp::ErrorData;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};

use crate::ops::{self, Context, Problem};

/// The env file resource.
pub const ENV_URI: &str = "basis://worker/env";
/// The worker log tail resource.
pub const LOG_URI: &str = "basis://worker/log";
/// The receipts template; `{id}` is a receipt id (`rcpt-…`) or hash (`0x…`).
pub const RECEIPT_TEMPLATE: &str = "basis://receipts/{id}";
const RECEIPT_PREFIX: &str = "basis://receipts/";
/// Lines of the log tail the resource shows.
const LOG_LINES: u32 = 200;

/// Every resource this server offers.
pub fn list() -> ListResourcesResult {
    ListResourcesResult::with_all_items(vec![
        Resource::new(ENV_URI, "worker_env")
            .with_title("Worker env file (secrets masked)")
            .with_description(
                "The worker's env file (worker.env in the basis config directory) as written by \
                 write_env and register_worker. The device key is never shown: \
                 BASIS_DEVICE_KEY holds only its fingerprint (so does a legacy \
                 BASIS_WORKER_TOKEN). Read it to check what is \
                 configured before calling write_env or register_worker.",
            )
            .with_mime_type("text/plain"),
        Resource::new(LOG_URI, "worker_log")
            .with_title("Worker log (last lines, redacted)")
            .with_description(
                "The last 200 lines of the worker log: the worker's output and the supervisor's \
                 start, exit and restart lines, with anything secret-shaped replaced by \
                 [REDACTED]. Read it when worker_status or verify_online shows a problem.",
            )
            .with_mime_type("text/plain"),
    ])
}

/// The resource templates this server offers.
pub fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new(RECEIPT_TEMPLATE, "receipt")
            .with_title("A receipt, as sealed and verified")
            .with_description(
                "One receipt from the orchestrator (the env file's, else the configured one), \
                 by its id (rcpt-…) or hash (0x…), as the JSON it was sealed as. Its \
                 receipt_hash is recomputed here before it is served: a receipt that does not \
                 verify is an error, never content.",
            )
            .with_mime_type("application/json"),
    ])
}

/// Reads the resource at `uri`.
pub async fn read(ctx: &Context, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let text = match uri {
        ENV_URI => ops::env_resource::run(ctx).map_err(|p| failed(&p))?.text,
        LOG_URI => {
            let input = ops::logs::Input {
                lines: Some(LOG_LINES),
            };
            let tail = ops::logs::run(ctx, &input).await.map_err(|p| failed(&p))?;
            let mut text = tail.lines.join("\n");
            if text.is_empty() {
                text = format!(
                    "# the worker log at {} is empty or absent: start_worker writes it\n",
                    tail.path
                );
            }
            text
        }
        _ if uri.starts_with(RECEIPT_PREFIX) => {
            let id = &uri[RECEIPT_PREFIX.len()..];
            ops::receipts::fetch_verified(ctx, id)
                .await
                .map_err(|p| failed(&p))?
                .to_string()
        }
        _ => {
            return Err(ErrorData::resource_not_found(
                format!(
                    "no resource {}; resources/list shows the ones this server has",
                    crate::guard::redact_line(uri)
                ),
                None,
            ));
        }
    };
    Ok(ReadResourceResult::new(vec![ResourceContents::text(
        text, uri,
    )]))
}

/// A read that failed: the problem's code and message (never a secret) and the problem as data.
fn failed(problem: &Problem) -> ErrorData {
    let data = serde_json::to_value(problem).ok();
    ErrorData::internal_error(format!("{}: {}", problem.code, problem.message), data)
}
