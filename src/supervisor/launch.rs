//! Starting a supervisor from `start`: `EXE supervise --env PATH --state-dir DIR`, detached
//! from the caller's stdio (stdin and stdout `/dev/null`, stderr appended to
//! `logs/supervisor.log`). The supervisor calls `setsid` itself, so it has no controlling
//! terminal and outlives the caller. Nothing here waits: the caller polls the socket.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::error::SupervisorError;
use super::logs::{self, SUPERVISOR_LOG};
use crate::config::Dirs;

/// The variable naming the executable to run as `supervise` (default: this executable). For
/// callers that embed the library (in-process tests); the `basis` binary never needs it.
pub const EXE_ENV: &str = "BASIS_SUPERVISE_EXE";

/// `supervisor.log` is moved to `supervisor.log.1` at a start when larger than this.
const SUPERVISOR_LOG_MAX: u64 = 1 << 20;

/// The executable to run as `supervise` and `worker`.
pub fn basis_exe() -> Result<PathBuf, SupervisorError> {
    match std::env::var_os(EXE_ENV) {
        Some(exe) if !exe.is_empty() => Ok(PathBuf::from(exe)),
        _ => std::env::current_exe()
            .map_err(|e| SupervisorError::io("find the basis executable", "current_exe", e)),
    }
}

/// `logs/supervisor.log` in `dirs`' state dir.
pub fn supervisor_log(dirs: &Dirs) -> PathBuf {
    dirs.log_dir().join(SUPERVISOR_LOG)
}

/// Spawns a supervisor for `env_path` (absolute). The returned child is not killed on drop:
/// dropping it (or the future holding it) leaves the supervisor running, and tokio reaps it.
pub fn spawn_detached(env_path: &Path, dirs: &Dirs) -> Result<Child, SupervisorError> {
    let exe = basis_exe()?;
    let log_dir = dirs.log_dir();
    logs::create_private_dir(&log_dir).map_err(|e| SupervisorError::io("create", &log_dir, e))?;
    let log_path = supervisor_log(dirs);
    logs::rotate_if_larger(&log_path, SUPERVISOR_LOG_MAX)
        .map_err(|e| SupervisorError::io("rotate", &log_path, e))?;
    let stderr = logs::open_private_append(&log_path)
        .map_err(|e| SupervisorError::io("open", &log_path, e))?;
    Command::new(&exe)
        .arg("supervise")
        .arg("--env")
        .arg(env_path)
        .arg("--state-dir")
        .arg(&dirs.state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| SupervisorError::io("start", exe, e))
}
