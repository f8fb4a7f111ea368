//! `submit_output`: submits this worker's output for a claimed task. The output is given as
//! text, or read from a file in basis's work directory (`output_file`, confined by
//! `output_file::OutputFiles`). Its raw bytes (the file as read, a bytes output decoded) pass
//! `guard::check_bytes` before any encoding, with this host's device key (in every encoding), a legacy token and evaluator key
//! refused wherever they appear; then the format is checked and the keccak256 computed here
//! (the orchestrator recomputes both). Submitting the same output again returns the first
//! submission.

use std::borrow::Cow;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::output_file::OutputFiles;
use super::{Worker, host_secrets, task_id};
use crate::domain::{
    ErrorCode, MetricValue, OutputFormat, OutputHash, Problem, SubmissionId, TaskId, TaskStatus,
    Usage,
};
use crate::guard::{GuardText, Guarded, HostSecrets, SecretRefused, check_output};
use crate::ops::Context;
use crate::wire::SubmitRequest;

/// The largest output submitted from here (the orchestrator may accept less: see
/// `max_output_bytes` in its onboarding status).
pub const MAX_OUTPUT_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The claimed task (task- + 32 hex).
    pub task_id: String,
    /// The output in the task's output_format: text, a JSON document (json), standard base64
    /// (bytes) or an IPFS CID (ipfs_cid). Exactly one of output and output_file.
    #[serde(default)]
    pub output: Option<String>,
    /// A file holding the output instead: inside basis's work directory (<state dir>/work,
    /// e.g. ~/.local/state/basis/work; a bare file name is taken there) or an allowed_env_dirs
    /// directory of basis.toml. For bytes, its raw bytes (sent as base64); otherwise UTF-8
    /// text. Credentials, key and env files are never read (OUTPUT_FILE_NOT_ALLOWED).
    #[serde(default)]
    pub output_file: Option<String>,
    /// Token counts, as execute_task reported them.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// How long producing the output took, milliseconds (execute_task's timings.total_ms).
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// For a task with a metric (get_task shows it): the value this output reached, as a
    /// decimal string such as "0.2315". The evaluator confirms it.
    #[serde(default)]
    pub metric: Option<String>,
    /// The env file naming this worker (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.task_id.guard("task_id")?;
        // Labels only here; `guard_raw` then checks the raw bytes against this host's secrets.
        self.output.guard_free_text("output")?;
        self.output_file.guard("output_file")?;
        self.metric.guard("metric")?;
        self.env_file.guard("env_file")
    }
}

/// The submission as the orchestrator recorded it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub submission_id: SubmissionId,
    pub task_id: TaskId,
    /// keccak256 of the output's raw bytes, computed here and confirmed by the orchestrator.
    pub output_hash: OutputHash,
    /// Size of the raw bytes hashed.
    pub output_bytes: u64,
    pub output_format: OutputFormat,
    /// `submitted` until an evaluator decides.
    pub status: TaskStatus,
    /// Unix seconds: after this the orchestrator's evaluator-timeout policy applies.
    pub evaluation_deadline: u64,
    /// False when this exact output had been submitted already (the same submission_id).
    pub created: bool,
    pub next_step: String,
}

/// Submits the output.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let id = task_id(&input.task_id)?;
    let worker = Worker::load(ctx, input.env_file.as_deref())?;
    let task = worker.client.task(&id).await?;
    let (output, raw) = match (&input.output, &input.output_file) {
        (Some(text), None) => {
            let raw = task.output_format.raw_bytes(text).map_err(|e| {
                Problem::new(ErrorCode::OutputFormatInvalid, e.to_string()).with_fix(format!(
                    "the task wants output_format {}: correct the output, then submit again",
                    task.output_format
                ))
            })?;
            let raw = guard_raw(&worker, "output", raw.into_owned()).await?;
            (text.clone(), Cow::Owned(raw))
        }
        (None, Some(path)) => {
            let files = OutputFiles::new(ctx, input.env_file.as_deref())?;
            let raw = files.read(path, MAX_OUTPUT_BYTES)?;
            // Before any encoding: what the file holds, not its base64.
            let raw = guard_raw(&worker, "output_file contents", raw).await?;
            let text = encode(path, raw, task.output_format)?;
            let raw =
                task.output_format
                    .raw_bytes(&text)
                    .map_err(|e| {
                        Problem::new(ErrorCode::OutputFormatInvalid, format!("{path}: {e}"))
                            .with_fix(format!(
                                "the task wants output_format {}: correct the file, then submit \
                             again",
                                task.output_format
                            ))
                    })?
                    .into_owned();
            (text, Cow::Owned(raw))
        }
        _ => {
            return Err(Problem::new(
                ErrorCode::InvalidArgument,
                "give exactly one of output and output_file",
            )
            .with_fix("pass the output as text in output, or a path to it in output_file"));
        }
    };
    let output_hash = OutputHash::of(&raw);
    let output_bytes = raw.len() as u64;
    let request = SubmitRequest {
        worker_id: worker.id.clone(),
        output,
        output_hash,
        usage: input.usage,
        duration_ms: input.duration_ms,
        metric: input.metric.as_deref().map(metric_value).transpose()?,
    };
    let outcome = worker.client.submit(&id, &request, worker.auth()).await?;
    let s = outcome.submission;
    let next_step = if outcome.created {
        "submitted: check it with get_submission (status, evaluation, credit) after the \
         evaluator has judged it"
    } else {
        "this output was already submitted (same submission_id): check it with get_submission"
    };
    Ok(Output {
        submission_id: s.submission_id,
        task_id: s.task_id,
        output_hash: s.output_hash,
        output_bytes,
        output_format: s.output_format,
        status: s.status,
        evaluation_deadline: s.evaluation_deadline,
        created: outcome.created,
        next_step: next_step.to_owned(),
    })
}

/// The guard over an output's raw bytes as free text (a transaction hash passes), refusing
/// this host's device keys (in every encoding), legacy token and evaluator key (held in
/// memory) wherever they appear, and the
/// private key of the worker's reward wallet; off the async threads (an 8 MiB output takes a
/// moment). Returns the bytes.
async fn guard_raw(worker: &Worker, field: &'static str, raw: Vec<u8>) -> Result<Vec<u8>, Problem> {
    let secrets = host_secrets(&worker.env);
    let wallets: Vec<_> = worker.env.wallet.into_iter().collect();
    let checked = tokio::task::spawn_blocking(move || {
        let known: Vec<&[u8]> = secrets.iter().map(|s| s.as_slice()).collect();
        let host = HostSecrets {
            known: &known,
            wallets: &wallets,
            token_hashes: &[],
        };
        check_output(field, &raw, &host).map(|()| raw)
    })
    .await
    .map_err(|e| {
        Problem::new(
            ErrorCode::Internal,
            format!("the secrets guard did not finish: {e}"),
        )
    })?;
    Ok(checked?)
}

/// A file's bytes as the text to submit in `format`: base64 for bytes, else UTF-8 text.
fn encode(path: &str, bytes: Vec<u8>, format: OutputFormat) -> Result<String, Problem> {
    if format == OutputFormat::Bytes {
        return Ok(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    String::from_utf8(bytes).map_err(|_| {
        Problem::new(
            ErrorCode::OutputFormatInvalid,
            format!("output_file {path} is not UTF-8 text"),
        )
        .with_fix(format!(
            "a {format} output is text; only a bytes task takes a binary file"
        ))
    })
}

/// A metric value as the task market takes it, or an actionable error.
pub(crate) fn metric_value(text: &str) -> Result<MetricValue, Problem> {
    MetricValue::parse(text.trim()).map_err(|e| {
        Problem::new(ErrorCode::InvalidArgument, format!("metric: {e}"))
            .with_fix("give the metric as a decimal string, e.g. \"0.2315\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_encoded_as_text_or_as_base64_for_bytes() {
        let binary = vec![0xffu8, 0x00, 0x10];
        assert_eq!(
            encode("out", binary.clone(), OutputFormat::Bytes).unwrap(),
            "/wAQ"
        );
        assert_eq!(
            encode("out", binary, OutputFormat::Text).unwrap_err().code,
            ErrorCode::OutputFormatInvalid
        );
        assert_eq!(
            encode("out", b"hello".to_vec(), OutputFormat::Text).unwrap(),
            "hello"
        );
    }
}
