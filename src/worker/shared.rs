//! `Shared`: the state every part of the daemon sees (config, runtime, job table, status,
//! the outgoing queue, readiness), and the frames built from it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{mpsc, watch};

use super::config::WorkerConfig;
use super::job_table::{JobTable, Outgoing};
use super::status::StatusHandle;
use crate::runtime::Backend;
use crate::wire::{PROTOCOL_VERSION, WorkerMessage};

#[derive(Debug)]
pub(super) struct Shared {
    pub config: WorkerConfig,
    pub backend: Arc<dyn Backend>,
    jobs: Mutex<JobTable>,
    pub status: StatusHandle,
    /// Chunks and finished-job notices, in order, for the current connection.
    pub out: mpsc::Sender<Outgoing>,
    /// The runtime's last health verdict.
    pub healthy: watch::Receiver<bool>,
    /// True once the process drains (SIGTERM): no new jobs, exit when idle.
    pub draining: watch::Sender<bool>,
    seq: AtomicU64,
}

impl Shared {
    pub(super) fn new(
        config: WorkerConfig,
        backend: Arc<dyn Backend>,
        status: StatusHandle,
        out: mpsc::Sender<Outgoing>,
        healthy: watch::Receiver<bool>,
    ) -> Self {
        Self {
            config,
            backend,
            jobs: Mutex::new(JobTable::default()),
            status,
            out,
            healthy,
            draining: watch::Sender::new(false),
            seq: AtomicU64::new(0),
        }
    }

    /// The job table. A panic while it was held cannot leave it inconsistent (every update is
    /// one map operation), so a poisoned lock is used as is.
    pub(super) fn table(&self) -> MutexGuard<'_, JobTable> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Draining, with nothing left to run or to deliver: the process may exit.
    pub(super) fn drained(&self) -> bool {
        self.is_draining() && self.table().is_idle()
    }

    pub(super) fn hello(&self) -> WorkerMessage {
        let c = &self.config;
        WorkerMessage::Hello {
            protocol: PROTOCOL_VERSION,
            worker_id: c.worker_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            runtime: c.runtime,
            models: c.models.clone(),
            capacity: c.capacity,
            proof: None,
        }
    }

    /// The next heartbeat; `refusing` adds the connection's own drain.
    pub(super) fn heartbeat(&self, refusing: bool) -> WorkerMessage {
        WorkerMessage::Heartbeat {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            in_flight: self.table().in_flight(),
            ready: *self.healthy.borrow() && !self.is_draining() && !refusing,
        }
    }
}
