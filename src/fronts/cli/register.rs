//! `basis register`: the CLI mirror of the `register_worker` tool.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::register::{self, Input, Output};

/// Registers this host's worker with the orchestrator. Given flags are saved in the env file
/// first (a new --orchestrator-url only once it has answered, and only with
/// --new-orchestrator when the file names another); the device key stays in the env file and
/// only its public key and a signature by it are sent. A legacy env file's token is proven
/// once, moving the worker to the key, then removed. When registration is gated, the
/// operator's key is read from BASIS_ENROLLMENT_KEY (environment or env file).
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
    /// Confirm moving this worker to another orchestrator than the one its env file names.
    #[arg(long)]
    pub new_orchestrator: bool,
    /// Accept a plain http:// orchestrator that is not on this machine (jobs and outputs
    /// would travel in clear).
    #[arg(long)]
    pub allow_insecure_http: bool,
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
        new_orchestrator: args.new_orchestrator.then_some(true),
        allow_insecure_http: args.allow_insecure_http.then_some(true),
        multi_task: args.multi_task,
        env_file: args.env,
    };
    let result = match ctx.ops() {
        // The registration's future holds a hardware check: boxed, not on the stack.
        Ok(ops) => Box::pin(register::run(&ops, &input)).await,
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
    let _ = writeln!(s, "  device key fingerprint: {}", o.key_fingerprint);
    if o.migrated {
        let _ = writeln!(
            s,
            "  moved from its legacy token to the device key; the token was removed from {}",
            o.env_file
        );
    }
    if let Some(from) = &o.previous_orchestrator_url {
        let _ = writeln!(s, "  moved from the orchestrator at {from}");
    }
    s.push_str(&output::next(&o.next_step));
    s
}
