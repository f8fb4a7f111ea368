//! The tool catalogue: one file per toolset, each a `#[tool_router(router = …)]` block on
//! [`BasisMcp`], added together here once per process. Every tool is a thin wrapper over one
//! operation in `crate::ops`: `Args<ops::x::Input>` in, `reply(ops::x::run(…))` out.
//!
//! Metadata rules (held by `tests/schemas.rs`): every tool has a title, a description that says
//! when to use it and what comes next, input and output schemas from the operation's types,
//! and all four annotation hints set explicitly.

mod evaluator;
mod hardware;
mod network;
mod onboarding;
mod tasks;
mod worker;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::Tool;

use super::BasisMcp;

/// Every tool, or with `read_only` only those whose `read_only_hint` is true.
pub fn router(read_only: bool) -> ToolRouter<BasisMcp> {
    let mut router = BasisMcp::hardware_tools()
        + BasisMcp::onboarding_tools()
        + BasisMcp::network_tools()
        + BasisMcp::worker_tools()
        + BasisMcp::task_tools()
        + BasisMcp::evaluator_tools();
    if read_only {
        let writers: Vec<_> = router
            .map
            .values()
            .filter(|route| !is_read_only(&route.attr))
            .map(|route| route.attr.name.clone())
            .collect();
        for name in writers {
            router.remove_route(&name);
        }
    }
    router
}

/// True when the tool is annotated `readOnlyHint: true`.
pub fn is_read_only(tool: &Tool) -> bool {
    tool.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true)
}
