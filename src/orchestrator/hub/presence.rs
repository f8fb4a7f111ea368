//! Presence in the store, never written per heartbeat: connection openings and closings go
//! through one queue to one writer task that applies them in order, many per transaction (a
//! reconnect storm of 10,000 workers is a handful of writes, not 10,000 fsyncs); connected
//! workers' last heartbeats are written in one batch every [`FLUSH_EVERY`] ([`flush`], driven by
//! the server). The registry (`GET /api/workers/{id}`) reads live presence from the hub and,
//! for a worker connected to another orchestrator on the same database, from the store
//! ([`online_in_store`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Hub;
use crate::domain::WorkerId;
use crate::orchestrator::store::{Presence, Store};

/// How often connected workers' last heartbeats are written, at most: see [`flush_every`].
pub const FLUSH_EVERY: Duration = Duration::from_mins(1);

/// How often to write connected workers' last heartbeats for an online window of
/// `online_window_s`: a third of it (at most [`FLUSH_EVERY`], at least 1 s), so that another
/// orchestrator on the same database, reading the store, sees a worker connected here as
/// online within its window.
pub fn flush_every(online_window_s: u64) -> Duration {
    Duration::from_secs((online_window_s / 3).max(1)).min(FLUSH_EVERY)
}

/// Whether a worker whose stored presence is `connected_since` / `last_seen` (unix seconds)
/// counts as online at `now` under `online_window_s`: connected to some orchestrator, and
/// heard from within the window. The registry's view of workers connected elsewhere.
pub fn online_in_store(
    connected_since: Option<u64>,
    last_seen: Option<u64>,
    now: u64,
    online_window_s: u64,
) -> bool {
    connected_since.is_some()
        && last_seen.is_some_and(|seen| now.saturating_sub(seen) <= online_window_s)
}
/// At most this many presence changes per transaction.
const BATCH: usize = 2048;

enum Item {
    Change(WorkerId, Presence),
    /// Answered once everything queued before it is written.
    Barrier(oneshot::Sender<()>),
}

/// The queue of presence changes (cheap to clone).
#[derive(Debug, Clone)]
pub struct PresenceQueue(mpsc::UnboundedSender<Item>);

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("presence item")
    }
}

impl PresenceQueue {
    /// The queue, and its writer (spawn it on a runtime; until then changes wait).
    pub fn new(store: Arc<dyn Store>) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), write_loop(store, rx))
    }

    pub fn connected(&self, id: WorkerId, now: u64) {
        let _ = self.0.send(Item::Change(id, Presence::Connected(now)));
    }

    /// The connection `id` made at `connected_at` closed, last heard at `last_seen`.
    pub fn disconnected(&self, id: WorkerId, last_seen: u64, connected_at: u64) {
        let _ = self.0.send(Item::Change(
            id,
            Presence::Disconnected {
                last_seen,
                connected_at,
            },
        ));
    }

    /// Waits (at most `limit`) until every change queued so far is written.
    pub async fn settle(&self, limit: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.0.send(Item::Barrier(tx)).is_ok() {
            let _ = tokio::time::timeout(limit, rx).await;
        }
    }
}

async fn write_loop(store: Arc<dyn Store>, mut rx: mpsc::UnboundedReceiver<Item>) {
    let mut changes = Vec::new();
    let mut barriers = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(item) = next {
            match item {
                Item::Change(id, p) => changes.push((id, p)),
                Item::Barrier(done) => barriers.push(done),
            }
            next = if changes.len() < BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !changes.is_empty() {
            let n = changes.len();
            if let Err(e) = store.set_presence(std::mem::take(&mut changes)).await {
                tracing::error!(error = %e, changes = n, "cannot record worker presence");
            }
        }
        for done in barriers.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes every connected worker's last heartbeat (as `hub` knows it) to `store` now.
pub async fn flush(hub: &Hub, store: &dyn Store) {
    let seen = hub.last_seen_all();
    if seen.is_empty() {
        return;
    }
    let n = seen.len();
    if let Err(e) = store.touch_workers(seen).await {
        tracing::error!(error = %e, workers = n, "cannot write last_seen");
    }
}
