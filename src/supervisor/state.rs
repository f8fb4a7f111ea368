//! What a supervisor reports: [`SupervisorState`], [`ExitInfo`] for each worker exit, and
//! [`SupervisorStatus`] (the `status` reply), plus [`Shared`], the live copy the control
//! socket answers from while the restart loop updates it.

use std::process::ExitStatus;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::clock;

/// Where the supervisor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupervisorState {
    /// Starting the worker for the first time.
    Starting,
    /// The worker process is running.
    Running,
    /// The worker exited; it is restarted after `next_restart_in_ms`.
    Backoff,
    /// The worker exited too often (5 times within 10 minutes): no more restarts. Read
    /// `last_exits` and the log, fix the cause, then stop and start again.
    CrashLoop,
    /// A stop was asked for: the worker is draining.
    Stopping,
    /// No supervisor runs (or it is exiting).
    Stopped,
    /// Reported by `worker_status` only: the supervisor process is alive but its control
    /// socket did not answer.
    Unresponsive,
    /// Reported by `worker_status` only: the supervisor is gone (killed or crashed) but the
    /// worker process it started still runs, unsupervised. stop_worker ends it.
    Orphaned,
}

impl SupervisorState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Backoff => "backoff",
            Self::CrashLoop => "crash_loop",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Unresponsive => "unresponsive",
            Self::Orphaned => "orphaned",
        }
    }

    /// What the worker process is doing, in words: "running", "waiting to be restarted".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Backoff => "waiting to be restarted after it exited",
            Self::CrashLoop => "no longer restarted: it kept exiting",
            Self::Stopping => "stopping",
            Self::Stopped => "not started",
            Self::Unresponsive => "unknown: the supervisor does not answer",
            Self::Orphaned => "still running without its supervisor (orphaned)",
        }
    }
}

impl std::fmt::Display for SupervisorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one worker process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExitInfo {
    /// Unix seconds when it ended.
    pub at: u64,
    /// How long it ran, in milliseconds.
    pub ran_for_ms: u64,
    /// Its exit status, when it exited by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The signal that ended it (9 = SIGKILL, 15 = SIGTERM), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// In words, e.g. "exited with status 3", "killed by signal 9 (SIGKILL)".
    pub reason: String,
}

impl ExitInfo {
    /// From a wait status.
    pub fn from_status(status: ExitStatus, ran_for: Duration) -> Self {
        use std::os::unix::process::ExitStatusExt;
        let (code, signal) = (status.code(), status.signal());
        let reason = match (code, signal) {
            (Some(c), _) => format!("exited with status {c}"),
            (None, Some(s)) => {
                let name = nix::sys::signal::Signal::try_from(s).map_or("unknown", |n| n.as_str());
                format!("killed by signal {s} ({name})")
            }
            (None, None) => "ended for an unknown reason".to_owned(),
        };
        Self {
            at: clock::unix_now(),
            ran_for_ms: clock::millis(ran_for),
            code,
            signal,
            reason,
        }
    }

    /// A worker that could not be started at all (the reason has no secret: an io error).
    pub fn spawn_failed(error: &std::io::Error) -> Self {
        Self {
            at: clock::unix_now(),
            ran_for_ms: 0,
            code: None,
            signal: None,
            reason: format!("could not be started: {error}"),
        }
    }
}

/// The supervisor's answer to `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisorStatus {
    /// The supervisor's process id.
    pub pid: u32,
    pub state: SupervisorState,
    /// Unix seconds when the supervisor started.
    pub started_at: u64,
    /// The basis version of the supervisor.
    pub version: String,
    /// The env file the worker runs with.
    pub env_path: String,
    /// The worker log (redacted, rotated).
    pub log_path: String,
    /// The worker's process id while it runs.
    #[serde(default)]
    pub worker_pid: Option<u32>,
    /// Unix seconds when the current worker process started.
    #[serde(default)]
    pub worker_started_at: Option<u64>,
    /// How many times the worker was restarted after an exit.
    pub restarts: u32,
    /// In backoff: milliseconds until the next restart.
    #[serde(default)]
    pub next_restart_in_ms: Option<u64>,
    /// The most recent worker exits, oldest first (up to 10).
    pub last_exits: Vec<ExitInfo>,
}

/// The status the restart loop updates and the socket reads.
#[derive(Debug)]
pub struct Shared {
    inner: Mutex<(SupervisorStatus, Option<Instant>)>,
}

impl Shared {
    pub fn new(status: SupervisorStatus) -> Self {
        Self {
            inner: Mutex::new((status, None)),
        }
    }

    /// A copy with `next_restart_in_ms` filled in for now.
    pub fn snapshot(&self) -> SupervisorStatus {
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (status, next) = &*guard;
        let mut status = status.clone();
        status.next_restart_in_ms =
            next.map(|at| clock::millis(at.saturating_duration_since(Instant::now())));
        status
    }

    /// Changes the status; `next_restart` is the instant of the next restart, if any.
    pub fn update(&self, f: impl FnOnce(&mut SupervisorStatus, &mut Option<Instant>)) {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (status, next) = &mut *guard;
        f(status, next);
    }
}
