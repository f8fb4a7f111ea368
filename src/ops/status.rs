//! `worker_status`: is the supervisor alive, what is it doing (running, backoff, crash loop),
//! how did the worker last exit, what does `worker-status.json` say, and the last log lines,
//! redacted. Read-only: stale files are reported, not removed (`start` removes them), and so
//! is a worker a gone supervisor left running (`orphaned`; `stop` ends it).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Context;
use super::logs::{tail_file, tail_socket, worker_log};
use crate::config::Dirs;
use crate::domain::Problem;
use crate::guard::{Guarded, SecretRefused, check_json};
use crate::supervisor::control::{self, Request, Response};
use crate::supervisor::presence::orphan_worker;
use crate::supervisor::redact::Redactor;
use crate::supervisor::{ExitInfo, Presence, SupervisorState, SupervisorStatus, probe};
use crate::wire::{UNREACHABLE, WorkerState, WorkerStatus};

/// Log lines included when none are asked for.
pub const DEFAULT_LOG_LINES: u32 = 20;
/// The most log lines `worker_status` includes (use `logs` for more).
pub const MAX_LOG_LINES: u32 = 200;

/// What to include.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// How many of the last worker log lines to include (default 20, at most 200).
    #[serde(default)]
    pub log_lines: Option<u32>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        Ok(())
    }
}

/// Whether a supervisor runs on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupervisorPresence {
    /// It runs and answered.
    Running,
    /// Its process is alive but its control socket did not answer.
    Unresponsive,
    /// supervisor.json names a dead or reused pid: the supervisor is gone (killed or crashed).
    /// `start_worker` cleans the files up.
    Stale,
    /// No supervisor: the worker is not started.
    NotRunning,
}

impl SupervisorPresence {
    /// In words: "running", "not running", ….
    pub fn describe(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Unresponsive => "not answering",
            Self::Stale => "gone (stale files left)",
            Self::NotRunning => "not running",
        }
    }
}

/// The supervisor and worker on this host. Never contains a key or token.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub supervisor: SupervisorPresence,
    /// True when a supervisor runs (answering or not).
    pub running: bool,
    /// running (worker process up), backoff (it exited; restarted after `next_restart_in_ms`),
    /// `crash_loop` (it kept exiting: no more restarts), starting, stopping, stopped (no
    /// supervisor), unresponsive, orphaned (the supervisor is gone but its worker, `worker_pid`,
    /// still runs unsupervised: stop_worker ends it).
    pub state: SupervisorState,
    /// The supervisor's pid (also for a stale or unresponsive one).
    pub pid: Option<u32>,
    /// Unix seconds when the supervisor started.
    pub started_at: Option<u64>,
    /// The supervisor's basis version.
    pub version: Option<String>,
    /// The env file the worker runs with.
    pub env_path: Option<String>,
    /// The worker process id while it runs.
    pub worker_pid: Option<u32>,
    /// Restarts after worker exits since the supervisor started.
    pub restarts: u32,
    /// In backoff: milliseconds until the worker is restarted.
    pub next_restart_in_ms: Option<u64>,
    /// Recent worker exits, oldest first, with their reasons.
    pub last_exits: Vec<ExitInfo>,
    /// The worker's own report (worker-status.json: connection state, last heartbeat
    /// acknowledged, jobs in flight, counters, runtime health) when present.
    pub worker_status: Option<WorkerStatus>,
    /// True when `worker_status` was written by the worker process running now; false when
    /// it is left from an earlier one (or absent).
    pub worker_status_current: bool,
    /// The worker log.
    pub log_path: String,
    /// Its last lines, oldest first, redacted.
    pub log_tail: Vec<String>,
    /// Why the supervisor is stale or unresponsive, when it is.
    pub note: Option<String>,
    /// What to do next.
    pub next_step: String,
}

/// Reads `worker-status.json` when present, parseable, free of anything secret-shaped, and
/// (with `since`) updated at or after that unix second.
pub fn read_worker_status(dirs: &Dirs, since: Option<u64>) -> Option<WorkerStatus> {
    let status = WorkerStatus::read(&dirs.worker_status_json()).ok()??;
    if since.is_some_and(|s| status.updated_at < s) {
        return None;
    }
    let value = serde_json::to_value(&status).ok()?;
    if check_json("worker_status", &value).is_err() {
        tracing::warn!("worker-status.json holds a secret-shaped value; not shown");
        return None;
    }
    Some(status)
}

/// When the running worker reports that it cannot reach its orchestrator, that comes first.
fn unreachable(out: &Output, env_path: &std::path::Path) -> Option<String> {
    let ws = out
        .worker_status
        .as_ref()
        .filter(|_| out.worker_status_current)?;
    let cut_off = ws.state != WorkerState::Online
        && ws
            .last_error
            .as_ref()
            .is_some_and(|e| e.code == UNREACHABLE);
    cut_off.then(|| {
        format!(
            "{}; network_status shows what this host sees, and the worker reconnects by itself \
             once it answers",
            super::network::unreachable_step(
                &ws.orchestrator_url,
                &super::network::env_url_source(&env_path.display().to_string())
            )
        )
    })
}

fn next_step(presence: SupervisorPresence, state: SupervisorState) -> String {
    match (presence, state) {
        (SupervisorPresence::Running, SupervisorState::CrashLoop) => {
            "the worker kept exiting and is no longer restarted: read its recent exits and log \
             lines, fix the cause, then stop_worker, then start_worker"
        }
        (SupervisorPresence::Running, SupervisorState::Backoff) => {
            "the worker exited and will be restarted: its recent exits and log lines say why"
        }
        (SupervisorPresence::Running, _) => {
            "the worker process is up: check it is online with verify_online (`basis verify`)"
        }
        (SupervisorPresence::Unresponsive, _) => {
            "the supervisor does not answer: stop_worker (`basis stop`) ends it and its worker, then start_worker"
        }
        (SupervisorPresence::Stale, SupervisorState::Orphaned) => {
            "the supervisor is gone but its worker still runs, unsupervised: stop_worker \
             (`basis stop`) ends it; then start_worker (`basis start`) starts a supervised one"
        }
        (SupervisorPresence::Stale, _) => {
            "the supervisor is gone: start_worker (`basis start`) cleans up and starts a new one"
        }
        (SupervisorPresence::NotRunning, _) => "start the worker with start_worker (`basis start`)",
    }
    .to_owned()
}

/// Reports the supervisor and worker. Read-only.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let n = usize::try_from(
        input
            .log_lines
            .unwrap_or(DEFAULT_LOG_LINES)
            .min(MAX_LOG_LINES),
    )
    .unwrap_or(0);
    let dirs = ctx.dirs();
    let presence = probe(dirs);
    let mut out = Output {
        supervisor: SupervisorPresence::NotRunning,
        running: false,
        state: SupervisorState::Stopped,
        pid: None,
        started_at: None,
        version: None,
        env_path: None,
        worker_pid: None,
        restarts: 0,
        next_restart_in_ms: None,
        last_exits: Vec::new(),
        worker_status: read_worker_status(dirs, None),
        worker_status_current: false,
        log_path: worker_log(dirs).display().to_string(),
        log_tail: Vec::new(),
        note: None,
        next_step: String::new(),
    };
    let env_path = match &presence {
        Presence::Running(info)
        | Presence::Stale {
            info: Some(info), ..
        } => {
            out.pid = Some(info.pid);
            out.started_at = Some(info.started_at);
            out.version = Some(info.version.clone());
            out.env_path = Some(info.env_path.clone());
            std::path::PathBuf::from(&info.env_path)
        }
        _ => ctx.env_path(None),
    };
    let redactor = Redactor::from_env_file(&env_path);
    match presence {
        Presence::Running(info) => {
            if let Some(status) = ask_status(dirs).await {
                fill(&mut out, status);
            } else {
                out.supervisor = SupervisorPresence::Unresponsive;
                out.running = true;
                out.state = SupervisorState::Unresponsive;
                out.worker_pid = info.worker_pid;
                out.note = Some(format!(
                    "supervisor pid {} is alive but its socket did not answer",
                    info.pid
                ));
            }
        }
        Presence::Stale { info, reason } => {
            out.supervisor = SupervisorPresence::Stale;
            out.note = Some(reason);
            if let Some(worker) = info.as_ref().and_then(orphan_worker) {
                out.state = SupervisorState::Orphaned;
                out.worker_pid = Some(worker);
                out.note = out
                    .note
                    .map(|r| format!("{r}; its worker (pid {worker}) still runs without it"));
            }
        }
        Presence::Absent => {}
    }
    out.log_tail = match out.supervisor {
        SupervisorPresence::Running => tail_socket(dirs, &redactor, n).await.map(|(_, l)| l),
        _ => None,
    }
    .map_or_else(|| tail_file(dirs, &redactor, n), Ok)?;
    out.worker_status_current = match (&out.worker_status, out.worker_pid) {
        (Some(ws), Some(pid)) => ws.pid == pid,
        _ => false,
    };
    out.next_step =
        unreachable(&out, &env_path).unwrap_or_else(|| next_step(out.supervisor, out.state));
    Ok(out)
}

async fn ask_status(dirs: &Dirs) -> Option<SupervisorStatus> {
    let reply = control::request(
        &dirs.supervisor_sock(),
        &Request::Status,
        Duration::from_secs(3),
    )
    .await;
    match reply {
        Ok(Response::Status(status)) => Some(status),
        _ => None,
    }
}

fn fill(out: &mut Output, status: SupervisorStatus) {
    out.supervisor = SupervisorPresence::Running;
    out.running = true;
    out.state = status.state;
    out.pid = Some(status.pid);
    out.started_at = Some(status.started_at);
    out.version = Some(status.version);
    out.env_path = Some(status.env_path);
    out.worker_pid = status.worker_pid;
    out.restarts = status.restarts;
    out.next_restart_in_ms = status.next_restart_in_ms;
    out.last_exits = status.last_exits;
    out.log_path = status.log_path;
}
