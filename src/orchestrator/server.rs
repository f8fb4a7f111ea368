//! Running the orchestrator: open the store, bind, announce `listening on http://ADDR` on
//! stdout (tests bind port 0 and read it), serve until SIGTERM or SIGINT, then stop accepting,
//! send `drain` to every worker, let in-flight jobs finish within `drain_timeout_s`, close the
//! worker connections and stop. The task market's sweeper runs beside the server and stops
//! with it.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use super::config::{ConfigError, Database, OrchestratorConfig};
use super::hub::{presence, session};
use super::market::sweeper;
use super::replica::Node;
use super::routes;
use super::state::{AppState, unix_now};
use super::store::{PgStore, SqliteStore, Store, StoreError};
use crate::domain::ReplicaId;

/// After the drain, how long answers still streaming may take to end.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Why the orchestrator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(std::io::Error),
}

/// The router over a store: for in-process tests (no socket) and for [`run`].
pub fn app(config: OrchestratorConfig, store: Arc<dyn Store>) -> Router {
    routes::router(AppState::new(config, store))
}

/// The origins workers' signatures must name (docs/SECURITY.md, "Signed requests"): the
/// configured ones, else the bound address's own (`http://IP:PORT`, and `http://localhost:PORT`
/// on loopback). Never the request's `Host` header, which the sender chooses: a hostile
/// orchestrator relaying a worker's signatures would simply name itself there. Listening on
/// every interface has no address of its own to name, so it needs `origins`.
fn effective_origins(configured: &[String], addr: SocketAddr) -> Result<Vec<String>, ConfigError> {
    if !configured.is_empty() {
        return Ok(configured.to_vec());
    }
    if addr.ip().is_unspecified() {
        return Err(ConfigError::Invalid(format!(
            "listening on {addr} (every interface) needs `origins` in orchestrator.toml: the URLs \
             workers reach this orchestrator by, e.g. origins = [\"http://gpu-hub.lan:{}\"] or \
             [\"https://orch.example\"]; workers sign for one of them, and a signature naming \
             any other is refused",
            addr.port()
        )));
    }
    let mut origins = vec![format!("http://{addr}")];
    if addr.ip().is_loopback() {
        origins.push(format!("http://localhost:{}", addr.port()));
    }
    Ok(origins)
}

/// Opens the store `database` names (PostgreSQL when `database_url` is set, else the `SQLite`
/// file), applying pending migrations.
pub async fn open_store(database: &Database) -> Result<Arc<dyn Store>, StoreError> {
    open_store_as(database, None).await
}

/// [`open_store`], recording the worker connections it opens as held by `replica`.
async fn open_store_as(
    database: &Database,
    replica: Option<ReplicaId>,
) -> Result<Arc<dyn Store>, StoreError> {
    match database {
        Database::Postgres { url, pool_size } => {
            let store = PgStore::connect(url.expose(), *pool_size).await?;
            Ok(Arc::new(match replica {
                Some(id) => store.as_replica(id),
                None => store,
            }))
        }
        Database::Sqlite { path, synchronous } => {
            let (path, synchronous) = (path.clone(), *synchronous);
            let store =
                tokio::task::spawn_blocking(move || SqliteStore::open_with(&path, synchronous))
                    .await
                    .map_err(|e| StoreError::Backend(e.to_string()))??;
            Ok(Arc::new(store))
        }
    }
}

/// Opens the store the config names, binds, and serves until a shutdown signal; then drains
/// (see [`drain`]) and stops.
pub async fn run(config: OrchestratorConfig) -> Result<(), ServeError> {
    raise_open_file_limit();
    let replica_id = config.replica.as_ref().map(|r| r.id.clone());
    let store = open_store_as(&config.database, replica_id).await?;
    let database = config.database.shown();
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    let mut config = config;
    config.origins = effective_origins(&config.origins, addr).map_err(ServeError::Config)?;
    tracing::info!(
        %addr,
        %database,
        registration = %config.registration,
        "orchestrator started"
    );
    if config.open {
        tracing::warn!(
            "--open: anyone who can reach this address may register workers and use the gateway"
        );
    }
    let replica = match config.replica.clone() {
        Some(replica) => {
            let node = Node::new(
                replica,
                addr,
                config.online_window_s,
                Duration::from_secs(config.job_timeout_s),
            )
            .map_err(|e| ServeError::Config(ConfigError::Invalid(e)))?;
            // Announced before serving, so the others can forward here at once.
            store
                .announce_replica(node.config.id.clone(), node.url.to_string(), unix_now())
                .await?;
            tracing::info!(replica = %node.config.id, url = %node.url, "serving as a replica");
            Some(node)
        }
        None => None,
    };
    announce(addr);
    let drain_timeout = Duration::from_secs(config.drain_timeout_s);
    let state = AppState::with_replica(config, store, replica);
    let app = routes::router(state.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let flusher = tokio::spawn(flush_presence_loop(state.clone(), stop_rx.clone()));
    let sweeping = tokio::spawn(sweeper::run(state.clone(), stop_rx.clone()));
    let server = super::accept::serve(listener, app, state.config.http, stop_rx);
    let mut server = tokio::spawn(server);
    tokio::select! {
        () = shutdown_signal() => {}
        joined = &mut server => {
            let _ = stop_tx.send(true);
            return joined.map_err(|e| ServeError::Serve(std::io::Error::other(e.to_string())));
        }
    }
    // Stop accepting, then let in-flight jobs finish within the bound.
    let _ = stop_tx.send(true);
    drain(&state, drain_timeout).await;
    match tokio::time::timeout(CLOSE_GRACE, &mut server).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the server task failed"),
        Err(_) => {
            server.abort();
            tracing::warn!("open HTTP connections did not close in time; stopping anyway");
        }
    }
    let _ = flusher.await;
    let _ = sweeping.await;
    tracing::info!("orchestrator stopped");
    Ok(())
}

/// Writes connected workers' last heartbeats until `stop` turns true: every
/// [`presence::FLUSH_EVERY`] when this orchestrator owns its database, every
/// [`presence::flush_every`] of the online window when others share it (they read presence
/// from the store).
async fn flush_presence_loop(state: AppState, mut stop: watch::Receiver<bool>) {
    let period = state
        .config
        .shared_online_window()
        .map_or(presence::FLUSH_EVERY, presence::flush_every);
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {
                presence::flush(&state.hub, state.store.as_ref()).await;
                if let Some(node) = &state.replica {
                    let announced = state
                        .store
                        .announce_replica(node.config.id.clone(), node.url.to_string(), unix_now())
                        .await;
                    if let Err(e) = announced {
                        tracing::warn!(error = %e, "cannot announce this replica");
                    }
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
}

/// Graceful drain: no new jobs, `drain` to every worker, in-flight jobs get `bound` to finish
/// (and be recorded), then every worker connection is closed (jobs still running fail with
/// `ORCHESTRATOR_DRAINING`) and presence is written.
async fn drain(state: &AppState, bound: Duration) {
    state.hub.begin_drain();
    tracing::info!(
        jobs = state.hub.unfinished_jobs(),
        workers = state.hub.connected(),
        bound_s = bound.as_secs(),
        "draining: no new jobs; waiting for in-flight jobs"
    );
    let deadline = Instant::now() + bound;
    while state.hub.unfinished_jobs() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = state.hub.unfinished_jobs();
    if left > 0 {
        tracing::warn!(
            jobs = left,
            "in-flight jobs did not finish within the drain bound"
        );
    }
    presence::flush(&state.hub, state.store.as_ref()).await;
    state.hub.close_all(
        session::codes::SHUTTING_DOWN,
        "the orchestrator is shutting down",
    );
    let until = Instant::now() + Duration::from_secs(2);
    while (state.hub.connected() > 0 || state.hub.unfinished_jobs() > 0) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    state.presence.settle(Duration::from_secs(2)).await;
}

/// Raises the soft open-file limit to the hard one: every worker connection is a socket.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => tracing::warn!(error = %e, soft, "cannot raise the open-file limit"),
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

/// The one line on stdout: where to reach us.
fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_come_from_config_or_the_bound_address_never_from_nowhere() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            effective_origins(&[], at("127.0.0.1:8787")).unwrap(),
            ["http://127.0.0.1:8787", "http://localhost:8787"]
        );
        assert_eq!(
            effective_origins(&[], at("10.0.0.5:8787")).unwrap(),
            ["http://10.0.0.5:8787"]
        );
        let e = effective_origins(&[], at("0.0.0.0:8787"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("origins"), "{e}");
        let configured = ["https://orch.example".to_owned()];
        assert_eq!(
            effective_origins(&configured, at("0.0.0.0:8787")).unwrap(),
            configured
        );
    }
}
