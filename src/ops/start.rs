//! `start_worker`: start the supervisor (`basis supervise`, detached), which starts the worker
//! and keeps it alive. Refuses a second start; checks the env file is complete first; cleans
//! up after a supervisor that was killed. Returns once the supervisor answers on its socket;
//! whether the worker is online is `verify_online`'s question.
//!
//! Cancellation: the future may be dropped at any point; a supervisor already spawned keeps
//! running (it is detached) and `worker_status` shows it.

use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Context;
use super::status::read_worker_status;
use crate::config::{
    Dirs, KEY_DEVICE_KEY, KEY_MODELS, KEY_ORCHESTRATOR_URL, KEY_RUNTIME, KEY_WALLET, KEY_WORKER_ID,
    WorkerEnv,
};
use crate::domain::{ErrorCode, Problem};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::supervisor::control::{self, Request, Response};
use crate::supervisor::launch::{self, supervisor_log};
use crate::supervisor::logs::tail;
use crate::supervisor::presence::{Presence, clean_stale, probe};
use crate::supervisor::redact::Redactor;
use crate::supervisor::{SupervisorError, SupervisorState, SupervisorStatus, pidfile};
use crate::wire::WorkerStatus;

/// How long to wait for a new supervisor to answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an orphaned worker of a killed supervisor may drain before SIGKILL.
const ORPHAN_GRACE: Duration = Duration::from_secs(5);
/// Steps reported through the progress callback.
const STEPS: u32 = 4;

/// Which env file the worker runs with.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The worker env file (default: worker.env in the config directory), written by
    /// `write_env` and registered by `register_worker`.
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.env_file.guard("env_file")
    }
}

/// The started supervisor. Never contains a key or token.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// The supervisor's process id.
    pub pid: u32,
    /// running (the worker process is up), backoff (it exited at once and will be
    /// restarted: see `worker_status`), `crash_loop` (it keeps exiting).
    pub state: SupervisorState,
    /// The worker's process id, when it runs.
    pub worker_pid: Option<u32>,
    /// The env file the worker runs with.
    pub env_path: String,
    /// The worker log (redacted, rotated); `worker_status` shows its last lines.
    pub log_path: String,
    /// The supervisor's control socket (0600).
    pub socket_path: String,
    /// Unix seconds when the supervisor started.
    pub started_at: u64,
    /// worker-status.json once the new worker has written it (usually not yet).
    pub worker_status: Option<WorkerStatus>,
    /// What was cleaned up first (files of a supervisor that was killed), if anything.
    pub cleaned_up: Option<String>,
    /// What to do next.
    pub next_step: String,
}

/// One step of a start, for progress notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Steps done so far (1-based for the step now running).
    pub step: u32,
    /// Steps in all.
    pub total: u32,
    pub message: String,
}

/// [`run_with_progress`] without progress reports.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    run_with_progress(ctx, input, &|_| {}).await
}

/// Starts the supervisor, calling `progress` as it goes.
pub async fn run_with_progress(
    ctx: &Context,
    input: &Input,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Output, Problem> {
    input.check_secrets()?;
    let report = |step: u32, message: String| {
        progress(Progress {
            step,
            total: STEPS,
            message,
        });
    };
    let dirs = ctx.dirs();
    report(1, "checking the env file".to_owned());
    let env_path = ctx
        .allowed
        .check(&ctx.env_path(input.env_file.as_deref()))?;
    check_env(&env_path)?;

    let cleaned_up = match probe(dirs) {
        Presence::Running(info) => return Err(already_running(info.pid)),
        Presence::Absent => None,
        Presence::Stale { info, reason } => {
            report(2, format!("cleaning up: {reason}"));
            let done = clean_stale(dirs, info.as_ref(), ORPHAN_GRACE).await;
            Some(match done.killed_worker {
                Some(pid) => format!("{reason}; ended its orphaned worker (pid {pid})"),
                None => reason,
            })
        }
    };

    report(2, "starting the supervisor".to_owned());
    let redactor = Redactor::from_env_file(&env_path);
    let mut child = launch::spawn_detached(&env_path, dirs)?;
    let child_pid = child.id();
    report(3, "waiting for the supervisor to answer".to_owned());
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Ok(Some(exit)) = child.try_wait() {
            return Err(start_failed(dirs, &redactor, exit.code()));
        }
        let reply = control::request(
            &dirs.supervisor_sock(),
            &Request::Status,
            Duration::from_millis(500),
        )
        .await;
        if let Ok(Response::Status(status)) = reply
            && Some(status.pid) == child_pid
            && status.state != SupervisorState::Starting
        {
            break status;
        }
        if Instant::now() >= deadline {
            return Err(Problem::new(
                ErrorCode::SupervisorStartFailed,
                format!(
                    "the supervisor did not answer within {} s{}",
                    START_TIMEOUT.as_secs(),
                    log_excerpt(dirs, &redactor)
                ),
            )
            .with_fix("check worker_status (`basis status`); stop_worker ends a hung supervisor"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tracing::info!(
        pid = status.pid,
        state = %status.state,
        worker_pid = status.worker_pid,
        "the supervisor started"
    );
    report(
        4,
        format!(
            "supervisor up (pid {}), worker {}",
            status.pid, status.state
        ),
    );
    Ok(output(ctx, status, cleaned_up))
}

fn output(ctx: &Context, status: SupervisorStatus, cleaned_up: Option<String>) -> Output {
    let dirs = ctx.dirs();
    let next_step = match status.state {
        SupervisorState::Running => {
            "wait for the worker to connect, then check it with verify_online (`basis verify`)"
        }
        _ => "the worker exited at once: read worker_status (`basis status`) for the reason",
    };
    Output {
        pid: status.pid,
        state: status.state,
        worker_pid: status.worker_pid,
        env_path: status.env_path,
        log_path: status.log_path,
        socket_path: dirs.supervisor_sock().display().to_string(),
        started_at: status.started_at,
        worker_status: read_worker_status(dirs, Some(status.started_at)),
        cleaned_up,
        next_step: next_step.to_owned(),
    }
}

/// The env file must hold everything the worker needs (`service install` checks it too).
pub(crate) fn check_env(path: &Path) -> Result<(), Problem> {
    let env = WorkerEnv::read(path)?;
    let missing: Vec<&str> = [
        (KEY_WORKER_ID, env.worker_id.is_none()),
        (KEY_WALLET, env.wallet.is_none()),
        (KEY_RUNTIME, env.runtime.is_none()),
        (KEY_MODELS, env.models.is_empty()),
        (KEY_ORCHESTRATOR_URL, env.orchestrator_url.is_none()),
        // A legacy env file's token still starts the worker (until it registers its key).
        (
            KEY_DEVICE_KEY,
            env.device_key.is_none() && env.token.is_none(),
        ),
    ]
    .into_iter()
    .filter_map(|(key, missing)| missing.then_some(key))
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Problem::new(
        ErrorCode::EnvIncomplete,
        format!("{} lacks {}", path.display(), missing.join(", ")),
    )
    .with_fix(
        "write it with write_env (`basis write-env`, public values only; it generates the device key), then register_worker (`basis register`)",
    ))
}

fn already_running(pid: u32) -> Problem {
    Problem::from(SupervisorError::AlreadyRunning {
        lock: std::path::PathBuf::from("supervisor.lock"),
    })
    .with_message(format!(
        "a supervisor is already running (pid {pid}); only one worker runs per state directory"
    ))
}

/// The supervisor exited before answering: another one won a race, or it failed.
fn start_failed(dirs: &Dirs, redactor: &Redactor, code: Option<i32>) -> Problem {
    if code == Some(i32::from(ErrorCode::WorkerAlreadyRunning.exit_code())) {
        let pid = pidfile::read(&dirs.supervisor_json())
            .ok()
            .flatten()
            .map_or(0, |i| i.pid);
        return already_running(pid);
    }
    let code = code.map_or_else(|| "a signal".to_owned(), |c| format!("status {c}"));
    Problem::new(
        ErrorCode::SupervisorStartFailed,
        format!(
            "the supervisor exited with {code}{}",
            log_excerpt(dirs, redactor)
        ),
    )
    .with_fix("read logs/supervisor.log in the state directory, fix the cause, and start again")
}

/// The supervisor log's last lines, redacted, as a message suffix.
fn log_excerpt(dirs: &Dirs, redactor: &Redactor) -> String {
    let lines = tail(&supervisor_log(dirs), 2, 5).unwrap_or_default();
    if lines.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = lines
        .iter()
        .map(|l| redactor.redact(l).into_owned())
        .collect();
    format!("; its log ends with: {}", lines.join(" | "))
}

/// A `Problem` with its message replaced (keeping code and fix).
trait WithMessage {
    fn with_message(self, message: String) -> Self;
}

impl WithMessage for Problem {
    fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{logs, status, stop};

    fn assert_send<T: Send>(_: &T) {}

    /// The MCP front runs these on a multi-threaded runtime: their futures must be `Send`.
    #[test]
    fn the_supervisor_operations_are_send() {
        let _ = |ctx: &Context, progress: &(dyn Fn(Progress) + Send + Sync)| {
            assert_send(&run_with_progress(ctx, &Input::default(), progress));
            assert_send(&stop::run(ctx, &stop::Input::default()));
            assert_send(&status::run(ctx, &status::Input::default()));
            assert_send(&logs::run(ctx, &logs::Input::default()));
        };
    }
}
