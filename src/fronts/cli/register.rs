//! `basis register`: the CLI mirror of the `register_worker` tool.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::register::{self, Input, Output};

/// Registers this host's worker with the orchestrator. Given flags are saved in the env file
/// first (a new --orchestrator-url only once it has answered); the token stays in the env
/// file and only its sha256 is sent. When registration is
/// gated, the operator's key is read from BASIS_ENROLLMENT_KEY (environment or env file).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// PUBLIC EVM reward address (0x + 40 hex). Never a private key.
    #[arg(long)]
    pub wallet: Option<String>,
    /// Worker name: 2-63 lowercase letters, digits and '-'.
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Runtime: echo, ollama or vllm.
    #[arg(long)]
    pub runtime: Option<String>,
    /// Models served, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Orchestrator URL (saved in the env file once it has answered).
    #[arg(long)]
    pub orchestrator_url: Option<String>,
    /// Let this worker hold several task claims at once (`--multi-task` or
    /// `--multi-task=false`; saved in the env file) [default: one claim at a time].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub multi_task: Option<bool>,
    /// Env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input {
        wallet: args.wallet,
        worker_id: args.worker_id,
        runtime: args.runtime,
        models: args.models,
        orchestrator_url: args.orchestrator_url,
        multi_task: args.multi_task,
        env_file: args.env,
    };
    let result = match ctx.ops() {
        Ok(ops) => register::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, human)
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    let verb = if o.created {
        "registered"
    } else {
        "already registered"
    };
    let r = &o.record;
    let _ = writeln!(s, "{verb}: {} at {}", r.worker_id, o.orchestrator_url);
    let _ = writeln!(s, "  wallet: {}", r.wallet);
    let _ = writeln!(
        s,
        "  runtime: {} serving {}",
        r.runtime,
        r.models.join(", ")
    );
    let _ = writeln!(s, "  token fingerprint: {}", o.token_fingerprint);
    s.push_str(&output::next(&o.next_step));
    s
}
