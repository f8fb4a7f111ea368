//! `execute_task`: runs a claimed task's inference `input` on this host's runtime, with the
//! same runtime code the worker daemon uses (`runtime::build` from the env file's
//! `WorkerConfig`, then `Backend::chat` on the OpenAI request built from the input). Checks
//! first that this worker holds an unexpired claim, and gives up before the claim expires
//! (keeping a margin to submit). Returns the output, its hash in the task's output format,
//! usage and timings; it does not submit.
//!
//! Cancellation: dropping the future cancels the runtime call (its connection is closed).

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Worker, not_held, now_ms, task_id};
use crate::domain::{
    ErrorCode, OutputFormat, OutputHash, Problem, Runtime, TaskId, TaskStatus, Usage,
};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::ops::Context;
use crate::runtime::{self, RuntimeError};
use crate::wire::{JobTimings, Task, TaskInput};
use crate::worker::{Options, WorkerConfig};

/// The longest margin kept between the end of a run and the claim's expiry, for submitting.
pub const SUBMIT_MARGIN: Duration = Duration::from_secs(2);
/// How often progress is reported while the runtime streams.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Pieces buffered between the runtime and the counter.
const PIECE_QUEUE: usize = 64;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The claimed task to run (task- + 32 hex); it must have an inference input.
    pub task_id: String,
    /// The env file naming this worker and its runtime (default: worker.env in the config
    /// directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.task_id.guard("task_id")?;
        self.env_file.guard("env_file")
    }
}

/// What the runtime produced. Not yet submitted.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub task_id: TaskId,
    /// The model the task's input asked for.
    pub model: String,
    /// The runtime that ran it (this host's).
    pub runtime: Runtime,
    /// The whole answer; pass it unchanged to submit_output.
    pub output: String,
    pub output_format: OutputFormat,
    /// keccak256 of the output's raw bytes in the task's format: what submit_output will
    /// send. Absent when the output does not fit the format (see format_error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_hash: Option<OutputHash>,
    /// Why the output does not fit the task's output_format, if it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_error: Option<String>,
    /// Token counts; pass them to submit_output as usage.
    pub usage: Usage,
    /// first_token_ms and total_ms, measured here; total_ms is submit_output's duration_ms.
    pub timings: JobTimings,
    /// True when the echo simulator produced it (simulated work pays nothing).
    pub simulated: bool,
    /// Unix seconds: submit before this.
    pub claim_expiry: u64,
    pub next_step: String,
}

/// Where a run stands, for progress notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Pieces of the answer received so far.
    pub pieces: u32,
    /// Milliseconds since the runtime was asked.
    pub elapsed_ms: u64,
    /// Milliseconds the run may take before it is abandoned (the claim's lease, less the
    /// margin to submit).
    pub budget_ms: u64,
}

/// [`run_with_progress`] without progress reports.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    run_with_progress(ctx, input, &|_| {}).await
}

/// Runs the task's input on this host's runtime, calling `progress` as pieces arrive.
pub async fn run_with_progress(
    ctx: &Context,
    input: &Input,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Output, Problem> {
    input.check_secrets()?;
    let id = task_id(&input.task_id)?;
    let worker = Worker::load(ctx, input.env_file.as_deref())?;
    let task = worker.client.task(&id).await?;
    let Some(task_input) = task.input.clone() else {
        return Err(no_input(&task));
    };
    if task.status != TaskStatus::Claimed || task.claimed_by.as_ref() != Some(&worker.id) {
        return Err(not_held(&task, &worker.id));
    }
    let claim_expiry = task.claim_expiry.unwrap_or(0);
    let budget = time_left(claim_expiry, task.claim_ttl_s, now_ms())?;
    let options = Options::new(ctx.dirs().worker_status_json());
    let config = WorkerConfig::from_env(&worker.env, options, |k| std::env::var(k).ok())?;
    let backend = runtime::build(&config.runtime_spec).map_err(|e| runtime_problem(&e))?;
    let request = request_body(&task_input);
    let started = Instant::now();
    let run = chat_within(
        backend.as_ref(),
        &task_input.model,
        &request,
        budget,
        progress,
    );
    let Some((result, first)) = run.await else {
        return Err(Problem::new(
            ErrorCode::JobTimeout,
            format!(
                "the runtime did not finish within {} ms, the time left on the claim (less a \
                 margin to submit); the run was stopped",
                budget.as_millis()
            ),
        )
        .with_fix(
            "give the task back with release_task, then choose one with a longer claim time or \
             fewer tokens to generate (or make the runtime faster)",
        ));
    };
    let completion = result.map_err(|e| runtime_problem(&e))?;
    let total = started.elapsed();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let (output_hash, format_error) = match task.output_format.hash(&completion.output) {
        Ok(hash) => (Some(hash), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let next_step = match (&format_error, completion.simulated) {
        (Some(_), _) => format!(
            "the output is not valid {}: correct it, then submit it with submit_output",
            task.output_format
        ),
        (None, true) => "submit this output with submit_output, with its token usage and \
                         duration_ms, before the claim expires (echo work is simulated and pays \
                         nothing)"
            .to_owned(),
        (None, false) => "submit this output with submit_output, with its token usage and \
                          duration_ms, before the claim expires"
            .to_owned(),
    };
    Ok(Output {
        task_id: task.task_id,
        model: task_input.model,
        runtime: backend.runtime(),
        output: completion.output,
        output_format: task.output_format,
        output_hash,
        format_error,
        usage: completion.usage,
        timings: JobTimings {
            first_token_ms: ms(first.unwrap_or(total)),
            total_ms: ms(total),
        },
        simulated: completion.simulated,
        claim_expiry,
        next_step,
    })
}

/// Runs one chat on `backend`, reporting progress; `None` when `budget` ran out first (the
/// runtime call is then cancelled). Returns the result and when the first piece arrived.
async fn chat_within(
    backend: &dyn runtime::Backend,
    model: &str,
    request: &Value,
    budget: Duration,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Option<(Result<runtime::Completion, RuntimeError>, Option<Duration>)> {
    let cancel = CancellationToken::new();
    let _cancel_on_drop = cancel.clone().drop_guard();
    let (pieces_tx, mut pieces) = mpsc::channel::<String>(PIECE_QUEUE);
    let started = Instant::now();
    let budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX);
    let report = |count: u32| {
        progress(Progress {
            pieces: count,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            budget_ms,
        });
    };
    let chat = backend.chat(model, request, pieces_tx, cancel.clone());
    let count = async {
        let (mut first, mut count, mut last) = (None, 0u32, None::<Instant>);
        while pieces.recv().await.is_some() {
            first.get_or_insert_with(|| started.elapsed());
            count = count.saturating_add(1);
            if last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                report(count);
                last = Some(Instant::now());
            }
        }
        report(count);
        first
    };
    let both = async { tokio::join!(chat, count) };
    if let Ok(done) = tokio::time::timeout(budget, both).await {
        Some(done)
    } else {
        cancel.cancel();
        None
    }
}

/// How long a run may take: until the claim's expiry, less a margin to submit (at most
/// [`SUBMIT_MARGIN`], at most a fifth of the lease). Refuses when nothing is left.
fn time_left(claim_expiry_s: u64, claim_ttl_s: u64, now_ms: u64) -> Result<Duration, Problem> {
    let margin_ms = u64::try_from(SUBMIT_MARGIN.as_millis())
        .unwrap_or(u64::MAX)
        .min(claim_ttl_s.saturating_mul(1000) / 5);
    let expiry_ms = claim_expiry_s.saturating_mul(1000);
    let end = expiry_ms.saturating_sub(margin_ms);
    if now_ms >= end {
        let message = if now_ms >= expiry_ms {
            "the claim on this task has expired".to_owned()
        } else {
            format!(
                "only {} ms are left on the claim: too little to run the task and submit it",
                expiry_ms - now_ms
            )
        };
        return Err(Problem::new(ErrorCode::ClaimExpired, message).with_fix(
            "claim the task again with claim_task if it is open, or fetch_tasks for another",
        ));
    }
    Ok(Duration::from_millis(end - now_ms))
}

/// The OpenAI chat request for the task's input (streamed, like a gateway job).
fn request_body(input: &TaskInput) -> Value {
    let messages: Vec<Value> = input
        .messages
        .iter()
        .map(|m| json!({"role": m.role, "content": m.content}))
        .collect();
    let mut body = json!({"model": input.model, "messages": messages, "stream": true});
    if let (Some(max), Some(object)) = (input.max_tokens, body.as_object_mut()) {
        object.insert("max_tokens".into(), Value::from(max));
    }
    body
}

fn no_input(task: &Task) -> Problem {
    Problem::new(
        ErrorCode::TaskHasNoInput,
        format!(
            "task {} has no inference input for this host's runtime to run",
            task.task_id
        ),
    )
    .with_fix(format!(
        "produce the output yourself: read the task's description and criteria, write output \
         in its output format ({}), then submit it with submit_output before the claim expires",
        task.output_format
    ))
}

/// The `Problem` for a runtime failure (the worker's `job_error` codes, as tool codes).
fn runtime_problem(e: &RuntimeError) -> Problem {
    let (code, fix) = match e {
        RuntimeError::ModelNotFound { .. } => (
            ErrorCode::ModelNotFound,
            "this host's runtime does not serve the task's model: serve or pull it, or \
             release_task and choose a task this worker matches (fetch_tasks only_matching)",
        ),
        RuntimeError::Down { .. } => (
            ErrorCode::RuntimeDown,
            "start the runtime at the URL in the env file (OLLAMA_URL or VLLM_URL; \
             check_hardware shows what runs), then execute_task again before the claim expires",
        ),
        RuntimeError::Timeout { .. } => (
            ErrorCode::JobTimeout,
            "the runtime stalled: check it (check_hardware), then execute_task again",
        ),
        RuntimeError::BadResponse { .. } => (
            ErrorCode::RuntimeBadResponse,
            "the runtime answered something that is not a completion: check its version and \
             logs, then execute_task again",
        ),
        RuntimeError::BadRequest { .. } => (
            ErrorCode::InvalidArgument,
            "the task's input is not a chat request this runtime accepts: produce the output \
             yourself and submit_output, or release_task",
        ),
        RuntimeError::Cancelled => (
            ErrorCode::JobCancelled,
            "the run was cancelled; execute_task again if the claim has time left",
        ),
    };
    Problem::new(code, e.to_string()).with_fix(fix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Echo;
    use crate::wire::InputMessage;

    #[test]
    fn the_time_left_keeps_a_margin_and_refuses_an_expired_claim() {
        let now = 1_000_000_000;
        // 60 s lease, 30 s left: 28 s to run (2 s margin).
        let left = time_left(1_000_030, 60, now).unwrap();
        assert_eq!(left, Duration::from_secs(28));
        // A 1 s lease keeps a fifth of it.
        let left = time_left(1_000_001, 1, now).unwrap();
        assert_eq!(left, Duration::from_millis(800));
        for (expiry, ttl) in [(1_000_000, 60), (999_990, 60), (1_000_001, 60)] {
            let p = time_left(expiry, ttl, now).unwrap_err();
            assert_eq!(p.code, ErrorCode::ClaimExpired, "{expiry}");
        }
    }

    #[test]
    fn the_request_carries_the_input() {
        let input = TaskInput {
            model: "m".into(),
            messages: vec![InputMessage {
                role: "user".into(),
                content: "hi there".into(),
            }],
            max_tokens: Some(7),
        };
        let body = request_body(&input);
        assert_eq!(body["messages"][0]["content"], "hi there");
        assert_eq!(body["max_tokens"], 7);
        assert_eq!(body["stream"], true);
        assert!(
            request_body(&TaskInput {
                max_tokens: None,
                ..input
            })
            .get("max_tokens")
            .is_none()
        );
    }

    #[tokio::test]
    async fn a_run_reports_progress_and_stops_at_its_budget() {
        let input = TaskInput {
            model: "m".into(),
            messages: vec![InputMessage {
                role: "user".into(),
                content: "one two three four".into(),
            }],
            max_tokens: None,
        };
        let request = request_body(&input);
        let seen = std::sync::Mutex::new(Vec::new());
        let record = |p: Progress| {
            seen.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(p);
        };
        let fast = Echo::new(vec!["m".into()], Duration::ZERO);
        let (result, first) = chat_within(&fast, "m", &request, Duration::from_secs(5), &record)
            .await
            .unwrap();
        assert_eq!(result.unwrap().output, "echo: one two three four");
        assert!(first.is_some());
        let last = *seen.lock().unwrap().last().unwrap();
        assert_eq!(last.pieces, 5);
        let slow = Echo::new(vec!["m".into()], Duration::from_millis(200));
        let stopped = chat_within(&slow, "m", &request, Duration::from_millis(300), &record).await;
        assert!(stopped.is_none(), "the budget did not stop the run");
    }

    #[test]
    fn runtime_failures_keep_their_codes() {
        let p = runtime_problem(&RuntimeError::ModelNotFound {
            runtime: Runtime::Echo,
            model: "x".into(),
        });
        assert_eq!(p.code, ErrorCode::ModelNotFound);
        assert_eq!(
            runtime_problem(&RuntimeError::Cancelled).code,
            ErrorCode::JobCancelled
        );
    }
}
