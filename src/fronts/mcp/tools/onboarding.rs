//! Onboarding tools: `write_env` (the local 0600 env file), `register_worker` (joining the
//! orchestrator with the device key's public half, signed by it) and `rotate_key` (replacing
//! that key).

use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};

use crate::fronts::mcp::args::{Args, input_schema, output_schema, reply};
use crate::fronts::mcp::{BasisMcp, long};
use crate::ops::{register, rotate_key, write_env};

const WRITE_ENV: &str = "\
Write this machine's worker env file (worker.env, mode 0600, written atomically) from PUBLIC \
settings: the reward wallet address, worker_id, runtime (echo|ollama|vllm), models and \
orchestrator_url. Use it after check_hardware, once the user has given their public wallet \
address. The worker's device key (an Ed25519 private key) is generated here on the host, kept \
on every rewrite and never leaves it; the result shows only its fingerprint. Omitted fields \
keep their current values, so calling it again with the same arguments changes nothing. \
Pointing an existing worker at a different orchestrator needs new_orchestrator: true; a plain \
http:// orchestrator on another machine needs allow_insecure_http: true (jobs would travel in \
clear). An existing file at out that is not a worker env file is refused (ENV_FILE_FOREIGN) \
unless force is true. Never pass a private key, device key, seed phrase or token: they are \
refused (SECRET_REFUSED). Next: register_worker.";

const REGISTER_WORKER: &str = "\
Register this machine's worker with the orchestrator. Uses the env file written by write_env \
(arguments given here are saved there first); the device key is generated on this host if \
absent, and only its PUBLIC key is sent, with worker_id, the PUBLIC wallet, runtime, models and \
version, the request signed by the key (the private key never leaves the host). A legacy env \
file's token is proven once to move the worker to its key, then removed (migrated: true). \
Re-running with the same inputs is safe: it returns the existing registration. Returns the \
record as the orchestrator holds it and the key's fingerprint. A worker_id taken by another host \
fails with a conflict code and a fix; a gated orchestrator needs the operator's enrollment key \
in BASIS_ENROLLMENT_KEY on this host (never as an argument). Another orchestrator than the env \
file's needs new_orchestrator: true. Next: network_status, then start the worker.";

const ROTATE_KEY: &str = "\
Replace this worker's device key, e.g. when it may have been exposed. A new key is written to \
the env file first (BASIS_DEVICE_KEY_NEXT), then registered with the orchestrator in a request \
signed by both the new and the current key, then made the key; the orchestrator refuses the \
old key from then on. Safe to call again after an interruption: it finishes the rotation. \
Returns the old and new fingerprints (never a key). Next: restart the worker (stop_worker, then \
start_worker) so it connects with the new key.";

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

    #[tool(
        name = "register_worker",
        title = "Register the worker",
        description = REGISTER_WORKER,
        input_schema = input_schema::<register::Input>(),
        output_schema = output_schema::<register::Output>(),
        annotations(
            title = "Register the worker",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn register_worker(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<register::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run(&context, "registering with the orchestrator", async {
            Box::pin(register::run(self.ctx(), &input?)).await
        })
        .await
    }

    #[tool(
        name = "rotate_key",
        title = "Rotate the device key",
        description = ROTATE_KEY,
        input_schema = input_schema::<rotate_key::Input>(),
        output_schema = output_schema::<rotate_key::Output>(),
        annotations(
            title = "Rotate the device key",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn rotate_key(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<rotate_key::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run(&context, "rotating the device key", async {
            Box::pin(rotate_key::run(self.ctx(), &input?)).await
        })
        .await
    }
}
