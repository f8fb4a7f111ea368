//! `basis claim` and `basis release`: the CLI mirrors of `claim_task` and `release_task`.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::tasks::{claim, release};

/// Claims an open task for this host's worker: an exclusive lease until its claim_expiry. The
/// device key is read from the env file (it signs; it never leaves the host). Then `basis execute TASK_ID` (inference tasks) or
/// produce the output yourself, and `basis submit` before the lease ends.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The task to claim (task- + 32 hex), as `basis tasks` lists it.
    #[arg(value_name = "TASK_ID")]
    pub task_id: String,
    /// Env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = claim::Input {
        task_id: args.task_id,
        env_file: args.env,
    };
    let result = match ctx.ops() {
        Ok(ops) => claim::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, |o| {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "claimed {} for {}; the claim expires {}",
            o.task_id,
            o.worker_id,
            output::when(o.claim_expiry)
        );
        let _ = writeln!(s, "  task: {}", o.task.description);
        let _ = writeln!(
            s,
            "  reward: {}",
            output::amount(o.task.reward, &o.task.asset, o.task.asset_decimals)
        );
        for c in &o.task.criteria {
            let _ = writeln!(s, "  criterion: {c}");
        }
        let _ = writeln!(s, "  output format: {}", o.task.output_format);
        s.push_str(&output::next_for(
            &o.next_step,
            &[("TASK_ID", o.task_id.as_str())],
        ));
        s
    })
}

/// Gives this worker's claim on a task back: the task reopens for others (the attempt
/// counts) and this worker may claim another.
#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// The claimed task (task- + 32 hex).
    #[arg(value_name = "TASK_ID")]
    pub task_id: String,
    /// Env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn release(ctx: &Context, args: ReleaseArgs) -> ExitCode {
    let input = release::Input {
        task_id: args.task_id,
        env_file: args.env,
    };
    let result = match ctx.ops() {
        Ok(ops) => release::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, |o| {
        format!(
            "released {}: it is now {}\n{}",
            o.task.task_id,
            o.task.status,
            output::next(&o.next_step)
        )
    })
}
