//! `basis submission` and `basis dispute`: the CLI mirrors of `get_submission` and
//! `dispute_output`.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
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
    let _ = writeln!(s, "  output_hash: {} ({verified})", sub.output_hash);
    if let Some(e) = &sub.evaluation {
        let _ = writeln!(s, "  evaluation: score {}, passed {}", e.score, e.passed);
        for r in &e.reasons {
            let _ = writeln!(s, "    - {r}");
        }
    }
    if let Some(h) = &sub.attestation_hash {
        let ok = o.attestation_verified == Some(true);
        let _ = writeln!(
            s,
            "  attestation_hash: {h} ({})",
            if ok { "verified" } else { "MISMATCH" }
        );
    }
    if let Some(c) = &sub.credit {
        let _ = write!(
            s,
            "  credit: gross {} fee {} net {} {} ({})",
            c.gross, c.fee, c.net, c.asset, c.status
        );
        if let Some(unpaid) = c.unpaid {
            let reason = serde_json::to_value(unpaid)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = write!(s, ", unpaid: {reason}");
        }
        let _ = writeln!(s);
    }
    if let Some(d) = &sub.dispute {
        let _ = writeln!(s, "  dispute: {}", d.reason);
    }
    if let Some(r) = &sub.receipt_id {
        let _ = writeln!(s, "  receipt: {r}");
    }
    let _ = write!(s, "next: {}", o.next_step);
    s
}
