//! Writing `worker-status.json` (docs/FILES.md, "State directory"): what the worker is doing,
//! for the supervisor, `worker_status` and `verify_online` to read (the document's types are
//! `crate::wire::WorkerStatus` and its parts, re-exported here). Rewritten atomically (mode
//! 0600) on every state change by one
//! writer task, which coalesces bursts: readers always see a whole, recent document. Writes
//! are at least [`MIN_WRITE_INTERVAL`] apart (a busy worker changes `current_jobs` hundreds of
//! times a second, and each write costs two fsyncs); the latest state always lands, at most
//! that much later, and the last one is written at once when the worker stops.
//!
//! Architecture invariant: the status never holds the token (no field can: the document is
//! built from the config's public parts only).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::atomic::write_atomic;
pub use crate::wire::{
    Counters, CurrentJob, LastError, StatusError, UNREACHABLE, WorkerState, WorkerStatus,
};

/// The status file's mode: owner read/write only.
pub const WORKER_STATUS_MODE: u32 = 0o600;
/// The shortest time between two writes of the status file.
pub const MIN_WRITE_INTERVAL: Duration = Duration::from_millis(100);

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The live status: updates notify the writer task.
#[derive(Debug)]
pub(super) struct StatusHandle {
    tx: watch::Sender<WorkerStatus>,
}

impl StatusHandle {
    pub(super) fn new(initial: WorkerStatus) -> Self {
        Self {
            tx: watch::Sender::new(initial),
        }
    }

    /// Applies `f`, stamps `updated_at` and schedules a write.
    pub(super) fn update(&self, f: impl FnOnce(&mut WorkerStatus)) {
        self.tx.send_modify(|s| {
            f(s);
            s.updated_at = unix_now();
        });
    }

    /// Records liveness; writes only when the second changed.
    pub(super) fn alive(&self) {
        let now = unix_now();
        self.tx.send_if_modified(|s| {
            if s.last_heartbeat_acked == Some(now) {
                return false;
            }
            s.last_heartbeat_acked = Some(now);
            s.updated_at = now;
            true
        });
    }

    pub(super) fn snapshot(&self) -> WorkerStatus {
        self.tx.borrow().clone()
    }

    /// Starts the task that writes every change to `path`, the current document first.
    pub(super) fn spawn_writer(&self, path: PathBuf) -> StatusWriter {
        let mut rx = self.tx.subscribe();
        rx.mark_changed();
        let close = CancellationToken::new();
        let closed = close.clone();
        let task = tokio::spawn(async move {
            let mut warned = false;
            loop {
                let closing = tokio::select! {
                    changed = rx.changed() => changed.is_err(),
                    () = closed.cancelled() => true,
                };
                let doc = rx.borrow_and_update().clone();
                let path = path.clone();
                let written = tokio::task::spawn_blocking(move || write(&path, &doc)).await;
                match written {
                    Ok(Ok(())) => warned = false,
                    Ok(Err(e)) if !warned => {
                        warned = true;
                        tracing::warn!(error = %e, "cannot write the worker status file");
                    }
                    _ => {}
                }
                if closing {
                    break;
                }
                // Changes in the meantime are coalesced into the next write; stopping cuts
                // the wait short so the final state is written at once.
                tokio::select! {
                    () = tokio::time::sleep(MIN_WRITE_INTERVAL) => {}
                    () = closed.cancelled() => {}
                }
            }
        });
        StatusWriter { task, close }
    }
}

/// The task writing `worker-status.json`.
#[derive(Debug)]
pub(super) struct StatusWriter {
    task: JoinHandle<()>,
    close: CancellationToken,
}

impl StatusWriter {
    /// Writes the latest document (after any write in progress) and ends the task.
    pub(super) async fn finish(self) {
        self.close.cancel();
        let _ = self.task.await;
    }
}

fn write(path: &Path, status: &WorkerStatus) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes, WORKER_STATUS_MODE)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::domain::{Runtime, WorkerId};

    fn sample() -> WorkerStatus {
        WorkerStatus {
            state: WorkerState::Connecting,
            orchestrator_url: "http://127.0.0.1:1".into(),
            worker_id: WorkerId::parse("gpu-box-1").unwrap(),
            runtime: Runtime::Echo,
            models: vec!["m".into()],
            capacity: 2,
            connected_since: None,
            last_heartbeat_acked: None,
            heartbeat_interval_s: None,
            online_window_s: None,
            current_jobs: Vec::new(),
            counters: Counters::default(),
            runtime_healthy: true,
            runtime_detail: None,
            last_error: None,
            retry_at: None,
            pid: 1,
            version: "0".into(),
            updated_at: 0,
        }
    }

    #[tokio::test]
    async fn writer_writes_changes_and_the_last_state_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/worker-status.json");
        let handle = StatusHandle::new(sample());
        let writer = handle.spawn_writer(path.clone());
        handle.update(|s| s.state = WorkerState::Online);
        handle.alive();
        handle.update(|s| s.state = WorkerState::Stopped);
        writer.finish().await;
        let back = WorkerStatus::read(&path).unwrap().unwrap();
        assert_eq!(back.state, WorkerState::Stopped);
        assert!(back.last_heartbeat_acked.is_some());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            WorkerStatus::read(&dir.path().join("none"))
                .unwrap()
                .is_none()
        );
        let json = serde_json::to_value(&back).unwrap();
        assert_eq!(json["state"], "stopped");
    }
}
