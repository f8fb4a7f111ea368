//! Onboarding tools: `write_env` (the local 0600 env file). `register_worker` joins them when
//! its operation lands.

use rmcp::model::CallToolResult;
use rmcp::{ErrorData, tool, tool_router};

use crate::fronts::mcp::BasisMcp;
use crate::fronts::mcp::args::{Args, input_schema, output_schema, reply};
use crate::ops::write_env;

const WRITE_ENV: &str = "\
Write this machine's worker env file (worker.env, mode 0600, written atomically) from PUBLIC \
settings: the reward wallet address, worker_id, runtime (echo|ollama|vllm), models and \
orchestrator_url. Use it after check_hardware, once the user has given their public wallet \
address. The worker token is generated here on the host and kept on every rewrite; the result \
shows only its fingerprint. Omitted fields keep their current values, so calling it again with \
the same arguments changes nothing. Never pass a private key, seed phrase or token: they are \
refused (SECRET_REFUSED). Next: register_worker.";

#[tool_router(router = onboarding_tools, vis = "pub(crate)")]
impl BasisMcp {
    #[tool(
        name = "write_env",
        title = "Write the worker env file",
        description = WRITE_ENV,
        input_schema = input_schema::<write_env::Input>(),
        output_schema = output_schema::<write_env::Output>(),
        annotations(
            title = "Write the worker env file",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn write_env(&self, Args(input): Args<write_env::Input>) -> Result<CallToolResult, ErrorData> {
        reply(input.and_then(|input| write_env::run(self.ctx(), &input)))
    }
}
