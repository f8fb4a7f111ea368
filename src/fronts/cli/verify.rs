//! `basis verify`: the CLI mirror of the `verify_online` tool.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::start::Spinner;
use super::{Context, output};
use crate::ops::verify::{self, Input, Output};

/// Checks that this host's worker is really online: env complete, registered, supervisor
/// alive, worker connected, heartbeat fresh, orchestrator says online, runtime healthy, jobs
/// routable. Exits 1 when a check fails.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep checking until everything passes or this many seconds pass (at most 300).
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<u64>,
    /// Env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input {
        wait_s: args.wait,
        env_file: args.env,
    };
    let spinner = Spinner::start("verifying");
    let result = match ctx.ops() {
        Ok(ops) => {
            verify::run_with_progress(&ops, &input, &|passed, total| {
                spinner.set(&format!("{passed}/{total} checks pass"));
            })
            .await
        }
        Err(problem) => Err(problem),
    };
    // Clears the progress line before the checklist prints.
    spinner.finish();
    let online = result.as_ref().is_ok_and(|o| o.online);
    let code = output::render(args.json, result, human);
    if online || code != ExitCode::SUCCESS {
        code
    } else {
        ExitCode::FAILURE
    }
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    for c in &o.checks {
        let mark = if c.ok { "[x]" } else { "[ ]" };
        let _ = writeln!(s, "{mark} {:<26} {}", c.name, output::cli(&c.detail));
        if let Some(fix) = &c.fix {
            let _ = writeln!(s, "      fix: {}", output::cli(fix));
        }
    }
    s.push_str(&output::next(&o.next_step));
    s
}
