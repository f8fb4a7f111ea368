//! Worker tools: `start_worker`, `stop_worker`, `worker_status`, `verify_online` (the local
//! supervisor and the worker it keeps alive).

use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};

use crate::fronts::mcp::args::{Args, input_schema, output_schema};
use crate::fronts::mcp::{BasisMcp, long};
use crate::ops::{start, status, stop, verify};

const START_WORKER: &str = "\
Start the worker on this machine: launches the basis supervisor (detached), which runs the \
worker with the env file from write_env and restarts it with backoff if it exits. Use it after \
register_worker; it checks the env file is complete first and refuses a second start while one \
runs (WORKER_ALREADY_RUNNING), so calling it again is safe. Returns once the supervisor \
answers, with its pid and state; the token never appears. Next: verify_online (with wait_s to \
wait until the worker is connected), or worker_status.";

const STOP_WORKER: &str = "\
Stop the worker on this machine: the supervisor asks the worker to finish its in-flight jobs \
(up to drain_timeout_s), stops it, then exits. Use it when the user wants to stop \
contributing, before changing the env file, or to restart after an update. With nothing \
running it reports so and succeeds. Next: worker_status to confirm, or start_worker to run \
again.";

const WORKER_STATUS: &str = "\
Report the local worker: whether the supervisor runs, its state (running, backoff, crash \
loop), restarts and recent exits, what the worker reports (connection, last heartbeat, \
current job, counters) and the last lines of its log, redacted. Read-only; call it any time, \
especially when verify_online fails or after start_worker. next_step says what to do next.";

const VERIFY_ONLINE: &str = "\
Verify the worker is really online: a checklist (env complete, registered, supervisor alive, \
worker connected, heartbeat fresh, the orchestrator sees it online, runtime healthy, jobs \
routable), each failed item with its fix. Read-only. Use it after start_worker; pass wait_s \
(up to 300) to keep checking until everything passes, with progress notifications meanwhile. \
Next: apply the fix of the first failed item, or, when online, tell the user the worker is \
contributing.";

#[tool_router(router = worker_tools, vis = "pub(crate)")]
impl BasisMcp {
    #[tool(
        name = "start_worker",
        title = "Start the worker",
        description = START_WORKER,
        input_schema = input_schema::<start::Input>(),
        output_schema = output_schema::<start::Output>(),
        annotations(
            title = "Start the worker",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn start_worker(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<start::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run_reporting(&context, "starting the supervisor", |reporter| async move {
            let progress = move |p: start::Progress| reporter.report(p.step, p.total, p.message);
            Box::pin(start::run_with_progress(self.ctx(), &input?, &progress)).await
        })
        .await
    }

    #[tool(
        name = "stop_worker",
        title = "Stop the worker",
        description = STOP_WORKER,
        input_schema = input_schema::<stop::Input>(),
        output_schema = output_schema::<stop::Output>(),
        annotations(
            title = "Stop the worker",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn stop_worker(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<stop::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run(&context, "stopping the worker", async {
            Box::pin(stop::run(self.ctx(), &input?)).await
        })
        .await
    }

    #[tool(
        name = "worker_status",
        title = "Worker status",
        description = WORKER_STATUS,
        input_schema = input_schema::<status::Input>(),
        output_schema = output_schema::<status::Output>(),
        annotations(
            title = "Worker status",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn worker_status(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<status::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run(&context, "asking the supervisor", async {
            Box::pin(status::run(self.ctx(), &input?)).await
        })
        .await
    }

    #[tool(
        name = "verify_online",
        title = "Verify the worker is online",
        description = VERIFY_ONLINE,
        input_schema = input_schema::<verify::Input>(),
        output_schema = output_schema::<verify::Output>(),
        annotations(
            title = "Verify the worker is online",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn verify_online(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<verify::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run_reporting(&context, "checking the worker", |reporter| async move {
            let progress = move |passed: u32, total: u32| {
                reporter.report(passed, total, format!("{passed} of {total} checks pass"));
            };
            Box::pin(verify::run_with_progress(self.ctx(), &input?, &progress)).await
        })
        .await
    }
}
