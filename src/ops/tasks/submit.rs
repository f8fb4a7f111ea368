//! `submit_output`: submits this worker's output for a claimed task. The output (given as
//! text, or read from a file on this host) passes the secrets guard, is checked against the
//! task's output format, and its keccak256 is computed here; the orchestrator recomputes it.
//! Submitting the same output again returns the first submission.

use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Worker, task_id};
use crate::domain::{
    ErrorCode, OutputFormat, OutputHash, Problem, SubmissionId, TaskId, TaskStatus, Usage,
};
use crate::guard::{GuardText, Guarded, SecretRefused};
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
    /// A file on this host holding the output instead (for bytes, its raw bytes, sent as
    /// base64; otherwise UTF-8 text).
    #[serde(default)]
    pub output_file: Option<String>,
    /// Token counts, as execute_task reported them.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// How long producing the output took, milliseconds (execute_task's timings.total_ms).
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// The env file naming this worker (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.task_id.guard("task_id")?;
        self.output.guard("output")?;
        self.output_file.guard("output_file")?;
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
    let output = match (&input.output, &input.output_file) {
        (Some(text), None) => text.clone(),
        (None, Some(path)) => {
            let text = read_output(Path::new(path), task.output_format)?;
            text.guard("output_file contents")?;
            text
        }
        _ => {
            return Err(Problem::new(
                ErrorCode::InvalidArgument,
                "give exactly one of output and output_file",
            )
            .with_fix("pass the output as text in output, or a path to it in output_file"));
        }
    };
    let raw = task.output_format.raw_bytes(&output).map_err(|e| {
        Problem::new(ErrorCode::OutputFormatInvalid, e.to_string()).with_fix(format!(
            "the task wants output_format {}: correct the output, then submit again",
            task.output_format
        ))
    })?;
    let output_hash = OutputHash::of(&raw);
    let output_bytes = raw.len() as u64;
    let request = SubmitRequest {
        worker_id: worker.id.clone(),
        output,
        output_hash,
        usage: input.usage,
        duration_ms: input.duration_ms,
    };
    let outcome = worker.client.submit(&id, &request, &worker.token).await?;
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

/// The output stored at `path`, as the text to submit in `format`.
fn read_output(path: &Path, format: OutputFormat) -> Result<String, Problem> {
    let io = |e: &dyn std::fmt::Display| {
        Problem::new(
            ErrorCode::IoError,
            format!("cannot read {}: {e}", path.display()),
        )
        .with_fix("give output_file as the path of a readable file on this host")
    };
    let file = std::fs::File::open(path).map_err(|e| io(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_OUTPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io(&e))?;
    if bytes.len() as u64 > MAX_OUTPUT_BYTES {
        return Err(Problem::new(
            ErrorCode::PayloadTooLarge,
            format!("{} is larger than {MAX_OUTPUT_BYTES} bytes", path.display()),
        )
        .with_fix("submit a smaller output (or its IPFS CID for an ipfs_cid task)"));
    }
    if format == OutputFormat::Bytes {
        return Ok(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    String::from_utf8(bytes).map_err(|_| {
        Problem::new(
            ErrorCode::OutputFormatInvalid,
            format!("{} is not UTF-8 text", path.display()),
        )
        .with_fix(format!(
            "a {format} output is text; only a bytes task takes a binary file"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_as_text_or_as_base64_for_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, [0xffu8, 0x00, 0x10]).unwrap();
        assert_eq!(read_output(&path, OutputFormat::Bytes).unwrap(), "/wAQ");
        assert_eq!(
            read_output(&path, OutputFormat::Text).unwrap_err().code,
            ErrorCode::OutputFormatInvalid
        );
        std::fs::write(&path, "hello").unwrap();
        assert_eq!(read_output(&path, OutputFormat::Text).unwrap(), "hello");
        let missing = read_output(&dir.path().join("none"), OutputFormat::Text).unwrap_err();
        assert_eq!(missing.code, ErrorCode::IoError);
    }
}
