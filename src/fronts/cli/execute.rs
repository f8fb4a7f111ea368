//! `basis execute`: the CLI mirror of the `execute_task` tool, with a spinner while the
//! runtime streams.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::start::Spinner;
use super::{Context, output};
use crate::ops::tasks::execute::{self, Input, Output};

/// Runs a claimed task's inference input on this host's runtime (the env file's echo, ollama
/// or vllm, with the worker's own runtime code) and prints the output with its hash. It does
/// not submit: pass the output to `basis submit`. Stops before the claim expires.
#[derive(Debug, clap::Args)]
pub struct Args {
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

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input {
        task_id: args.task_id,
        env_file: args.env,
    };
    let spinner = Spinner::start("running the task");
    let result = match ctx.ops() {
        Ok(ops) => {
            execute::run_with_progress(&ops, &input, &|p| {
                spinner.set(&format!(
                    "{} pieces in {} ms (of {} ms)",
                    p.pieces, p.elapsed_ms, p.budget_ms
                ));
            })
            .await
        }
        Err(p) => Err(p),
    };
    spinner.finish();
    output::render(args.json, result, human)
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", o.output);
    let _ = writeln!(s, "---");
    let _ = writeln!(
        s,
        "{} on {} ({}): {} prompt + {} completion tokens, first token {} ms, total {} ms{}",
        o.task_id,
        o.runtime,
        o.model,
        o.usage.prompt_tokens,
        o.usage.completion_tokens,
        o.timings.first_token_ms,
        o.timings.total_ms,
        if o.simulated { ", simulated" } else { "" }
    );
    match (&o.output_hash, &o.format_error) {
        (Some(hash), _) => {
            let _ = writeln!(s, "output_hash ({}): {hash}", o.output_format);
        }
        (None, Some(e)) => {
            let _ = writeln!(s, "not valid {}: {e}", o.output_format);
        }
        (None, None) => {}
    }
    s.push_str(&output::next_for(
        &o.next_step,
        &[("TASK_ID", o.task_id.as_str())],
    ));
    s
}
