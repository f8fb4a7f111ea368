//! `basis stop`: the CLI mirror of the `stop_worker` tool.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::start::Spinner;
use super::{Context, output};
use crate::ops::stop::{self, Input, Output};

/// Stops the worker (it finishes its in-flight jobs first, up to the drain timeout) and its
/// supervisor. Nothing running is not an error.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds the worker may take to finish in-flight jobs before it is killed [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub drain_timeout: Option<u64>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input {
        drain_timeout_s: args.drain_timeout,
    };
    let spinner = Spinner::start("stopping the worker (draining)");
    let result = match ctx.ops() {
        Ok(ops) => stop::run(&ops, &input).await,
        Err(problem) => Err(problem),
    };
    spinner.finish();
    output::render(args.json, result, human)
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    if let Some(cleaned) = &o.cleaned_up {
        let _ = writeln!(s, "cleaned up: {cleaned}");
    }
    if !o.was_running {
        let _ = write!(s, "nothing was running");
        return s;
    }
    let pid = o.pid.map_or_else(String::new, |p| format!(" (pid {p})"));
    let how = if o.forced { ", forced" } else { "" };
    let _ = writeln!(s, "stopped the supervisor{pid}{how}");
    match &o.worker_exit {
        Some(exit) => {
            let _ = writeln!(s, "  worker {}", exit.reason);
        }
        None => {
            let _ = writeln!(s, "  no worker process was running");
        }
    }
    s.push_str(&output::next(&o.next_step));
    s
}
