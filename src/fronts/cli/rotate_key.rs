//! `basis rotate-key`: the CLI mirror of the `rotate_key` tool.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::rotate_key::{self, Input, Output};

/// Replaces this worker's device key: a new key is written to the env file first
/// (BASIS_DEVICE_KEY_NEXT), registered with the orchestrator signed by the old key, then made
/// the key. Safe to rerun after an interruption. Restart the worker afterwards.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Env file [default: worker.env in the config directory].
    #[arg(long, visible_alias = "env-file", value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input { env_file: args.env };
    let result = match ctx.ops() {
        // The rotation's future holds a hardware check: boxed, not on the stack.
        Ok(ops) => Box::pin(rotate_key::run(&ops, &input)).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, human)
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    let verb = if o.resumed {
        "finished an interrupted key rotation"
    } else {
        "rotated the device key"
    };
    let _ = writeln!(
        s,
        "{verb} of {} at {}",
        o.record.worker_id, o.orchestrator_url
    );
    let _ = writeln!(s, "  old key: {} (now refused)", o.previous_key_fingerprint);
    let _ = writeln!(s, "  new key: {} (in {})", o.key_fingerprint, o.env_file);
    s.push_str(&output::next(&o.next_step));
    s
}
