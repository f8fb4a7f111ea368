//! `basis submit`: the CLI mirror of the `submit_output` tool.

use std::process::ExitCode;

use super::{Context, output};
use crate::domain::Usage;
use crate::ops::tasks::submit::{self, Input};

/// Submits this worker's output for a claimed task. basis checks the output against the
/// task's output_format, computes its keccak256 output_hash and submits, signed with the
/// device key from the env file. The same output again returns the same submission id. Outputs holding
/// anything that looks like a secret are refused.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["output", "output_file"]))]
pub struct Args {
    /// The claimed task (task- + 32 hex).
    #[arg(value_name = "TASK_ID")]
    pub task_id: String,
    /// The output as text (json: a JSON document; bytes: standard base64; ipfs_cid: a CID).
    #[arg(long, value_name = "TEXT")]
    pub output: Option<String>,
    /// Read the output from this file: inside basis's work directory (<state dir>/work, e.g.
    /// ~/.local/state/basis/work; a bare name is taken there) or an allowed_env_dirs directory.
    /// For a bytes task its raw bytes; otherwise UTF-8 text. Credentials, key and env files are
    /// never read.
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<String>,
    /// Prompt tokens, as `basis execute` reported them.
    #[arg(long, requires = "completion_tokens")]
    pub prompt_tokens: Option<u64>,
    /// Completion tokens, as `basis execute` reported them.
    #[arg(long, requires = "prompt_tokens")]
    pub completion_tokens: Option<u64>,
    /// How long producing the output took, milliseconds.
    #[arg(long, value_name = "MS")]
    pub duration_ms: Option<u64>,
    /// For a task with a metric: the value this output reached (a decimal, e.g. 0.2315).
    #[arg(long, value_name = "DECIMAL", allow_hyphen_values = true)]
    pub metric: Option<String>,
    /// Env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let usage = match (args.prompt_tokens, args.completion_tokens) {
        (Some(prompt_tokens), Some(completion_tokens)) => Some(Usage {
            prompt_tokens,
            completion_tokens,
        }),
        _ => None,
    };
    let input = Input {
        task_id: args.task_id,
        output: args.output,
        output_file: args.output_file,
        usage,
        duration_ms: args.duration_ms,
        metric: args.metric,
        env_file: args.env,
    };
    let result = match ctx.ops() {
        Ok(ops) => submit::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, |o| {
        format!(
            "{} {} for {}\n  output hash: {} ({} bytes, {})\n  evaluation due by: {}\n{}",
            if o.created {
                "submitted"
            } else {
                "already submitted"
            },
            o.submission_id,
            o.task_id,
            o.output_hash,
            o.output_bytes,
            o.output_format,
            output::when(o.evaluation_deadline),
            output::next_for(
                &o.next_step,
                &[
                    ("TASK_ID", o.task_id.as_str()),
                    ("SUBMISSION_ID", o.submission_id.as_str())
                ]
            )
        )
    })
}
