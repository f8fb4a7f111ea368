//! Which other replica can serve a model now: the store's replica routes, cached for a
//! moment so a burst of gateway requests that find no local worker costs one query, not one
//! each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom as _;
use url::Url;

use crate::domain::ReplicaId;
use crate::orchestrator::store::{ReplicaRoute, Store};

/// How long a read of the routes is reused.
const FRESH: Duration = Duration::from_secs(1);

/// Another replica to try for a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub replica_id: ReplicaId,
    pub internal_url: Url,
    /// Its online workers serving the model.
    pub workers: u64,
}

/// The cached routes of the other replicas.
#[derive(Debug)]
pub struct Directory {
    me: ReplicaId,
    online_window_s: u64,
    /// Held across the refresh, so concurrent misses share one query.
    cache: tokio::sync::Mutex<Option<(Instant, Arc<Vec<ReplicaRoute>>)>>,
}

impl Directory {
    pub fn new(me: ReplicaId, online_window_s: u64) -> Self {
        Self {
            me,
            online_window_s,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// The other replicas' routes, at most [`FRESH`] old. A store error is logged and answers
    /// the last routes read (or none): forwarding is an extra chance, never a new failure.
    pub async fn routes(&self, store: &dyn Store, now_unix: u64) -> Arc<Vec<ReplicaRoute>> {
        let mut cache = self.cache.lock().await;
        if let Some((at, routes)) = cache.as_ref()
            && at.elapsed() < FRESH
        {
            return Arc::clone(routes);
        }
        let since = now_unix.saturating_sub(self.online_window_s);
        match store.replica_routes(self.me.clone(), since).await {
            Ok(routes) => {
                let routes = Arc::new(routes);
                *cache = Some((Instant::now(), Arc::clone(&routes)));
                routes
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the other replicas' routes");
                cache
                    .as_ref()
                    .map_or_else(Arc::default, |(_, routes)| Arc::clone(routes))
            }
        }
    }

    /// The replicas with online workers serving `model`, those with more such workers first
    /// (ties in random order, so the load spreads).
    pub async fn serving(&self, store: &dyn Store, model: &str, now_unix: u64) -> Vec<Target> {
        let routes = self.routes(store, now_unix).await;
        let mut targets: Vec<Target> = Vec::new();
        for r in routes
            .iter()
            .filter(|r| r.models.iter().any(|m| m == model))
        {
            if let Some(t) = targets.iter_mut().find(|t| t.replica_id == r.replica_id) {
                t.workers += r.workers;
                continue;
            }
            match Url::parse(&r.internal_url) {
                Ok(internal_url) => targets.push(Target {
                    replica_id: r.replica_id.clone(),
                    internal_url,
                    workers: r.workers,
                }),
                Err(e) => {
                    tracing::warn!(replica = %r.replica_id, error = %e, "a replica announced a malformed internal_url");
                }
            }
        }
        targets.shuffle(&mut rand::rng());
        targets.sort_by_key(|t| std::cmp::Reverse(t.workers));
        targets
    }
}
