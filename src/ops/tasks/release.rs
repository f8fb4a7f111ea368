//! `release_task`: gives this worker's claim on a task back, so the task reopens for others
//! (the attempt counts; the third lapsed or released claim abandons the task) and this worker
//! may claim another.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Worker, task_id};
use crate::domain::Problem;
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::ops::Context;
use crate::wire::Task;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The claimed task to give back.
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

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// The task after the release (open again, or abandoned after its third attempt).
    pub task: Task,
    pub next_step: String,
}

/// Releases the claim.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let id = task_id(&input.task_id)?;
    let worker = Worker::load(ctx, input.env_file.as_deref())?;
    let task = worker
        .client
        .release(&id, &worker.id, worker.auth())
        .await?;
    Ok(Output {
        task,
        next_step: "released: fetch_tasks to find another task this worker can do".to_owned(),
    })
}
