//! `stop_worker` (destructive): ask the supervisor to stop: it sends the worker SIGTERM (the
//! worker takes no new job and finishes in-flight ones), SIGKILLs it after the drain timeout,
//! then exits and removes its socket and `supervisor.json`. Idempotent: with nothing running
//! it reports so and succeeds. A supervisor that does not answer is signalled instead.

use std::time::Duration;

use nix::sys::signal::Signal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Context;
use crate::config::Dirs;
use crate::domain::Problem;
use crate::guard::{Guarded, SecretRefused};
use crate::supervisor::control::{self, Request, Response};
use crate::supervisor::pidfile::SupervisorInfo;
use crate::supervisor::presence::{Presence, clean_stale, probe};
use crate::supervisor::{ExitInfo, proc};

/// The drain timeout when none is given.
pub const DEFAULT_DRAIN_TIMEOUT_S: u64 = 30;
/// The longest drain timeout accepted.
pub const MAX_DRAIN_TIMEOUT_S: u64 = 3600;
/// Extra time for the supervisor itself, beyond the drain.
const SLACK: Duration = Duration::from_secs(10);

/// How to stop.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Seconds the worker may take to finish the jobs it is running before it is killed
    /// (default 30, at most 3600).
    #[serde(default)]
    pub drain_timeout_s: Option<u64>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        Ok(())
    }
}

/// What the stop did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// True when this call stopped a running supervisor and its worker.
    pub stopped: bool,
    /// Whether a supervisor was running. False: nothing to stop (not an error).
    pub was_running: bool,
    /// The stopped supervisor's pid.
    pub pid: Option<u32>,
    /// How the worker ended (status 0 after a clean drain; signal 9 when it was killed after
    /// the drain timeout). Absent when no worker process was running.
    pub worker_exit: Option<ExitInfo>,
    /// True when the supervisor did not answer and was signalled instead.
    pub forced: bool,
    /// Files of a supervisor that was already gone, cleaned up, if any.
    pub cleaned_up: Option<String>,
    /// What to do next.
    pub next_step: String,
}

/// Stops the supervisor and its worker. Destructive; idempotent.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let drain = Duration::from_secs(
        input
            .drain_timeout_s
            .unwrap_or(DEFAULT_DRAIN_TIMEOUT_S)
            .min(MAX_DRAIN_TIMEOUT_S),
    );
    let dirs = ctx.dirs();
    let mut out = Output {
        stopped: false,
        was_running: false,
        pid: None,
        worker_exit: None,
        forced: false,
        cleaned_up: None,
        next_step: "start it again with start_worker (`basis start`)".to_owned(),
    };
    match probe(dirs) {
        Presence::Absent => {
            "nothing was running; start_worker (`basis start`) starts it"
                .clone_into(&mut out.next_step);
        }
        Presence::Stale { info, reason } => {
            let done = clean_stale(dirs, info.as_ref(), drain).await;
            out.cleaned_up = Some(match done.killed_worker {
                Some(pid) => format!("{reason}; ended its orphaned worker (pid {pid})"),
                None => reason,
            });
        }
        Presence::Running(info) => {
            out.was_running = true;
            out.pid = Some(info.pid);
            let (exit, forced) = stop_running(dirs, &info, drain).await;
            out.stopped = true;
            out.worker_exit = exit;
            out.forced = forced;
            if let Some(managed_by) = info.managed_by {
                out.next_step = super::service::after_stop(managed_by);
            }
        }
    }
    Ok(out)
}

/// Asks the supervisor to stop and waits for it to exit; signals it when it does not answer,
/// and kills it (and cleans up after it) when it does not exit either.
async fn stop_running(
    dirs: &Dirs,
    info: &SupervisorInfo,
    drain: Duration,
) -> (Option<ExitInfo>, bool) {
    let request = Request::Stop {
        drain_timeout_s: Some(drain.as_secs()),
    };
    let reply = control::request(&dirs.supervisor_sock(), &request, drain + SLACK).await;
    let (exit, mut forced) = match reply {
        Ok(Response::Stopped { worker_exit }) => (worker_exit, false),
        // Already stopping (another caller): wait for it like for our own stop.
        Ok(Response::Error { .. }) => (None, false),
        _ => {
            tracing::warn!(
                pid = info.pid,
                "the supervisor did not answer: sending SIGTERM"
            );
            proc::send(info.pid, Signal::SIGTERM);
            (None, true)
        }
    };
    if !wait_gone(info, drain + SLACK).await {
        tracing::warn!(
            pid = info.pid,
            "the supervisor did not exit: sending SIGKILL"
        );
        proc::send(info.pid, Signal::SIGKILL);
        wait_gone(info, Duration::from_secs(2)).await;
        clean_stale(dirs, Some(info), Duration::from_secs(2)).await;
        forced = true;
    }
    (exit, forced)
}

/// Waits until `info`'s supervisor process is gone; false on timeout.
async fn wait_gone(info: &SupervisorInfo, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let gone = !proc::is_alive(info.pid)
            || proc::same_process(info.pid, info.start_ticks) == Some(false);
        if gone {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
