//! `supervisor.json` (docs/FILES.md, "State directory"): who the running supervisor is.
//! Written atomically with mode 0600 when the supervisor starts and whenever its worker
//! changes; removed when it exits.

use std::fs;
use std::io;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::SupervisorError;
use super::managed::ManagedBy;
use crate::config::atomic;

/// The file's mode.
pub const PIDFILE_MODE: u32 = 0o600;

/// The contents of `supervisor.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SupervisorInfo {
    /// The supervisor's process id.
    pub pid: u32,
    /// Unix seconds when it started.
    pub started_at: u64,
    /// The env file its worker runs with.
    pub env_path: String,
    /// Its control socket.
    pub socket_path: String,
    /// Its basis version.
    pub version: String,
    /// The kernel's start time of the supervisor process (clock ticks after boot, field 22 of
    /// /proc/PID/stat): a pid reused by another process has another start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ticks: Option<u64>,
    /// The current worker's process id, while one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_pid: Option<u32>,
    /// The worker process's kernel start time (so a stale cleanup never signals a reused pid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_start_ticks: Option<u64>,
    /// The service manager that started it (`basis service install`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<ManagedBy>,
}

/// Reads `path`; `None` when there is no file.
pub fn read(path: &Path) -> Result<Option<SupervisorInfo>, SupervisorError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SupervisorError::io("read", path, e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| SupervisorError::CorruptPidfile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Writes `info` to `path` atomically, mode 0600.
pub fn write(path: &Path, info: &SupervisorInfo) -> Result<(), SupervisorError> {
    let mut bytes = serde_json::to_vec_pretty(info)
        .map_err(|e| SupervisorError::io("serialize", path, io::Error::other(e)))?;
    bytes.push(b'\n');
    atomic::write_atomic(path, &bytes, PIDFILE_MODE)
        .map_err(|e| SupervisorError::io("write", path, e))
}

/// Removes `path`; a missing file is fine.
pub fn remove(path: &Path) -> Result<(), SupervisorError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(SupervisorError::io("remove", path, e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn round_trip_mode_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/supervisor.json");
        assert_eq!(read(&path).unwrap(), None);
        let info = SupervisorInfo {
            pid: 42,
            started_at: 1_700_000_000,
            env_path: "/x/worker.env".into(),
            socket_path: "/x/state/supervisor.sock".into(),
            version: "0.1.0".into(),
            start_ticks: Some(7),
            worker_pid: None,
            worker_start_ticks: None,
            managed_by: Some(ManagedBy::SystemdUser),
        };
        write(&path, &info).unwrap();
        assert_eq!(read(&path).unwrap(), Some(info));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            read(&path),
            Err(SupervisorError::CorruptPidfile { .. })
        ));
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert!(!path.exists());
    }
}
