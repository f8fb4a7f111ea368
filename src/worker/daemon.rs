//! The daemon's main loop: check the runtime, connect, run a session, back off with jitter,
//! reconnect; keep the runtime's health fresh in the background; drain on request (no new
//! jobs, in-flight ones finish and their results are delivered) and exit when drained or when
//! the drain timeout runs out.

use std::path::Path;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::config::{Options, WorkerConfig};
use super::connection;
use super::error::WorkerError;
use super::jobs::Outgoing;
use super::lifeline;
use super::session::{self, Ended};
use super::shared::Shared;
use super::status::{Counters, StatusHandle, WorkerState, WorkerStatus, unix_now};
use crate::config::WorkerEnv;
use crate::runtime::{self, Backend};

/// Outgoing items queued between job tasks and the connection.
const OUT_QUEUE: usize = 1024;

/// How a caller stops the worker: [`drain`](Self::drain) takes no new jobs and exits once the
/// jobs in flight are done and delivered (or at the drain timeout); [`abort`](Self::abort)
/// cancels them now.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    drain: CancellationToken,
    abort: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn drain(&self) {
        self.drain.cancel();
    }

    pub fn abort(&self) {
        self.abort.cancel();
    }
}

/// `basis worker --env PATH`: reads and validates the env file, builds the runtime, drains on
/// SIGTERM or SIGINT (a second one aborts) or, started by a supervisor, when that supervisor is
/// gone (the `lifeline` on stdin), and runs until drained.
pub async fn run_from_env_file(env_path: &Path, options: Options) -> Result<(), WorkerError> {
    let env = WorkerEnv::read(env_path)?;
    let config = WorkerConfig::from_env(&env, options, |k| std::env::var(k).ok())?;
    let backend = runtime::build(&config.runtime_spec)?;
    let shutdown = Shutdown::new();
    let mut term = signal(SignalKind::terminate()).map_err(WorkerError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(WorkerError::Signals)?;
    let signals = shutdown.clone();
    let listener = tokio::spawn(async move {
        for step in 0..2 {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if step == 0 {
                tracing::info!("signal received: draining (a second signal stops at once)");
                signals.drain();
            } else {
                tracing::warn!("second signal: cancelling the jobs in flight");
                signals.abort();
            }
        }
    });
    if lifeline::stdin_is_lifeline() {
        let orphaned = shutdown.clone();
        // Drain first: with the supervisor gone, stderr may be a pipe nobody reads.
        let gone = move || {
            orphaned.drain();
            tracing::warn!("the supervisor is gone (its lifeline closed): draining");
        };
        if let Err(e) = lifeline::watch_stdin(gone) {
            tracing::warn!(error = %e, "cannot watch the supervisor's lifeline");
        }
    }
    let result = run(config, backend, shutdown).await;
    listener.abort();
    result
}

/// Runs the worker until `shutdown` drains or aborts it.
pub async fn run(
    config: WorkerConfig,
    backend: Arc<dyn Backend>,
    shutdown: Shutdown,
) -> Result<(), WorkerError> {
    let (out_tx, mut out_rx) = mpsc::channel(OUT_QUEUE);
    let first = tokio::time::timeout(config.health_interval, backend.health())
        .await
        .unwrap_or_else(|_| runtime::Health::down("the health check did not answer in time"));
    let (health_tx, health_rx) = watch::channel(first.healthy);
    let status = StatusHandle::new(initial_status(&config, &first));
    let writer = status.spawn_writer(config.status_path.clone());
    let shared = Arc::new(Shared::new(config, backend, status, out_tx, health_rx));
    tracing::info!(
        worker_id = %shared.config.worker_id,
        runtime = %shared.config.runtime,
        orchestrator = %public_url(&shared.config.orchestrator_url),
        healthy = first.healthy,
        detail = %first.detail,
        "worker starting"
    );
    let models_check = tokio::spawn({
        let shared = Arc::clone(&shared);
        async move { warn_missing_models(&shared).await }
    });
    let health = tokio::spawn(watch_health(Arc::clone(&shared), health_tx));
    let stop = shutdown.abort.clone();
    let drainer = tokio::spawn(drain_on(Arc::clone(&shared), shutdown));

    // The connection loop runs as a task on the runtime's worker threads, not on the thread
    // blocked in `main`: a job task that hands it a chunk or a result then wakes it on its own
    // thread (tokio's LIFO slot) instead of unparking another thread.
    let connection = tokio::spawn({
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        async move { connect_loop(&shared, &mut out_rx, &stop).await }
    });
    if let Err(e) = connection.await {
        tracing::error!(error = %e, "the worker channel task failed; stopping");
    }

    shared.table().cancel_all();
    health.abort();
    drainer.abort();
    models_check.abort();
    let counters = shared.status.snapshot().counters;
    shared.status.update(|s| {
        s.state = WorkerState::Stopped;
        s.connected_since = None;
        s.retry_at = None;
    });
    tracing::info!(
        completed = counters.jobs_completed,
        failed = counters.jobs_failed,
        "worker stopped"
    );
    writer.finish().await;
    Ok(())
}

/// Connect → session → back off, until drained or stopped.
async fn connect_loop(
    shared: &Arc<Shared>,
    out: &mut mpsc::Receiver<Outgoing>,
    stop: &CancellationToken,
) {
    let mut backoff = Backoff::new(shared.config.backoff);
    let mut sessions: u64 = 0;
    // Which orchestrator to try: the primary, then each fallback replica in turn after a
    // failed attempt or a lost session (BASIS_ORCHESTRATOR_FALLBACK_URLS).
    let mut target: usize = 0;
    let hello = shared.hello();
    while !shared.drained() && !stop.is_cancelled() {
        let draining = shared.is_draining();
        shared.status.update(|s| {
            s.state = if draining {
                WorkerState::Draining
            } else {
                WorkerState::Connecting
            };
            s.retry_at = None;
        });
        let opened = tokio::select! {
            opened = discarding(
                Box::pin(connection::open(&shared.config, shared.config.connect_url_for(target), &hello)),
                out,
            ) => opened,
            () = stop.cancelled() => break,
            () = until_drained(shared) => break,
        };
        let error = match opened {
            Ok((ws, welcome)) => {
                backoff.reset();
                sessions += 1;
                let now = unix_now();
                shared.status.update(|s| {
                    s.state = if shared.is_draining() {
                        WorkerState::Draining
                    } else {
                        WorkerState::Online
                    };
                    s.connected_since = Some(now);
                    s.last_heartbeat_acked = Some(now);
                    s.heartbeat_interval_s = Some(welcome.heartbeat_interval_s);
                    s.online_window_s = Some(welcome.online_window_s);
                    s.last_error = None;
                    if sessions > 1 {
                        s.counters.reconnects += 1;
                    }
                });
                tracing::info!(session = sessions, "connected to the orchestrator");
                let ended = Box::pin(session::run(shared, ws, welcome, sessions, out, stop)).await;
                shared.status.update(|s| s.connected_since = None);
                match ended {
                    Ended::Exit => break,
                    Ended::Lost(e) => e,
                }
            }
            Err(e) => e,
        };
        tracing::warn!(error = %error, "worker channel down");
        if !shared.config.fallback_connect_urls.is_empty() {
            target += 1;
            tracing::info!(
                next = %public_url(shared.config.connect_url_for(target)),
                "trying the next orchestrator"
            );
        }
        shared
            .status
            .update(|s| s.last_error = Some(error.last_error()));
        if shared.drained() {
            break;
        }
        let delay = backoff.next_delay();
        let retry_at = unix_now() + delay.as_secs();
        shared.status.update(|s| {
            s.state = WorkerState::Backoff;
            s.retry_at = Some(retry_at);
        });
        tokio::select! {
            () = discarding(tokio::time::sleep(delay), out) => {}
            () = stop.cancelled() => break,
            () = until_drained(shared) => break,
        }
    }
}

/// Runs `work` while emptying `out`: with no connection, chunks go nowhere, and finished
/// results wait in the job table for the next one.
async fn discarding<F: Future>(work: F, out: &mut mpsc::Receiver<Outgoing>) -> F::Output {
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return result,
            Some(_) = out.recv() => {}
        }
    }
}

/// Returns once the worker is draining with nothing left to run or deliver (checked every
/// 100 ms: with no connection, nothing else would notice).
async fn until_drained(shared: &Shared) {
    while !shared.drained() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Waits for a drain or abort, then drains; aborts at the drain timeout.
async fn drain_on(shared: Arc<Shared>, shutdown: Shutdown) {
    tokio::select! {
        () = shutdown.drain.cancelled() => {}
        () = shutdown.abort.cancelled() => {}
    }
    shared.draining.send_replace(true);
    shared.status.update(|s| s.state = WorkerState::Draining);
    let in_flight = shared.table().in_flight();
    tracing::info!(in_flight, "draining: no new jobs");
    let timeout = shared.config.drain_timeout;
    if tokio::time::timeout(timeout, shutdown.abort.cancelled())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = timeout.as_secs(),
            "drain timeout: cancelling the jobs still in flight"
        );
        shutdown.abort.cancel();
    }
}

/// Re-checks the runtime every `health_interval`; publishes changes.
async fn watch_health(shared: Arc<Shared>, tx: watch::Sender<bool>) {
    let every = shared.config.health_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        let health = match tokio::time::timeout(every, shared.backend.health()).await {
            Ok(h) => h,
            Err(_) => runtime::Health::down("the health check did not answer in time"),
        };
        let flipped = tx.send_if_modified(|healthy| {
            let flipped = *healthy != health.healthy;
            *healthy = health.healthy;
            flipped
        });
        if flipped {
            tracing::info!(healthy = health.healthy, detail = %health.detail, "runtime health changed");
        }
        let snapshot = shared.status.snapshot();
        if snapshot.runtime_healthy != health.healthy
            || snapshot.runtime_detail.as_deref() != Some(health.detail.as_str())
        {
            shared.status.update(|s| {
                s.runtime_healthy = health.healthy;
                s.runtime_detail = Some(health.detail);
            });
        }
    }
}

/// Logs the announced models the runtime does not list (jobs for them would fail).
async fn warn_missing_models(shared: &Shared) {
    let Ok(Ok(served)) =
        tokio::time::timeout(shared.config.health_interval, shared.backend.models()).await
    else {
        return;
    };
    for model in &shared.config.models {
        let base = |m: &str| m.strip_suffix(":latest").unwrap_or(m).to_owned();
        if !served.iter().any(|s| base(s) == base(model)) {
            tracing::warn!(%model, "the runtime does not list this model; its jobs will fail");
        }
    }
}

/// The URL without any user name or password in it.
fn public_url(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    let _ = url.set_username("");
    url.to_string()
}

fn initial_status(config: &WorkerConfig, health: &runtime::Health) -> WorkerStatus {
    WorkerStatus {
        state: WorkerState::Connecting,
        orchestrator_url: public_url(&config.orchestrator_url),
        worker_id: config.worker_id.clone(),
        runtime: config.runtime,
        models: config.models.clone(),
        capacity: config.capacity,
        connected_since: None,
        last_heartbeat_acked: None,
        heartbeat_interval_s: None,
        online_window_s: None,
        current_jobs: Vec::new(),
        counters: Counters::default(),
        runtime_healthy: health.healthy,
        runtime_detail: Some(health.detail.clone()),
        last_error: None,
        retry_at: None,
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        updated_at: unix_now(),
    }
}
