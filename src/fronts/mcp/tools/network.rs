//! Network tools: `network_status` (the orchestrator's onboarding posture and this host's
//! registration).

use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};

use crate::fronts::mcp::args::{Args, input_schema, output_schema};
use crate::fronts::mcp::{BasisMcp, long};
use crate::ops::network;

const NETWORK_STATUS: &str = "\
Ask the orchestrator for its onboarding posture (registration open, gated or closed; whether \
jobs are routed and paid; heartbeat and online windows) and check this host: is the env file \
complete, is the worker registered, does the orchestrator hold this host's token. Read-only. \
Use it before onboarding to see whether the network accepts workers, and after \
register_worker to confirm; next_step says what to do next. An unreachable orchestrator is \
reported in the result (orchestrator_error), not as a failure.";

#[tool_router(router = network_tools, vis = "pub(crate)")]
impl BasisMcp {
    #[tool(
        name = "network_status",
        title = "Network and registration status",
        description = NETWORK_STATUS,
        input_schema = input_schema::<network::Input>(),
        output_schema = output_schema::<network::Output>(),
        annotations(
            title = "Network and registration status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn network_status(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<network::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run(&context, "asking the orchestrator", async {
            Box::pin(network::run(self.ctx(), &input?)).await
        })
        .await
    }
}
