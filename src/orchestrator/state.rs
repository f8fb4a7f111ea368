//! `AppState`: what every handler shares: the store, the resolved config, the hub of connected
//! workers, metrics, rate limiters and the prebuilt `OpenAPI` document.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, Request};

use super::config::OrchestratorConfig;
use super::hub::Hub;
use super::hub::presence::PresenceQueue;
use super::key_cache::KeyCache;
use super::metrics::Metrics;
use super::rate_limit::RateLimiter;
use super::store::Store;

/// Shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub config: OrchestratorConfig,
    pub hub: Hub,
    /// Connection openings and closings on their way to the store.
    pub presence: PresenceQueue,
    pub metrics: Metrics,
    pub register_limit: RateLimiter,
    pub auth_failure_limit: RateLimiter,
    /// Client keys found valid a moment ago (the gateway's hot path).
    pub client_keys: KeyCache,
    pub started: Instant,
    pub openapi: Bytes,
}

impl AppState {
    /// The state; on a tokio runtime, its presence writer is spawned too.
    pub fn new(config: OrchestratorConfig, store: Arc<dyn Store>) -> Self {
        let (presence, writer) = PresenceQueue::new(Arc::clone(&store));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(writer);
        }
        Self(Arc::new(Shared {
            presence,
            register_limit: RateLimiter::new(config.rate_limits.register),
            auth_failure_limit: RateLimiter::new(config.rate_limits.auth_failures),
            openapi: Bytes::from(super::openapi::document().to_string()),
            metrics: Metrics::default(),
            hub: Hub::new(std::time::Duration::from_secs(config.online_window_s)),
            client_keys: KeyCache::default(),
            started: Instant::now(),
            store,
            config,
        }))
    }

    /// Records a failed authentication from `ip` (wrong enrollment key, token or admin key).
    pub fn auth_failed(&self, ip: IpAddr) {
        tracing::warn!(%ip, "authentication failed");
        self.auth_failure_limit.consume(ip);
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for Metrics {
    fn from_ref(state: &AppState) -> Metrics {
        state.metrics.clone()
    }
}

/// The peer address of a request (unspecified when served without connect info, as in
/// in-process tests).
pub fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ci| ci.0.ip())
}

/// Milliseconds since the Unix epoch (the task market's clock).
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
