//! `claim_task`: an exclusive, leased claim on an open task for this host's worker (proven by
//! its token from the env file). Returns the lease's expiry and the task, so the agent knows
//! what to produce and by when. Claiming a task this worker already holds returns its claim.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Worker, now_ms, task_id};
use crate::domain::{Problem, TaskId, WorkerId};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::ops::Context;
use crate::wire::Task;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The task to claim, as fetch_tasks lists it (task- + 32 hex).
    pub task_id: String,
    /// The env file naming this worker (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.task_id.guard("task_id")?;
        self.env_file.guard("env_file")
    }
}

/// The granted claim.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    /// Unix seconds.
    pub claimed_at: u64,
    /// Unix seconds: submit before this, or the claim lapses and the task reopens.
    pub claim_expiry: u64,
    /// Seconds left on the lease now.
    pub expires_in_s: u64,
    /// Claims of this task that lapsed or were released before this one (3 → abandoned).
    pub attempts: u32,
    /// The task as it stands after the claim: description, criteria, output_format, input.
    pub task: Task,
    /// execute_task can run the task's input on this host's runtime.
    pub has_input: bool,
    pub next_step: String,
}

/// Claims the task.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let id = task_id(&input.task_id)?;
    let worker = Worker::load(ctx, input.env_file.as_deref())?;
    let claim = worker.client.claim(&id, &worker.id, worker.auth()).await?;
    let task = worker.client.task(&id).await?;
    let has_input = task.input.is_some();
    let next_step = if has_input {
        "run it on this host's runtime with execute_task, then submit its output with \
         submit_output before the claim expires"
    } else {
        "produce the output yourself (read the description, criteria and output format), then \
         submit it with submit_output before the claim expires; release_task if you cannot do it"
    };
    Ok(Output {
        expires_in_s: claim.claim_expiry.saturating_sub(now_ms() / 1000),
        task_id: claim.task_id,
        worker_id: claim.worker_id,
        claimed_at: claim.claimed_at,
        claim_expiry: claim.claim_expiry,
        attempts: claim.attempts,
        task,
        has_input,
        next_step: next_step.to_owned(),
    })
}
