//! `basis canary`: the end-to-end proof on one machine (docs/CANARY.md), as a checklist.

use std::io::Write as _;
use std::process::ExitCode;

use super::output;
use crate::ops::canary::{self, Outcome};

/// Starts a throwaway orchestrator (SQLite in a temp dir), registers a worker with a throwaway
/// wallet, starts a real echo worker through the supervisor, and checks the gateway end to end:
/// 503 without a worker, 401 without a key, online within the window, completions streamed and
/// not with receipts that verify, offline after stop. Exits 1 if any step fails.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the checklist as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args) -> ExitCode {
    let json = args.json;
    let progress = move |step: &canary::Step| {
        if !json {
            let mark = if step.outcome == Outcome::Passed {
                "ok"
            } else {
                "FAILED"
            };
            let _ = writeln!(std::io::stderr().lock(), "  {mark:<6} {}", step.name);
        }
    };
    let result = Box::pin(canary::run(&progress)).await;
    let passed = result.as_ref().is_ok_and(|o| o.passed);
    let code = output::render(json, result, canary::Output::render_text);
    if passed || code != ExitCode::SUCCESS {
        code
    } else {
        ExitCode::FAILURE
    }
}
