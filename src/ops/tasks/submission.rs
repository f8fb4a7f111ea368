//! `get_submission`: a submission as the orchestrator holds it (status, evaluation,
//! attestation hash, credit, settlement receipt), with the output hash and the attestation
//! hash recomputed here so the agent need not trust them. Read-only. Read with this worker's
//! token (its own submissions), else the evaluator key, from the env file.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Reader, client, read_env, submission_id};
use crate::domain::{ErrorCode, Problem, TaskStatus};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::ops::Context;
use crate::wire::Submission;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The submission (sub- + 32 hex), as submit_output returned it.
    pub submission_id: String,
    /// The env file naming the orchestrator (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.submission_id.guard("submission_id")?;
        self.env_file.guard("env_file")
    }
}

/// The submission, checked.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    #[serde(flatten)]
    pub submission: Submission,
    /// keccak256 of the output (in its format) equals output_hash, recomputed here.
    pub output_hash_verified: bool,
    /// keccak256(JCS(evaluation)) equals attestation_hash, recomputed here; absent before
    /// the evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_verified: Option<bool>,
    pub next_step: String,
}

/// Fetches and checks the submission.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let id = submission_id(&input.submission_id)?;
    let env = read_env(ctx, input.env_file.as_deref())?;
    let Some(reader) = Reader::from_env(env.as_ref(), false) else {
        return Err(Problem::new(
            ErrorCode::EnvIncomplete,
            "reading a submission needs this worker's token or an evaluator key, and the env \
             file has neither",
        )
        .with_fix(
            "onboard this host's worker (write_env, register_worker) to read its own \
             submissions; an evaluator reads any submission with BASIS_EVALUATOR_KEY in the env \
             file (never as an argument)",
        ));
    };
    let (client, _) = client(ctx, env.as_ref())?;
    let submission = client.submission(&id, reader.read_as()).await?;
    Ok(checked(submission))
}

/// `submission` with its hashes recomputed and what to do next.
pub(crate) fn checked(submission: Submission) -> Output {
    let output_hash_verified = submission
        .output_format
        .hash(&submission.output)
        .is_ok_and(|h| h == submission.output_hash);
    let attestation_verified = match (&submission.evaluation, &submission.attestation_hash) {
        (Some(evaluation), Some(stored)) => {
            Some(evaluation.attestation_hash().is_ok_and(|h| h == *stored))
        }
        (Some(_), None) => Some(false),
        _ => None,
    };
    let next_step = next_step(&submission);
    Output {
        submission,
        output_hash_verified,
        attestation_verified,
        next_step,
    }
}

fn next_step(s: &Submission) -> String {
    let paid = s
        .credit
        .as_ref()
        .map(|c| (c.net.describe(&c.asset, c.asset_decimals), c.unpaid));
    match s.status {
        TaskStatus::Submitted => "waiting for the evaluator: check again later".to_owned(),
        TaskStatus::Completed => match paid {
            Some((net, None)) => format!(
                "passed and credited {net} (net, pending off-chain settlement): fetch_tasks for \
                 more work"
            ),
            Some((_, Some(reason))) => format!(
                "passed, but not payable ({}): fetch_tasks for more work",
                serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            None => "passed: fetch_tasks for more work".to_owned(),
        },
        TaskStatus::Rejected => {
            if s.dispute.is_some() {
                "rejected; the dispute was resolved against this output".to_owned()
            } else {
                "rejected: read the evaluation's reasons; if it is wrong, dispute it with \
                 dispute_output (give a reason) before the dispute deadline"
                    .to_owned()
            }
        }
        TaskStatus::Disputed => {
            "disputed: the operator will resolve it; check again later".to_owned()
        }
        other => format!("the task is {other}"),
    }
}
