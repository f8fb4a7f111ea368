//! MCP resources: `basis://worker/env`, the worker env file with its secret masked
//! (`BASIS_WORKER_TOKEN` shows only the token's fingerprint). Later: the worker log tail and
//! receipts (§10).

use rmcp::ErrorData;
use rmcp::model::{ListResourcesResult, ReadResourceResult, Resource, ResourceContents};

use crate::ops::{self, Context};

/// The env file resource.
pub const ENV_URI: &str = "basis://worker/env";

/// Every resource this server offers.
pub fn list() -> ListResourcesResult {
    ListResourcesResult::with_all_items(vec![
        Resource::new(ENV_URI, "worker_env")
            .with_title("Worker env file (secrets masked)")
            .with_description(
                "The worker's env file (worker.env in the basis config directory) as written by \
                 write_env and register_worker. The worker token is never shown: \
                 BASIS_WORKER_TOKEN holds only its fingerprint. Read it to check what is \
                 configured before calling write_env or register_worker.",
            )
            .with_mime_type("text/plain"),
    ])
}

/// Reads the resource at `uri`.
pub fn read(ctx: &Context, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    if uri != ENV_URI {
        return Err(ErrorData::resource_not_found(
            format!("no resource {uri}; resources/list shows the ones this server has"),
            None,
        ));
    }
    let env = ops::env_resource::run(ctx).map_err(|problem| {
        let data = serde_json::to_value(&problem).ok();
        ErrorData::internal_error(format!("{}: {}", problem.code, problem.message), data)
    })?;
    Ok(ReadResourceResult::new(vec![ResourceContents::text(
        env.text, ENV_URI,
    )]))
}
