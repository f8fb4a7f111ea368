//! The orchestrator's accept loop: HTTP/1.1 (with upgrades, for the worker channel) on hyper,
//! with the limits of `[http]` ([`HttpLimits`]) that `axum::serve` does not have:
//!
//! - a header read timeout: a client that sends half its headers, nothing at all, or sits idle
//!   on a keep-alive connection is closed after `header_read_timeout` (hyper starts that timer
//!   whenever it waits for a request head, the first one and every next one);
//! - a body read timeout: the router's `RequestBodyTimeoutLayer` ends a request whose body
//!   pauses longer than `body_read_timeout` (see `routes::router`);
//! - a cap on open connections per peer address: one over the cap is closed at once.
//!
//! Upgraded connections (WebSockets) leave hyper once upgraded; their liveness is the
//! worker channel's heartbeat window. Every connection gets `TCP_NODELAY` (small frames leave
//! at once) and its peer address as axum's `ConnectInfo`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use super::config::HttpLimits;

/// Open connections per peer address.
#[derive(Debug, Default)]
struct Peers(Mutex<HashMap<IpAddr, u32>>);

/// One counted connection; dropping it gives the slot back.
#[derive(Debug)]
struct Slot {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    /// A slot for `ip`, unless it already holds `cap` connections.
    fn take(self: &Arc<Self>, ip: IpAddr, cap: Option<u32>) -> Option<Slot> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let open = map.entry(ip).or_insert(0);
        if cap.is_some_and(|cap| *open >= cap) {
            return None;
        }
        *open += 1;
        Some(Slot {
            peers: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.peers.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = map.get_mut(&self.ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `stop` turns true; then stops accepting, asks every open
/// connection to close after its current request, and returns once they all have (the
/// caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let peers = Arc::new(Peers::default());
    let connections = TaskTracker::new();
    loop {
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Some(slot) = peers.take(addr.ip(), limits.max_connections_per_ip) else {
            tracing::debug!(peer = %addr.ip(), "connection refused: too many open from this address");
            drop(tcp);
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
        connections.spawn(connection(
            tcp,
            addr,
            app.clone(),
            limits,
            stop.clone(),
            slot,
        ));
    }
    // Refuse new connections at once (a connect would otherwise wait in the backlog), then
    // let the open ones finish.
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Resolves once `stop` is true (or its sender is gone). Holds no borrow of the value across
/// an await, so the futures that wait on it stay `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One connection, until it closes, times out, or the server stops.
async fn connection(
    tcp: tokio::net::TcpStream,
    addr: SocketAddr,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
    _slot: Slot,
) {
    let service = tower::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(addr));
        app.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts, resets and malformed requests: the peer's doing, not the server's.
        tracing::debug!(peer = %addr.ip(), error = %e, "connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_holds_at_most_its_cap_and_a_dropped_slot_frees_one() {
        let peers = Arc::new(Peers::default());
        let ip = IpAddr::from([127, 0, 0, 1]);
        let first = peers.take(ip, Some(2));
        let second = peers.take(ip, Some(2));
        assert!(first.is_some() && second.is_some());
        assert!(peers.take(ip, Some(2)).is_none());
        assert!(peers.take(IpAddr::from([10, 0, 0, 1]), Some(2)).is_some());
        drop(first);
        assert!(peers.take(ip, Some(2)).is_some());
        assert!(peers.take(ip, None).is_some(), "no cap");
    }
}
