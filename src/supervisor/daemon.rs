//! The supervisor process (`basis supervise`): a new session, the lock that makes it the only
//! one, the 0600 control socket, `supervisor.json`; then the restart loop ([`super::keeper`])
//! until `stop` or SIGTERM; then the files are removed and the `stop` caller answered.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::config::SuperviseConfig;
use super::control::{self, Request, Response};
use super::error::SupervisorError;
use super::keeper::{Control, Finish, Keeper};
use super::logs::{self, MAX_TAIL_LINES, WORKER_LOG};
use super::pidfile::{self, SupervisorInfo};
use super::redact::Redactor;
use super::sink::LogSink;
use super::state::{Shared, SupervisorState, SupervisorStatus};
use super::{LOCK_FILE, clock, proc};
use crate::config::Dirs;

/// Lines `logs` returns when the request names no count.
pub const DEFAULT_LOG_LINES: usize = 50;

/// How long a new supervisor waits for the lock (a stopping one may still hold it briefly).
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Runs the supervisor until it is stopped. Returns `AlreadyRunning` when another one holds
/// the lock.
pub async fn run(config: SuperviseConfig) -> Result<(), SupervisorError> {
    // A new session, first: no controlling terminal, out of the caller's process group. It
    // fails (EPERM) only when already a group leader, i.e. run by hand from a shell.
    let _ = nix::unistd::setsid();
    let dirs = config.dirs.clone();
    logs::create_private_dir(&dirs.state_dir)
        .map_err(|e| SupervisorError::io("create", &dirs.state_dir, e))?;
    let _lock = acquire_lock(&dirs.state_dir.join(LOCK_FILE)).await?;
    let socket_path = dirs.supervisor_sock();
    let listener = bind(&socket_path)?;

    let log_path = dirs.log_dir().join(WORKER_LOG);
    let redactor = Redactor::from_env_file(&config.env_path);
    let sink = LogSink::open(&log_path, &config.tuning, redactor)
        .map_err(|e| SupervisorError::io("open", &log_path, e))?;
    let sink = Arc::new(sink);
    let pid = std::process::id();
    let version = env!("CARGO_PKG_VERSION").to_owned();
    let info = SupervisorInfo {
        pid,
        started_at: clock::unix_now(),
        env_path: config.env_path.display().to_string(),
        socket_path: socket_path.display().to_string(),
        version: version.clone(),
        start_ticks: proc::start_ticks(pid),
        worker_pid: None,
        worker_start_ticks: None,
        managed_by: config.managed_by,
    };
    pidfile::write(&dirs.supervisor_json(), &info)?;
    let shared = Arc::new(Shared::new(SupervisorStatus {
        pid,
        state: SupervisorState::Starting,
        started_at: info.started_at,
        version: version.clone(),
        env_path: info.env_path.clone(),
        log_path: log_path.display().to_string(),
        worker_pid: None,
        worker_started_at: None,
        restarts: 0,
        next_restart_in_ms: None,
        last_exits: Vec::new(),
    }));
    sink.event(&format!("supervisor started (pid {pid}, basis {version})"));

    let (tx, rx) = mpsc::channel(8);
    let server = tokio::spawn(serve(listener, Arc::clone(&shared), Arc::clone(&sink), tx));
    let keeper = Keeper::new(config, Arc::clone(&shared), Arc::clone(&sink), info);
    let outcome = keeper.run(rx).await;
    server.abort();

    remove_own_files(&dirs, pid);
    sink.event("supervisor exiting");
    let Finish { reply, worker_exit } = outcome?;
    if let Some((reply, written)) = reply {
        let _ = reply.send(Response::Stopped { worker_exit });
        // Let the connection task write the answer before the process ends.
        let _ = tokio::time::timeout(Duration::from_secs(2), written).await;
    }
    Ok(())
}

/// Takes `supervisor.lock`, waiting a little for a supervisor that is exiting.
async fn acquire_lock(path: &Path) -> Result<File, SupervisorError> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| SupervisorError::io("open", path, e))?;
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(TryLockError::WouldBlock) => {
                return Err(SupervisorError::AlreadyRunning {
                    lock: path.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(SupervisorError::io("lock", path, e)),
        }
    }
}

/// Binds the control socket, replacing a stale one (holding the lock, no live supervisor can
/// be using it), and makes it 0600.
fn bind(path: &Path) -> Result<UnixListener, SupervisorError> {
    pidfile::remove(path)?;
    let listener =
        UnixListener::bind(path).map_err(|e| SupervisorError::io("listen on", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| SupervisorError::io("chmod", path, e))?;
    Ok(listener)
}

/// Removes the socket, and `supervisor.json` while it still names this process.
fn remove_own_files(dirs: &Dirs, pid: u32) {
    if let Err(e) = pidfile::remove(&dirs.supervisor_sock()) {
        tracing::warn!("{e}");
    }
    let json = dirs.supervisor_json();
    if matches!(pidfile::read(&json), Ok(Some(info)) if info.pid == pid)
        && let Err(e) = pidfile::remove(&json)
    {
        tracing::warn!("{e}");
    }
}

/// Accepts connections from this user (or root) and answers each on its own task.
async fn serve(
    listener: UnixListener,
    shared: Arc<Shared>,
    sink: Arc<LogSink>,
    control: mpsc::Sender<Control>,
) {
    let uid = nix::unistd::getuid().as_raw();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("control socket accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let peer = stream.peer_cred().map(|c| c.uid());
        if !matches!(peer, Ok(p) if p == uid || p == 0) {
            tracing::warn!("refused a control connection from another user");
            continue;
        }
        tokio::spawn(answer(
            stream,
            Arc::clone(&shared),
            Arc::clone(&sink),
            control.clone(),
        ));
    }
}

/// Reads one request and writes its answer.
async fn answer(
    mut stream: UnixStream,
    shared: Arc<Shared>,
    sink: Arc<LogSink>,
    control: mpsc::Sender<Control>,
) {
    let read = tokio::time::timeout(Duration::from_secs(5), control::read_request(&mut stream));
    let Ok(request) = read.await else {
        return;
    };
    let response = match request {
        Err(message) => Response::Error { message },
        Ok(Request::Status) => Response::Status(shared.snapshot()),
        Ok(Request::Logs { lines }) => {
            let n = lines.unwrap_or(DEFAULT_LOG_LINES).min(MAX_TAIL_LINES);
            let path = sink.path().display().to_string();
            match tokio::task::spawn_blocking(move || sink.tail(n)).await {
                Ok(Ok(lines)) => Response::Logs { path, lines },
                Ok(Err(e)) => Response::Error {
                    message: format!("cannot read the log: {e}"),
                },
                Err(e) => Response::Error {
                    message: format!("cannot read the log: {e}"),
                },
            }
        }
        Ok(Request::Stop { drain_timeout_s }) => {
            let (reply, reply_rx) = oneshot::channel();
            let (written_tx, written) = oneshot::channel::<()>();
            let drain = drain_timeout_s.map(Duration::from_secs);
            let sent = control.send(Control::Stop {
                drain,
                reply,
                written,
            });
            match sent.await {
                Ok(()) => match reply_rx.await {
                    Ok(response) => {
                        let _ = control::write_response(&mut stream, &response).await;
                        drop(written_tx);
                        return;
                    }
                    Err(_) => stopping(),
                },
                Err(_) => stopping(),
            }
        }
    };
    let _ = control::write_response(&mut stream, &response).await;
}

fn stopping() -> Response {
    Response::Error {
        message: "the supervisor is already stopping".to_owned(),
    }
}
