//! The Evaluator Agent's tool: `verify_output` (review a submission with its hash checked,
//! then post a verdict). The evaluator key is read from the env file by the operation; it is
//! never an argument and never in a result.

use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};

use crate::fronts::mcp::args::{Args, input_schema, output_schema};
use crate::fronts::mcp::{BasisMcp, long};
use crate::ops::tasks::evaluate;

const VERIFY_OUTPUT: &str = "\
For an Evaluator Agent. Call it with submission_id alone to review: basis fetches the \
submission (with the evaluator key from the env file; without one, only this worker's own) \
and its task, recomputes the output hash itself (a mismatch is OUTPUT_TAMPERED: \
refuse to judge it) and returns the description, criteria, pass_threshold, input and the \
output to judge. Then call it again with score (0-100), passed and reasons (one per \
criterion; a rejection needs one) to post the evaluation with the evaluator key from the env \
file (BASIS_EVALUATOR_KEY, never an argument); it returns the settled submission with its \
attestation hash and credit. Next: report the verdict; an evaluation is final.";

#[tool_router(router = evaluator_tools, vis = "pub(crate)")]
impl BasisMcp {
    #[tool(
        name = "verify_output",
        title = "Verify and evaluate a submission",
        description = VERIFY_OUTPUT,
        input_schema = input_schema::<evaluate::Input>(),
        output_schema = output_schema::<evaluate::Output>(),
        annotations(
            title = "Verify and evaluate a submission",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn verify_output(
        &self,
        context: RequestContext<RoleServer>,
        Args(input): Args<evaluate::Input>,
    ) -> Result<CallToolResult, ErrorData> {
        long::run(&context, "verifying the submission", async {
            Box::pin(evaluate::run(self.ctx(), &input?)).await
        })
        .await
    }
}
