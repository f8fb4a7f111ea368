//! `basis submission` and `basis dispute`: the CLI mirrors of `get_submission` and
//! `dispute_output`.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::domain::TaskStatus;
use crate::ops::tasks::{dispute, submission};

/// Shows a submission: status, evaluation, attestation hash (recomputed here), the ledger
/// credit and the settlement receipt.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The submission (sub- + 32 hex), as `basis submit` printed it.
    #[arg(value_name = "SUBMISSION_ID")]
    pub submission_id: String,
    /// Env file naming the orchestrator [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = submission::Input {
        submission_id: args.submission_id,
        env_file: args.env,
    };
    let result = match ctx.ops() {
        Ok(ops) => submission::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, human)
}

/// Disputes the rejection of this worker's submission, with a reason for the operator, before
/// its dispute deadline.
#[derive(Debug, clap::Args)]
pub struct DisputeArgs {
    /// The rejected submission (sub- + 32 hex).
    #[arg(value_name = "SUBMISSION_ID")]
    pub submission_id: String,
    /// Why the rejection is wrong: which criteria the output meets and how.
    #[arg(long)]
    pub reason: String,
    /// Env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn dispute(ctx: &Context, args: DisputeArgs) -> ExitCode {
    let input = dispute::Input {
        submission_id: args.submission_id,
        reason: args.reason,
        env_file: args.env,
    };
    let result = match ctx.ops() {
        Ok(ops) => dispute::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, human)
}

fn human(o: &submission::Output) -> String {
    let sub = &o.submission;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} for {} by {}: {}",
        sub.submission_id, sub.task_id, sub.worker_id, sub.status
    );
    let verified = if o.output_hash_verified {
        "verified"
    } else {
        "MISMATCH"
    };
    let _ = writeln!(s, "  output hash: {} ({verified})", sub.output_hash);
    if sub.evaluation.is_none() {
        let _ = writeln!(
            s,
            "  to be evaluated by: {}",
            output::when(sub.evaluation_deadline)
        );
    }
    if let Some(e) = &sub.evaluation {
        let _ = writeln!(s, "  evaluation: {}", output::verdict(e.score, e.passed));
        for r in &e.reasons {
            let _ = writeln!(s, "    - {r}");
        }
    }
    if let Some(h) = &sub.attestation_hash {
        let ok = o.attestation_verified == Some(true);
        let _ = writeln!(
            s,
            "  attestation hash: {h} ({})",
            if ok { "verified" } else { "MISMATCH" }
        );
    }
    if let Some(c) = &sub.credit {
        let _ = write!(s, "  credit: {} ({})", output::credit(c), c.status);
        if let Some(unpaid) = c.unpaid {
            let _ = write!(s, "; pays nothing: {}", output::unpaid(unpaid));
        }
        let _ = writeln!(s);
    }
    let disputable = sub.status == TaskStatus::Rejected && sub.dispute.is_none();
    if let (Some(until), true) = (sub.dispute_deadline, disputable) {
        let _ = writeln!(s, "  may be disputed until: {}", output::when(until));
    }
    if let Some(d) = &sub.dispute {
        let _ = writeln!(s, "  dispute: {}", d.reason);
    }
    if let Some(r) = &sub.receipt_id {
        let _ = writeln!(s, "  receipt: {r}");
    }
    s.push_str(&output::next_for(
        &o.next_step,
        &[
            ("TASK_ID", sub.task_id.as_str()),
            ("SUBMISSION_ID", sub.submission_id.as_str()),
        ],
    ));
    s
}
