//! `basis check`: the CLI mirror of the `check_hardware` tool.

use std::process::ExitCode;

use super::{Context, output};
use crate::ops::check::{self, Input};

/// Checks GPUs, drivers, containers and runtimes, and says what this machine can serve.
/// Every probe runs concurrently with its own timeout; the report always completes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Env file to read runtime URLs and models from [default: worker.env in the config dir].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Budget of each probe in milliseconds (100-1900).
    #[arg(long, value_name = "MS")]
    pub probe_timeout_ms: Option<u64>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input {
        env_file: args.env,
        probe_timeout_ms: args.probe_timeout_ms,
    };
    let result = match ctx.ops() {
        Ok(ops) => check::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(
        args.json,
        result,
        crate::hardware::HardwareReport::render_text,
    )
}
