//! The background sweeper, started with the server: every `tasks.sweep_interval_ms` it asks
//! the store to apply what time has decided (lapsed leases → open or abandoned, passed
//! deadlines → expired, evaluator timeouts → the configured policy), each move through
//! `domain::transition` inside the store's transaction. Stops when the server shuts down.
//! With several orchestrators on one database only the holder of the store's sweeper lease
//! sweeps (`Store::hold_lease`); another takes the lease within one interval of its loss.

use std::time::Duration;

use tokio::sync::watch;

use super::engine::{self, SweepReport};
use crate::orchestrator::state::{AppState, unix_now_ms};
use crate::orchestrator::store::Singleton;

/// At most this many of each kind per transaction; a full batch is followed by another at once.
pub const BATCH: usize = 500;

/// Sweeps every interval until `stop` turns true.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_millis(state.config.tasks.sweep_interval_ms.max(1));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        // Several orchestrators on one database: only the lease holder sweeps; another takes
        // over at its next tick once the holder is gone.
        match state.store.hold_lease(Singleton::Sweeper).await {
            Ok(true) => {
                sweep_once(&state).await;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot check the sweeper's lease; retrying"),
        }
    }
    tracing::debug!("task sweeper stopped");
}

/// Sweeps until nothing due is left (batch by batch); returns the total.
pub async fn sweep_once(state: &AppState) -> SweepReport {
    let policy = state.config.tasks.settle_policy();
    let mut total = SweepReport::default();
    loop {
        let report = match engine::sweep(&*state.store, unix_now_ms(), policy, BATCH).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "task sweep failed; retrying at the next interval");
                return total;
            }
        };
        state.metrics.task_sweep(&report);
        state
            .metrics
            .settled("credited", &state.config.asset, report.credited);
        total.reopened += report.reopened;
        total.abandoned += report.abandoned;
        total.expired += report.expired;
        total.auto_completed += report.auto_completed;
        total.auto_rejected += report.auto_rejected;
        if report.total() > 0 {
            tracing::debug!(?report, "task sweep");
        }
        let full = [
            report.reopened + report.abandoned,
            report.expired,
            report.auto_completed + report.auto_rejected,
        ]
        .iter()
        .any(|n| *n >= BATCH);
        if !full {
            return total;
        }
    }
}
