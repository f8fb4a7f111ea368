//! Hardware tools: `check_hardware` (read-only probes of GPUs, drivers, containers, runtimes).

use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};

use crate::fronts::mcp::args::{Args, input_schema, output_schema};
use crate::fronts::mcp::{BasisMcp, long};
use crate::hardware::HardwareReport;
use crate::ops::check;

const CHECK_HARDWARE: &str = "\
Check what this machine can contribute as a worker: GPUs (vendor, model, memory, driver, \
CUDA/ROCm), container runtimes, and the model runtimes (Ollama, vLLM) with the models they \
serve, plus advice: which runtime to use and what to fix. Read-only and safe to call any \
time; use it first when onboarding, and again after installing a driver or runtime. It never \
fails as a whole: a probe that cannot run is reported in the result. Next: write_env with \
the recommended runtime and the user's PUBLIC wallet address.";

#[tool_router(router = hardware_tools, vis = "pub(crate)")]
impl BasisMcp {
    #[tool(
        name = "check_hardware",
        title = "Check the hardware",
        description = CHECK_HARDWARE,
        input_schema = input_schema::<check::Input>(),
        output_schema = output_schema::<HardwareReport>(),
        annotations(
            title = "Check the hardware",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn check_hardware(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<check::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run(&context, "probing GPUs, containers and runtimes", async {
            Box::pin(check::run(self.ctx(), &input?)).await
        })
        .await
    }
}
