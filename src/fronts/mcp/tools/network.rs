//! Network tools: `network_status` (the orchestrator's onboarding posture and this host's
//! registration), `get_leaderboard` (how workers rank, this one included) and `get_rewards`
//! (what this worker is owed and was paid, with Merkle proofs).

use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};

use crate::fronts::mcp::args::{Args, input_schema, output_schema};
use crate::fronts::mcp::{BasisMcp, long};
use crate::ops::discovery::leaderboard;
use crate::ops::{network, rewards};

const NETWORK_STATUS: &str = "\
Ask the orchestrator for its onboarding posture (registration open, gated or closed; whether \
jobs are routed and paid; heartbeat and online windows) and check this host: is the env file \
complete, is the worker registered, does the orchestrator hold this host's token. Read-only. \
Use it before onboarding to see whether the network accepts workers, and after \
register_worker to confirm; next_step says what to do next. An unreachable orchestrator is \
reported in the result (orchestrator_error), not as a failure.";

const GET_LEADERBOARD: &str = "\
Show the orchestrator's leaderboard: workers ranked by what the orchestrator itself observed \
in a window (24h, 7d, all): tasks passed, smoothed pass rate, disputes lost, share of the \
window online, tokens served, median time to first token, and a composite score \
(docs/DISCOVERY.md). by= picks the ranking (score, tasks_passed, pass_rate, online, tokens, \
ttft; metric with family= ranks a task family by its best evaluator-confirmed metric). Ties \
share a rank. This host's worker's own entry is `you`, wherever it ranks. Ratios are \
thousandths. Read-only; figures are cached for a few seconds. Next: fetch_tasks to earn \
rank, or `basis erc8004 prepare` to publish this worker's registration.";

const GET_REWARDS: &str = "\
Show what this host's worker has earned: accrued, pending (credited, in no settlement batch \
yet), batched (in a closed batch, not paid yet) and paid (the operator recorded the payment \
transaction), in atomic units as decimal strings and in words. Each batch comes with the \
wallet's leaf, its Merkle proof and the root, so the claim can be checked offline or against \
a distributor contract (MerkleProof.verify). wallet_wide: true adds up every worker paying \
the same wallet. Read-only; no credential is sent. basis never signs or pays: the operator's \
own wallet pays each batch (docs/SETTLEMENT.md). Next: fetch_tasks to earn more.";

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

    #[tool(
        name = "get_leaderboard",
        title = "Leaderboard",
        description = GET_LEADERBOARD,
        input_schema = input_schema::<leaderboard::Input>(),
        output_schema = output_schema::<leaderboard::Output>(),
        annotations(
            title = "Leaderboard",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_leaderboard(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<leaderboard::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run(&context, "reading the leaderboard", async {
            Box::pin(leaderboard::run(self.ctx(), &input?)).await
        })
        .await
    }

    #[tool(
        name = "get_rewards",
        title = "Rewards",
        description = GET_REWARDS,
        input_schema = input_schema::<rewards::Input>(),
        output_schema = output_schema::<rewards::Output>(),
        annotations(
            title = "Rewards",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    async fn get_rewards(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<rewards::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run(&context, "reading the rewards", async {
            Box::pin(rewards::view(self.ctx(), &input?)).await
        })
        .await
    }
}
