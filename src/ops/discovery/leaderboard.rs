//! `get_leaderboard` (read-only): the orchestrator's leaderboard, with this host's worker's
//! own entry (`you`) wherever it ranks. The orchestrator is the env file's, else the
//! configured one; no credential is needed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{ErrorCode, Problem, WorkerId};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::ops::Context;
use crate::ops::tasks::{client, read_env};
use crate::wire::{Leaderboard, LeaderboardBy, LeaderboardQuery, LeaderboardWindow};

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The window counted over: 24h (default), 7d or all.
    #[serde(default)]
    pub window: Option<String>,
    /// What to rank by: score (default; see docs/DISCOVERY.md), tasks_passed, pass_rate,
    /// online, tokens, ttft, or metric (with family).
    #[serde(default)]
    pub by: Option<String>,
    /// With by=metric: the task family to rank by its best confirmed metric.
    #[serde(default)]
    pub family: Option<String>,
    /// Entries to return, 1 to 1000 (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
    /// The env file naming this worker (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.window.guard("window")?;
        self.by.guard("by")?;
        self.family.guard("family")?;
        self.env_file.guard("env_file")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub orchestrator_url: String,
    /// This host's worker, when the env file names one; its entry is `you`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<WorkerId>,
    #[serde(flatten)]
    pub leaderboard: Leaderboard,
}

fn choice<T: serde::de::DeserializeOwned>(
    what: &str,
    value: Option<&str>,
    allowed: &str,
) -> Result<Option<T>, Problem> {
    value
        .map(|v| {
            serde_json::from_value(Value::String(v.trim().to_owned())).map_err(|_| {
                Problem::new(
                    ErrorCode::InvalidArgument,
                    format!("{what} must be one of: {allowed}"),
                )
                .with_fix(format!("Pass {what} as one of: {allowed}."))
            })
        })
        .transpose()
}

pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let window: Option<LeaderboardWindow> =
        choice("window", input.window.as_deref(), "24h, 7d, all")?;
    let by: Option<LeaderboardBy> = choice(
        "by",
        input.by.as_deref(),
        "score, tasks_passed, pass_rate, online, tokens, ttft, metric",
    )?;
    if by == Some(LeaderboardBy::Metric) && input.family.is_none() {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            "by=metric ranks one task family, and no family was given",
        )
        .with_fix("give family, the task family to rank; fetch_tasks shows each task's family"));
    }
    let env = read_env(ctx, input.env_file.as_deref())?;
    let worker_id = env.as_ref().and_then(|e| e.worker_id.clone());
    let (client, url) = client(ctx, env.as_ref())?;
    let query = LeaderboardQuery {
        window,
        by,
        family: input.family.as_deref().map(str::trim).map(str::to_owned),
        worker: worker_id.clone(),
        limit: input.limit,
    };
    let leaderboard = client.leaderboard(&query).await?;
    Ok(Output {
        orchestrator_url: url.to_string(),
        worker_id,
        leaderboard,
    })
}
