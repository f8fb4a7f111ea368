//! `worker-status.json` (docs/FILES.md, "State directory"), the document the worker writes and
//! others read: the supervisor, `basis status` / `worker_status`, `verify_online` and `start`. A
//! contract between processes (and between versions of basis), so it lives here with the other wire
//! types and changes only additively; the worker's writer is `crate::worker::status`.
//!
//! Architecture invariant: the status never holds the token (no field can: the document is
//! built from the config's public parts only).

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{JobId, Runtime, WorkerId};

/// The connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Opening the WebSocket, sending `hello`, waiting for `welcome`.
    Connecting,
    /// Welcomed; heartbeating and taking jobs.
    Online,
    /// Disconnected; waiting before the next attempt (`retry_at`).
    Backoff,
    /// Taking no new jobs; finishing those in flight, then exiting (or, after the
    /// orchestrator's `drain`, until it closes the connection).
    Draining,
    /// The process has exited (or is about to).
    Stopped,
}

impl WorkerState {
    /// The connection in words: "connected and online", "disconnected, retrying soon".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Connecting => "connecting to the orchestrator",
            Self::Online => "connected and online",
            Self::Backoff => "disconnected, retrying soon",
            Self::Draining => "draining: finishing its jobs, taking no new ones",
            Self::Stopped => "stopped",
        }
    }
}

/// A job in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CurrentJob {
    pub job_id: JobId,
    pub model: String,
    /// Unix seconds.
    pub started_at: u64,
}

/// Totals since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Counters {
    pub jobs_completed: u64,
    /// Jobs that ended in a `job_error` (cancelled ones included).
    pub jobs_failed: u64,
    /// Successful connections after the first.
    pub reconnects: u64,
}

/// [`LastError::code`] when the orchestrator could not be reached at all.
pub const UNREACHABLE: &str = "UNREACHABLE";

/// Why the last connection attempt or connection failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LastError {
    /// `UNREACHABLE`, `UNAUTHORIZED`, `REJECTED`, `PROTOCOL`, `CONNECTION_LOST`, or the code of
    /// the orchestrator's `error` frame.
    pub code: String,
    pub message: String,
    /// Unix seconds.
    pub at: u64,
}

/// The contents of `worker-status.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerStatus {
    pub state: WorkerState,
    pub orchestrator_url: String,
    pub worker_id: WorkerId,
    pub runtime: Runtime,
    pub models: Vec<String>,
    pub capacity: u32,
    /// Unix seconds of the current connection's `welcome`; absent while disconnected.
    pub connected_since: Option<u64>,
    /// Unix seconds of the last frame from the orchestrator (its `welcome`, any message, or
    /// the pong answering the ping sent with each heartbeat).
    pub last_heartbeat_acked: Option<u64>,
    /// From the orchestrator's `welcome`.
    pub heartbeat_interval_s: Option<u32>,
    pub online_window_s: Option<u32>,
    pub current_jobs: Vec<CurrentJob>,
    pub counters: Counters,
    pub runtime_healthy: bool,
    /// What the last runtime health check saw.
    pub runtime_detail: Option<String>,
    pub last_error: Option<LastError>,
    /// Unix seconds of the next connection attempt while in `backoff`.
    pub retry_at: Option<u64>,
    pub pid: u32,
    pub version: String,
    /// Unix seconds of this document.
    pub updated_at: u64,
}

/// Reading a status file failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a worker status document: {source}", .path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl WorkerStatus {
    /// Reads `path`; `None` when it does not exist (the worker never ran).
    pub fn read(path: &Path) -> Result<Option<WorkerStatus>, StatusError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StatusError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StatusError::Json {
                path: path.to_path_buf(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_missing_file_is_none_and_a_foreign_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            WorkerStatus::read(&dir.path().join("none"))
                .unwrap()
                .is_none()
        );
        let path = dir.path().join("worker-status.json");
        std::fs::write(&path, b"{\"state\": \"online\"}").unwrap();
        assert!(matches!(
            WorkerStatus::read(&path),
            Err(StatusError::Json { .. })
        ));
        assert_eq!(
            serde_json::to_value(WorkerState::Backoff).unwrap(),
            "backoff"
        );
    }
}
