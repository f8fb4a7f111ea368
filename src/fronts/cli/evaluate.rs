//! `basis evaluate`: the CLI mirror of the `verify_output` tool (the Evaluator Agent's).

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::tasks::evaluate::{self, Input, Mode, Output};

/// Without a verdict: fetches a submission for review, with its output hash recomputed here
/// (a tampered output is refused), and prints the task's criteria and the output. With
/// --score and --passed or --failed: posts the evaluation with the evaluator key read from
/// the env file (BASIS_EVALUATOR_KEY, given by the orchestrator's operator).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The submission to judge (sub- + 32 hex).
    #[arg(value_name = "SUBMISSION_ID")]
    pub submission_id: String,
    /// The score, 0 to 100.
    #[arg(long, requires = "verdict")]
    pub score: Option<u8>,
    /// The output meets the criteria.
    #[arg(long, group = "verdict", requires = "score")]
    pub passed: bool,
    /// The output does not meet the criteria (give a --reason).
    #[arg(long, group = "verdict", requires = "score")]
    pub failed: bool,
    /// A reason, one per criterion (repeat the flag).
    #[arg(long = "reason", value_name = "TEXT", requires = "score")]
    pub reasons: Vec<String>,
    /// For a task with a metric: the value you confirm the output reached (a decimal).
    #[arg(
        long,
        value_name = "DECIMAL",
        requires = "score",
        allow_hyphen_values = true
    )]
    pub metric: Option<String>,
    /// Env file holding BASIS_EVALUATOR_KEY [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let verdict = args.score.is_some();
    let input = Input {
        submission_id: args.submission_id,
        score: args.score,
        passed: verdict.then_some(args.passed && !args.failed),
        reasons: verdict.then_some(args.reasons),
        metric: args.metric,
        env_file: args.env,
    };
    let result = match ctx.ops() {
        Ok(ops) => evaluate::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, human)
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} for {}: {}", o.submission_id, o.task_id, o.status);
    if o.mode == Mode::Review {
        let _ = writeln!(s, "task: {}", o.description);
        for c in &o.criteria {
            let _ = writeln!(s, "  criterion: {c}");
        }
        let _ = writeln!(s, "pass threshold: {}", o.pass_threshold);
        let _ = writeln!(s, "output ({}, hash verified):", o.output_format);
        let _ = writeln!(s, "{}", o.output);
        let _ = writeln!(s, "---");
    }
    if let Some(e) = &o.evaluation {
        let _ = writeln!(s, "evaluation: {}", output::verdict(e.score, e.passed));
    }
    if let Some(h) = &o.attestation_hash {
        let _ = writeln!(s, "attestation hash: {h}");
    }
    if let Some(c) = &o.credit {
        let _ = writeln!(s, "credit: {}", output::credit(c));
    }
    s.push_str(&output::next_for(
        &o.next_step,
        &[
            ("TASK_ID", o.task_id.as_str()),
            ("SUBMISSION_ID", o.submission_id.as_str()),
        ],
    ));
    s
}
