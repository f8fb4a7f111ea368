//! [`Live`]: one welcomed worker connection as the hub holds it. Everything the heartbeat path
//! touches is an atomic, so a heartbeat costs a JSON parse and three stores, with no lock and
//! no database write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

use super::jobs::JobEntry;
use crate::domain::{JobId, Runtime, WalletAddress, WorkerId};
use crate::wire::OrchestratorMessage;

/// What the connection's task sends to the worker.
#[derive(Debug)]
pub enum Outbound {
    Frame(OrchestratorMessage),
    /// Send `error {code, message}`, then close the connection.
    Close {
        code: &'static str,
        message: String,
    },
}

/// What the worker said in its `hello`, checked.
#[derive(Debug, Clone)]
pub struct Hello {
    pub worker_id: WorkerId,
    pub wallet: WalletAddress,
    pub runtime: Runtime,
    pub models: Vec<String>,
    pub capacity: u32,
    pub version: String,
    /// Its labels, as registered.
    pub labels: Vec<String>,
}

/// A connected worker.
#[derive(Debug)]
pub struct Live {
    pub hello: Hello,
    /// Tells this connection from an earlier or later one of the same worker.
    pub conn: u64,
    /// Unix seconds when the connection was welcomed.
    pub connected_since: u64,
    /// The hub clock (ms) at the last heartbeat (or the hello).
    last_beat_ms: AtomicU64,
    ready: AtomicBool,
    /// The worker's own in-flight count from its last heartbeat (informational).
    reported_in_flight: AtomicU32,
    /// Jobs routed here and not yet finished: what routing counts against `capacity`.
    assigned: AtomicU32,
    outbound: mpsc::UnboundedSender<Outbound>,
    jobs: Mutex<HashMap<JobId, JobEntry>>,
}

impl Live {
    pub fn new(
        hello: Hello,
        conn: u64,
        connected_since: u64,
        now_ms: u64,
        outbound: mpsc::UnboundedSender<Outbound>,
    ) -> Self {
        Self {
            hello,
            conn,
            connected_since,
            last_beat_ms: AtomicU64::new(now_ms),
            ready: AtomicBool::new(true),
            reported_in_flight: AtomicU32::new(0),
            assigned: AtomicU32::new(0),
            outbound,
            jobs: Mutex::new(HashMap::new()),
        }
    }

    pub fn worker_id(&self) -> &WorkerId {
        &self.hello.worker_id
    }

    /// Queues a frame; false once the connection is gone.
    pub fn send(&self, message: OrchestratorMessage) -> Result<(), OrchestratorMessage> {
        self.outbound
            .send(Outbound::Frame(message))
            .map_err(|e| match e.0 {
                Outbound::Frame(m) => m,
                Outbound::Close { .. } => OrchestratorMessage::Drain,
            })
    }

    /// Asks the connection's task to send `error` and close.
    pub fn close(&self, code: &'static str, message: impl Into<String>) {
        let _ = self.outbound.send(Outbound::Close {
            code,
            message: message.into(),
        });
    }

    /// Records a heartbeat; true when it made the worker routable again (it was not ready, or
    /// its last heartbeat was older than `window_ms`), so its capacity is free for waiters.
    pub fn beat(&self, now_ms: u64, window_ms: u64, ready: bool, in_flight: u32) -> bool {
        let was_online = self.is_online(now_ms, window_ms);
        self.last_beat_ms.store(now_ms, Ordering::Relaxed);
        let was_ready = self.ready.swap(ready, Ordering::Relaxed);
        self.reported_in_flight.store(in_flight, Ordering::Relaxed);
        ready && !(was_ready && was_online)
    }

    pub fn last_beat_ms(&self) -> u64 {
        self.last_beat_ms.load(Ordering::Relaxed)
    }

    /// Its last heartbeat is younger than the online window.
    pub fn is_online(&self, now_ms: u64, window_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_beat_ms()) < window_ms
    }

    /// Online and ready (its runtime is healthy and it is not draining).
    pub fn is_routable(&self, now_ms: u64, window_ms: u64) -> bool {
        self.is_online(now_ms, window_ms) && self.ready.load(Ordering::Relaxed)
    }

    pub fn serves(&self, model: &str) -> bool {
        self.hello.models.iter().any(|m| m == model)
    }

    pub fn has_label(&self, label: &str) -> bool {
        self.hello.labels.iter().any(|l| l == label)
    }

    /// Jobs routed here and not finished.
    pub fn in_flight(&self) -> u32 {
        self.assigned.load(Ordering::Acquire)
    }

    pub fn reported_in_flight(&self) -> u32 {
        self.reported_in_flight.load(Ordering::Relaxed)
    }

    /// Takes one unit of capacity, if one is free.
    pub fn try_reserve(&self) -> bool {
        let capacity = self.hello.capacity;
        self.assigned
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < capacity).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives one unit of capacity back.
    pub fn release(&self) {
        let _ = self
            .assigned
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// The jobs routed here and not finished.
    pub fn jobs(&self) -> MutexGuard<'_, HashMap<JobId, JobEntry>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes a finished job, giving its capacity back.
    pub fn finish(&self, job_id: &JobId) -> Option<JobEntry> {
        let entry = self.jobs().remove(job_id);
        if entry.is_some() {
            self.release();
        }
        entry
    }

    /// Removes every job (the connection ended).
    pub fn finish_all(&self) -> Vec<(JobId, JobEntry)> {
        let taken: Vec<_> = self.jobs().drain().collect();
        for _ in &taken {
            self.release();
        }
        taken
    }
}
