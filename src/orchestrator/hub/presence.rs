//! Presence in the store: written when a connection opens and closes, and for all connected
//! workers in one batched transaction every [`FLUSH_EVERY`], never per heartbeat. The registry
//! (`GET /api/workers/{id}`) reads live presence from the hub and falls back to the store.

use std::time::Duration;

use tokio::sync::watch;

use crate::domain::WorkerId;
use crate::orchestrator::state::AppState;
use crate::orchestrator::store::Presence;

/// How often connected workers' last heartbeats are written.
pub const FLUSH_EVERY: Duration = Duration::from_mins(1);

/// Records a connection opening (in the background).
pub fn connected(state: &AppState, id: WorkerId, now: u64) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = state
            .store
            .set_presence(id.clone(), Presence::Connected(now))
            .await
        {
            tracing::error!(worker_id = %id, error = %e, "cannot record a connection");
        }
    });
}

/// Records a connection closing, unless a newer connection of the worker is already up.
pub fn disconnected(state: &AppState, id: WorkerId, last_seen: u64) {
    let state = state.clone();
    tokio::spawn(async move {
        if state.hub.get(&id).is_some() {
            return;
        }
        if let Err(e) = state
            .store
            .set_presence(id.clone(), Presence::Disconnected { last_seen })
            .await
        {
            tracing::error!(worker_id = %id, error = %e, "cannot record a disconnection");
        }
    });
}

/// Writes every connected worker's last heartbeat now.
pub async fn flush(state: &AppState) {
    let seen = state.hub.last_seen_all();
    if seen.is_empty() {
        return;
    }
    let n = seen.len();
    if let Err(e) = state.store.touch_workers(seen).await {
        tracing::error!(error = %e, workers = n, "cannot write last_seen");
    }
}

/// Flushes every [`FLUSH_EVERY`] until `stop` turns true, then once more.
pub async fn flush_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(FLUSH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => flush(&state).await,
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
}
