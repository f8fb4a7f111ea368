//! `AppState`: what every handler shares: the store, the resolved config, the hub of connected
//! workers, metrics, rate limiters and the prebuilt `OpenAPI` document.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::FromRef;

use super::config::OrchestratorConfig;
use super::hub::Hub;
use super::hub::presence::PresenceQueue;
use super::key_cache::{KeyCache, PROVEN_TTL};
use super::metrics::Metrics;
use super::quota::{ClientGrant, Quotas};
use super::rate_limit::RateLimiter;
use super::replica::Node;
use super::store::{KeySha256, Store};

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
    /// Failed authentications per client address.
    pub auth_failure_limit: RateLimiter,
    /// Failed authentications per presented credential (`auth::presented`).
    pub credential_failure_limit: RateLimiter<KeySha256>,
    /// Credentials that passed authentication lately: their address's lockout does not
    /// stop them.
    pub proven: KeyCache,
    /// Client keys found valid a moment ago, with their quotas (the gateway's hot path).
    pub client_keys: KeyCache<ClientGrant>,
    /// Each client key's requests-per-minute bucket on this replica.
    pub quotas: Quotas,
    pub started: Instant,
    pub openapi: Bytes,
    /// This orchestrator as a replica among several on one database, when configured.
    pub replica: Option<Node>,
    /// The leaderboard's figures, cached per window.
    pub leaderboards: super::discovery::Leaderboards,
}

impl AppState {
    /// The state; on a tokio runtime, its presence writer is spawned too.
    pub fn new(config: OrchestratorConfig, store: Arc<dyn Store>) -> Self {
        Self::with_replica(config, store, None)
    }

    /// [`AppState::new`], as the replica `replica` when it is one.
    pub fn with_replica(
        config: OrchestratorConfig,
        store: Arc<dyn Store>,
        replica: Option<Node>,
    ) -> Self {
        let (presence, writer) = PresenceQueue::new(Arc::clone(&store));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(writer);
        }
        Self(Arc::new(Shared {
            presence,
            register_limit: RateLimiter::new(config.rate_limits.register),
            auth_failure_limit: RateLimiter::new(config.rate_limits.auth_failures),
            credential_failure_limit: RateLimiter::new(config.rate_limits.auth_failures),
            proven: KeyCache::with_ttl(PROVEN_TTL),
            openapi: Bytes::from(super::openapi::document().to_string()),
            metrics: Metrics::default(),
            hub: Hub::new(std::time::Duration::from_secs(config.online_window_s)),
            client_keys: KeyCache::default(),
            quotas: Quotas::default(),
            started: Instant::now(),
            replica,
            leaderboards: super::discovery::Leaderboards::default(),
            store,
            config,
        }))
    }

    /// Records a failed authentication from `ip` presenting `credential` (wrong enrollment
    /// key, token or admin key): it counts against both.
    pub fn auth_failed(&self, ip: IpAddr, credential: Option<KeySha256>) {
        tracing::warn!(%ip, "authentication failed");
        self.auth_failure_limit.consume(ip);
        if let Some(credential) = credential {
            self.credential_failure_limit.consume(credential);
        }
    }

    /// Records that `credential` passed authentication.
    pub fn auth_succeeded(&self, credential: Option<KeySha256>) {
        if let Some(credential) = credential {
            self.proven.remember(credential, Instant::now());
        }
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
