//! Running the orchestrator: open the store, bind, announce `listening on http://ADDR` on
//! stdout (tests bind port 0 and read it), serve until SIGTERM or SIGINT, then drain in-flight
//! requests and close.

use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use super::config::{ConfigError, OrchestratorConfig};
use super::routes;
use super::state::AppState;
use super::store::{SqliteStore, Store, StoreError};

/// How long in-flight requests may take to finish after SIGTERM / SIGINT.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Opens the `SQLite` store named by the config, binds, and serves until a shutdown signal.
pub async fn run(config: OrchestratorConfig) -> Result<(), ServeError> {
    let db = config.db.clone();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&db))
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(
        %addr,
        db = %store.path().display(),
        registration = %config.registration,
        "orchestrator started"
    );
    if config.open {
        tracing::warn!("--open: anyone who can reach this address may register workers");
    }
    announce(addr);
    let app = app(config, Arc::new(store));
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stopping_tx.send(true);
    })
    .into_future();
    // In-flight requests get DRAIN_TIMEOUT after the signal; then we stop regardless.
    let deadline = async move {
        if stopping.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        result = server => result.map_err(ServeError::Serve)?,
        () = deadline => tracing::warn!(
            "in-flight requests did not finish within {} s of the signal; stopping anyway",
            DRAIN_TIMEOUT.as_secs()
        ),
    }
    tracing::info!("orchestrator stopped");
    Ok(())
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
