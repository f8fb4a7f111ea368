//! `verify_output`, the Evaluator Agent's tool. Called with a submission id alone it fetches
//! the submission and its task, recomputes the output hash itself (a mismatch is
//! `OUTPUT_TAMPERED`: refused, nothing to judge) and returns the criteria and the output for
//! judgement. Called again with a verdict (`score`, `passed`, `reasons`) it checks the hash
//! once more and posts the evaluation with the evaluator key, then returns the settled
//! submission with its attestation hash (recomputed here) and credit.
//!
//! The evaluator key comes from the env file's `BASIS_EVALUATOR_KEY` (else the process
//! environment); it is never an argument and never in a result. The submission is read with
//! it; a host without one reads only its own worker's submissions (signed with its device key).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Reader, client, evaluator_key, read_env, submission_id};
use crate::domain::{
    ErrorCode, Evaluation, OutputFormat, OutputHash, Problem, ReceiptHash, ReceiptId, SubmissionId,
    TaskId, TaskStatus,
};
use secrecy::ExposeSecret as _;

use crate::guard::{GuardText, Guarded, HostSecrets, Rule, SecretRefused};
use crate::ops::Context;
use crate::wire::{Credit, Submission, Task, TaskInput};

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The submission to judge (sub- + 32 hex).
    pub submission_id: String,
    /// The verdict's score, 0 to 100. Omit score, passed and reasons to fetch the submission
    /// for review; give score and passed (and reasons) to post the evaluation.
    #[serde(default)]
    pub score: Option<u8>,
    /// Whether the output meets the criteria (the task's pass_threshold applies too).
    #[serde(default)]
    pub passed: Option<bool>,
    /// Why: one short sentence per criterion. A rejection needs at least one.
    #[serde(default)]
    pub reasons: Option<Vec<String>>,
    /// For a task with a metric: the value you confirm the output reached (a decimal string;
    /// it may correct the one the submission reported). The leaderboard ranks the task's
    /// family by confirmed values only.
    #[serde(default)]
    pub metric: Option<String>,
    /// The env file holding BASIS_EVALUATOR_KEY and the orchestrator URL (default:
    /// worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.submission_id.guard("submission_id")?;
        self.reasons.guard_free_text("reasons")?;
        self.metric.guard("metric")?;
        self.env_file.guard("env_file")
    }
}

/// What this call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Fetched for judgement; nothing was posted.
    Review,
    /// The evaluation was posted.
    Evaluated,
}

/// The submission to judge, or as settled by the evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub mode: Mode,
    pub submission_id: SubmissionId,
    pub task_id: TaskId,
    /// The submission's status: `submitted` while it waits for a verdict.
    pub status: TaskStatus,
    /// What the task asked for.
    pub description: String,
    /// What to check, one by one.
    pub criteria: Vec<String>,
    /// The score a pass needs (besides passed).
    pub pass_threshold: u8,
    /// The inference input the worker ran, for inference tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<TaskInput>,
    pub output_format: OutputFormat,
    /// The output to judge.
    pub output: String,
    pub output_hash: OutputHash,
    /// Always true: a mismatch is refused with OUTPUT_TAMPERED.
    pub hash_verified: bool,
    /// An evaluator key is configured on this host (BASIS_EVALUATOR_KEY), so a verdict can be
    /// posted.
    pub evaluator_key_configured: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// keccak256(JCS(evaluation)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_hash: Option<ReceiptHash>,
    /// The attestation hash recomputed here matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_verified: Option<bool>,
    /// The ledger credit, once passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<Credit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_id: Option<ReceiptId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_hash: Option<ReceiptHash>,
    pub next_step: String,
}

/// Fetches the submission for review, or posts the verdict.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let id = submission_id(&input.submission_id)?;
    let verdict = verdict(input)?;
    let env = read_env(ctx, input.env_file.as_deref())?;
    let key = evaluator_key(env.as_ref());
    if let Some(key) = &key {
        // The reasons as free text, knowing this host's evaluator key.
        let known = [key.expose_secret().as_bytes()];
        let host = HostSecrets {
            known: &known,
            ..HostSecrets::NONE
        };
        input.reasons.guard_with("reasons", Rule::FreeText(&host))?;
    }
    let Some(reader) = Reader::from_env(env.as_ref(), true) else {
        return Err(no_evaluator_key(
            "reviewing a submission needs an evaluator key, and this host has none",
        ));
    };
    let (client, _) = client(ctx, env.as_ref())?;
    let submission = client.submission(&id, reader.read_as()).await?;
    check_hash(&submission)?;
    let task = client.task(&submission.task_id).await?;
    let Some(evaluation) = verdict else {
        let next_step = if submission.status != TaskStatus::Submitted {
            format!("already {}: nothing to judge", submission.status)
        } else if key.is_none() {
            "judge the output against each criterion; to post a verdict this host needs \
             BASIS_EVALUATOR_KEY in its env file (the operator gives it; never as an argument)"
                .to_owned()
        } else {
            "judge the output against each criterion, then post your verdict with verify_output \
             with score and passed and one reason per criterion (`basis evaluate SUBMISSION_ID \
             --score 0-100 --passed|--failed --reason TEXT`)"
                .to_owned()
        };
        return Ok(output(
            Mode::Review,
            submission,
            &task,
            key.is_some(),
            next_step,
        ));
    };
    let Some(key) = key else {
        return Err(no_evaluator_key(
            "posting an evaluation needs an evaluator key, and this host has none",
        ));
    };
    let settled = client.evaluate(&id, &evaluation, &key).await?;
    let next_step = match (settled.status, &settled.credit) {
        (TaskStatus::Completed, Some(c)) if c.unpaid.is_none() => {
            format!(
                "passed: {} (net) credited to the worker",
                c.net.describe(&c.asset, c.asset_decimals)
            )
        }
        (TaskStatus::Completed, _) => {
            "passed; the credit pays nothing (see credit.unpaid)".to_owned()
        }
        (status, _) => format!("evaluated: the submission is {status}"),
    };
    Ok(output(Mode::Evaluated, settled, &task, true, next_step))
}

fn no_evaluator_key(message: &str) -> Problem {
    Problem::new(ErrorCode::EvaluatorKeyRequired, message).with_fix(
        "ask the orchestrator's operator for an evaluator key (`basis orchestrator keys create \
         --role evaluator`) and have the user put it in the env file as BASIS_EVALUATOR_KEY; it \
         is never a tool argument",
    )
}

/// The evaluation the input carries, if any; `None` for a review.
fn verdict(input: &Input) -> Result<Option<Evaluation>, Problem> {
    let evaluation = match (input.score, input.passed, &input.reasons) {
        (None, None, None) if input.metric.is_none() => return Ok(None),
        (Some(score), Some(passed), reasons) => Evaluation {
            score,
            passed,
            reasons: reasons.clone().unwrap_or_default(),
            metric: input
                .metric
                .as_deref()
                .map(super::submit::metric_value)
                .transpose()?,
        },
        _ => {
            return Err(Problem::new(
                ErrorCode::InvalidArgument,
                "a verdict needs both score and passed",
            )
            .with_fix(
                "call with submission_id alone to review, or with score, passed and reasons \
                 to post the evaluation",
            ));
        }
    };
    evaluation.validate().map_err(|e| {
        Problem::new(ErrorCode::InvalidArgument, e.to_string())
            .with_fix("score is 0-100; give at least one reason, and always one for a rejection")
    })?;
    Ok(Some(evaluation))
}

/// Refuses a submission whose output does not hash to its recorded output_hash.
fn check_hash(s: &Submission) -> Result<(), Problem> {
    let recomputed = s.output_format.hash(&s.output).ok();
    if recomputed.as_ref() == Some(&s.output_hash) {
        return Ok(());
    }
    Err(Problem::new(
        ErrorCode::OutputTampered,
        format!(
            "the output of {} as served does not hash to its recorded output_hash ({}); it \
             was altered after submission",
            s.submission_id, s.output_hash
        ),
    )
    .with_fix(
        "do not judge or evaluate it; report the submission id to the orchestrator's operator",
    ))
}

fn output(mode: Mode, s: Submission, task: &Task, key: bool, next_step: String) -> Output {
    let attestation_verified = match (&s.evaluation, &s.attestation_hash) {
        (Some(e), Some(stored)) => Some(e.attestation_hash().is_ok_and(|h| h == *stored)),
        _ => None,
    };
    Output {
        mode,
        submission_id: s.submission_id,
        task_id: s.task_id,
        status: s.status,
        description: task.description.clone(),
        criteria: task.criteria.clone(),
        pass_threshold: task.pass_threshold,
        input: task.input.clone(),
        output_format: s.output_format,
        output: s.output,
        output_hash: s.output_hash,
        hash_verified: true,
        evaluator_key_configured: key,
        evaluation: s.evaluation,
        attestation_hash: s.attestation_hash,
        attestation_verified,
        credit: s.credit,
        receipt_id: s.receipt_id,
        receipt_hash: s.receipt_hash,
        next_step,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_needs_score_and_passed_and_a_reason_to_reject() {
        let review = Input::default();
        assert_eq!(verdict(&review).unwrap(), None);
        let partial = Input {
            score: Some(90),
            ..Input::default()
        };
        assert_eq!(
            verdict(&partial).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        let reject = Input {
            score: Some(10),
            passed: Some(false),
            ..Input::default()
        };
        assert_eq!(
            verdict(&reject).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
        let pass = Input {
            score: Some(90),
            passed: Some(true),
            reasons: Some(vec!["fine".into()]),
            ..Input::default()
        };
        assert!(verdict(&pass).unwrap().is_some());
        let too_high = Input {
            score: Some(101),
            ..pass
        };
        assert_eq!(
            verdict(&too_high).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
}
