//! The restart loop: keeps one worker alive. On each exit it records why, then either waits
//! the backoff delay and restarts it, or, after too many exits in the window, stops
//! restarting (`crash_loop`). A `stop` (or SIGTERM/SIGINT to the supervisor) drains the worker:
//! SIGTERM, then SIGKILL after the drain timeout.

use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::backoff::{Backoff, CrashGuard};
use super::child::{self, RunningWorker};
use super::config::SuperviseConfig;
use super::control::Response;
use super::error::SupervisorError;
use super::pidfile::{self, SupervisorInfo};
use super::redact::Redactor;
use super::sink::LogSink;
use super::state::{ExitInfo, Shared, SupervisorState, SupervisorStatus};
use super::{clock, proc};

/// A message from the control socket to the loop.
#[derive(Debug)]
pub enum Control {
    /// Stop the worker and exit; answer through `reply`, then wait (briefly) for `written`.
    Stop {
        drain: Option<Duration>,
        reply: oneshot::Sender<Response>,
        written: oneshot::Receiver<()>,
    },
}

/// How the loop ended: the `stop` caller to answer (none on SIGTERM), and the worker's end.
#[derive(Debug)]
pub struct Finish {
    pub reply: Option<(oneshot::Sender<Response>, oneshot::Receiver<()>)>,
    pub worker_exit: Option<ExitInfo>,
}

/// The loop's state.
#[derive(Debug)]
pub struct Keeper {
    config: SuperviseConfig,
    shared: Arc<Shared>,
    sink: Arc<LogSink>,
    info: SupervisorInfo,
    backoff: Backoff,
    guard: CrashGuard,
    worker: Option<RunningWorker>,
    restart_at: Option<Instant>,
    started_once: bool,
}

impl Keeper {
    pub fn new(
        config: SuperviseConfig,
        shared: Arc<Shared>,
        sink: Arc<LogSink>,
        info: SupervisorInfo,
    ) -> Self {
        Self {
            backoff: Backoff::new(&config.tuning),
            guard: CrashGuard::new(&config.tuning),
            config,
            shared,
            sink,
            info,
            worker: None,
            restart_at: None,
            started_once: false,
        }
    }

    /// Starts the worker and keeps it alive until a stop.
    pub async fn run(
        mut self,
        mut control: mpsc::Receiver<Control>,
    ) -> Result<Finish, SupervisorError> {
        let signal_err = |e| SupervisorError::io("install a signal handler", "signal", e);
        let mut term = signal(SignalKind::terminate()).map_err(signal_err)?;
        let mut int = signal(SignalKind::interrupt()).map_err(signal_err)?;
        let mut hup = signal(SignalKind::hangup()).map_err(signal_err)?;
        let mut control_open = true;
        self.start_worker();
        loop {
            let restart_at = self.restart_at;
            tokio::select! {
                status = wait(&mut self.worker) => self.on_exit(status).await,
                () = sleep_until(restart_at) => {
                    self.restart_at = None;
                    self.start_worker();
                }
                msg = control.recv(), if control_open => match msg {
                    Some(Control::Stop { drain, reply, written }) => {
                        let drain = drain.unwrap_or(self.config.tuning.drain_timeout);
                        let worker_exit = self.stop(drain).await;
                        return Ok(Finish { reply: Some((reply, written)), worker_exit });
                    }
                    None => control_open = false,
                },
                _ = term.recv() => return Ok(self.stop_on_signal("SIGTERM").await),
                _ = int.recv() => return Ok(self.stop_on_signal("SIGINT").await),
                _ = hup.recv() => {}
            }
        }
    }

    async fn stop_on_signal(&mut self, name: &str) -> Finish {
        self.sink.event(&format!("{name} received: stopping"));
        let worker_exit = self.stop(self.config.tuning.drain_timeout).await;
        Finish {
            reply: None,
            worker_exit,
        }
    }

    /// Spawns the worker (re-reading the env file's token for redaction first).
    fn start_worker(&mut self) {
        self.sink
            .set_redactor(Redactor::from_env_file(&self.config.env_path));
        let restart = self.started_once;
        self.started_once = true;
        let what = if restart { "restarted" } else { "started" };
        let sink = Arc::clone(&self.sink);
        let announce = move |pid| sink.event(&format!("worker {what} (pid {pid})"));
        match child::spawn(
            &self.config.worker,
            &self.config.env_path,
            &self.config.dirs.state_dir,
            &self.sink,
            announce,
        ) {
            Ok(worker) => {
                let (pid, started_at) = (worker.pid, worker.started_at);
                self.shared.update(|s, next| {
                    s.state = SupervisorState::Running;
                    s.worker_pid = Some(pid);
                    s.worker_started_at = Some(started_at);
                    s.restarts += u32::from(restart);
                    *next = None;
                });
                self.info.worker_pid = Some(pid);
                self.info.worker_start_ticks = proc::start_ticks(pid);
                self.write_pidfile();
                self.worker = Some(worker);
            }
            Err(e) => {
                self.shared.update(|s, _| s.restarts += u32::from(restart));
                self.after_exit(ExitInfo::spawn_failed(&e), Duration::ZERO);
            }
        }
    }

    /// The worker ended by itself (or was killed from outside).
    async fn on_exit(&mut self, status: std::io::Result<ExitStatus>) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        worker.finish_pumps().await;
        let ran_for = worker.started.elapsed();
        let info = exit_info(status, ran_for);
        self.after_exit(info, ran_for);
    }

    /// Records an exit, then schedules a restart or declares a crash loop.
    fn after_exit(&mut self, info: ExitInfo, ran_for: Duration) {
        let pid = self.info.worker_pid.take();
        self.info.worker_start_ticks = None;
        self.write_pidfile();
        let who = pid.map_or_else(|| "worker".to_owned(), |p| format!("worker (pid {p})"));
        self.sink.event(&format!(
            "{who} {} after {}",
            info.reason,
            clock::human(ran_for)
        ));
        let kept = self.config.tuning.kept_exits;
        if self.guard.record(std::time::Instant::now()) {
            self.restart_at = None;
            self.sink.event(&format!(
                "crash loop: {} exits within {}; the worker is not restarted. Read the lines above, fix the cause, then run `basis stop` and `basis start`",
                self.guard.recent(),
                clock::human(self.config.tuning.crash_window)
            ));
            self.shared.update(|s, next| {
                s.state = SupervisorState::CrashLoop;
                record(s, info, kept);
                *next = None;
            });
            return;
        }
        let delay = self.backoff.after_exit(ran_for);
        let at = Instant::now() + delay;
        self.restart_at = Some(at);
        self.sink
            .event(&format!("restarting the worker in {}", clock::human(delay)));
        self.shared.update(|s, next| {
            s.state = SupervisorState::Backoff;
            record(s, info, kept);
            *next = Some(at.into_std());
        });
    }

    /// Drains the worker: SIGTERM, wait up to `drain`, then SIGKILL. Returns how it ended.
    async fn stop(&mut self, drain: Duration) -> Option<ExitInfo> {
        self.restart_at = None;
        self.shared.update(|s, next| {
            s.state = SupervisorState::Stopping;
            *next = None;
        });
        let Some(mut worker) = self.worker.take() else {
            self.sink.event("stopping (no worker is running)");
            self.shared
                .update(|s, _| s.state = SupervisorState::Stopped);
            return None;
        };
        self.sink.event(&format!(
            "stopping the worker (pid {}): SIGTERM, up to {} to drain",
            worker.pid,
            clock::human(drain)
        ));
        proc::send(worker.pid, Signal::SIGTERM);
        let drained = tokio::time::timeout(drain, worker.child.wait()).await;
        let status = if let Ok(status) = drained {
            status
        } else {
            self.sink
                .event("the worker did not finish draining in time: SIGKILL");
            let _ = worker.child.start_kill();
            worker.child.wait().await
        };
        worker.finish_pumps().await;
        let info = exit_info(status, worker.started.elapsed());
        self.sink
            .event(&format!("worker (pid {}) {}", worker.pid, info.reason));
        let kept = self.config.tuning.kept_exits;
        let exit = info.clone();
        self.shared.update(|s, _| {
            s.state = SupervisorState::Stopped;
            record(s, info, kept);
        });
        Some(exit)
    }

    fn write_pidfile(&self) {
        if let Err(e) = pidfile::write(&self.config.dirs.supervisor_json(), &self.info) {
            tracing::warn!("{e}");
        }
    }
}

/// Adds `info` to the status's recent exits (keeping `kept`) and clears the worker.
fn record(status: &mut SupervisorStatus, info: ExitInfo, kept: usize) {
    status.worker_pid = None;
    status.worker_started_at = None;
    status.last_exits.push(info);
    let excess = status.last_exits.len().saturating_sub(kept);
    status.last_exits.drain(..excess);
}

fn exit_info(status: std::io::Result<ExitStatus>, ran_for: Duration) -> ExitInfo {
    match status {
        Ok(status) => ExitInfo::from_status(status, ran_for),
        Err(e) => ExitInfo {
            reason: format!("could not be waited for: {e}"),
            ran_for_ms: clock::millis(ran_for),
            ..ExitInfo::spawn_failed(&e)
        },
    }
}

async fn wait(worker: &mut Option<RunningWorker>) -> std::io::Result<ExitStatus> {
    match worker {
        Some(w) => w.child.wait().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
