//! Discovery and reputation (docs/DISCOVERY.md): the network's and each worker's ERC-8004
//! registration files ([`files`]), the leaderboard ([`leaderboard`] ranks; [`Leaderboards`]
//! computes and caches), and `[discovery]` in orchestrator.toml ([`config`]).
//!
//! Everything here is built from what the orchestrator itself observed and stored; nothing is
//! signed. Where the chain is involved the worker's owner signs with their own wallet.

pub mod config;
pub mod files;
pub mod leaderboard;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use tokio::sync::Mutex;

use self::leaderboard::Span;
use super::store::{Store, StoreError};
use crate::domain::{MetricGoal, MetricValue, WorkerId};
use crate::wire::{
    LEADERBOARD_PAGE_DEFAULT, LEADERBOARD_PAGE_MAX, Leaderboard, LeaderboardBy, LeaderboardEntry,
    LeaderboardWindow,
};

/// The origin registration files name: `[discovery] public_url` when set, else the request's
/// `Host` (plain `http`; set `public_url` behind a TLS-terminating proxy), else the listen
/// address. No trailing slash.
pub fn public_base(
    public_url: Option<&url::Url>,
    headers: &HeaderMap,
    listen: std::net::SocketAddr,
) -> String {
    if let Some(url) = public_url {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    match host {
        Some(host) => format!("http://{host}"),
        None => format!("http://{listen}"),
    }
}

/// One window's unranked entries, as computed at `computed_at`.
#[derive(Debug)]
struct Computed<T> {
    at: Instant,
    unix: u64,
    value: Arc<T>,
}

type FamilyBest = Option<(MetricGoal, HashMap<WorkerId, MetricValue>)>;

/// The leaderboard's figures, computed from the store at most once per cache period per
/// window (and per family), however many ask: computing them scans the window's jobs,
/// submissions and connections.
#[derive(Debug, Default)]
pub struct Leaderboards {
    /// One slot per window, each with its own lock: a slow `all` does not hold up `24h`.
    day: Mutex<Option<Computed<Vec<LeaderboardEntry>>>>,
    week: Mutex<Option<Computed<Vec<LeaderboardEntry>>>>,
    all: Mutex<Option<Computed<Vec<LeaderboardEntry>>>>,
    families: Mutex<HashMap<(LeaderboardWindow, String), Computed<FamilyBest>>>,
}

/// At most this many families' figures are cached (the oldest is forgotten first).
const MAX_FAMILIES_CACHED: usize = 256;

/// What a leaderboard request asks, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub window: LeaderboardWindow,
    pub by: LeaderboardBy,
    pub family: Option<String>,
    pub worker: Option<WorkerId>,
    pub limit: usize,
}

impl Ask {
    pub fn limit(limit: Option<usize>) -> usize {
        limit
            .unwrap_or(LEADERBOARD_PAGE_DEFAULT)
            .clamp(1, LEADERBOARD_PAGE_MAX)
    }
}

fn fresh<T>(slot: Option<&Computed<T>>, ttl: Duration) -> Option<(u64, Arc<T>)> {
    slot.filter(|c| c.at.elapsed() < ttl)
        .map(|c| (c.unix, Arc::clone(&c.value)))
}

fn since(window: LeaderboardWindow, now: u64) -> u64 {
    window.seconds().map_or(0, |w| now.saturating_sub(w))
}

impl Leaderboards {
    async fn entries(
        &self,
        store: &dyn Store,
        window: LeaderboardWindow,
        now: u64,
        heard_within_s: u64,
        ttl: Duration,
    ) -> Result<(u64, Arc<Vec<LeaderboardEntry>>), StoreError> {
        // Held across the query: one computation per window at a time, the others wait for it.
        let mut slot = match window {
            LeaderboardWindow::Day => self.day.lock().await,
            LeaderboardWindow::Week => self.week.lock().await,
            LeaderboardWindow::All => self.all.lock().await,
        };
        if let Some(hit) = fresh(slot.as_ref(), ttl) {
            return Ok(hit);
        }
        let span = Span {
            since: since(window, now),
            now,
        };
        let heard_after = now.saturating_sub(heard_within_s);
        let stats = store
            .worker_stats(span.since, now, heard_after, None)
            .await?;
        let value = Arc::new(
            stats
                .iter()
                .map(|s| leaderboard::entry(s, span))
                .collect::<Vec<_>>(),
        );
        *slot = Some(Computed {
            at: Instant::now(),
            unix: now,
            value: Arc::clone(&value),
        });
        Ok((now, value))
    }

    async fn family(
        &self,
        store: &dyn Store,
        window: LeaderboardWindow,
        family: &str,
        now: u64,
        ttl: Duration,
    ) -> Result<Arc<FamilyBest>, StoreError> {
        let key = (window, family.to_owned());
        if let Some((_, hit)) = fresh(self.families.lock().await.get(&key), ttl) {
            return Ok(hit);
        }
        // Not held across the query (an indexed read of one family's tasks).
        let metrics = store
            .confirmed_metrics(family.to_owned(), since(window, now))
            .await?;
        let value = Arc::new(leaderboard::best_metrics(&metrics));
        let mut cache = self.families.lock().await;
        cache.retain(|_, c| c.at.elapsed() < ttl);
        while cache.len() >= MAX_FAMILIES_CACHED {
            let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, c)| c.at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            cache.remove(&oldest);
        }
        cache.insert(
            key,
            Computed {
                at: Instant::now(),
                unix: now,
                value: Arc::clone(&value),
            },
        );
        Ok(value)
    }

    /// The leaderboard `ask` wants, figures at most `ttl` old.
    pub async fn board(
        &self,
        store: &dyn Store,
        ask: Ask,
        now: u64,
        heard_within_s: u64,
        ttl: Duration,
    ) -> Result<Leaderboard, StoreError> {
        let (mut computed_at, mut entries) = self
            .entries(store, ask.window, now, heard_within_s, ttl)
            .await?;
        // A worker asked for that registered after the figures were computed: computed again
        // at once, so a new worker finds itself. Bounded by the registration rate: once
        // computed, every registered worker is in the figures.
        if let Some(w) = &ask.worker
            && !entries.iter().any(|e| &e.worker_id == w)
            && store.worker(w.clone()).await?.is_some()
        {
            (computed_at, entries) = self
                .entries(store, ask.window, now, heard_within_s, Duration::ZERO)
                .await?;
        }
        let mut entries = (*entries).clone();
        let mut goal = None;
        if let (LeaderboardBy::Metric, Some(family)) = (ask.by, &ask.family)
            && let Some((g, best)) = &*self.family(store, ask.window, family, now, ttl).await?
        {
            goal = Some(*g);
            for e in &mut entries {
                e.metric = best.get(&e.worker_id).cloned();
            }
        }
        let ranked = leaderboard::rank(entries, ask.by, goal);
        let you = ask
            .worker
            .as_ref()
            .and_then(|w| ranked.iter().find(|e| &e.worker_id == w).cloned());
        Ok(Leaderboard {
            window: ask.window,
            by: ask.by,
            family: ask.family,
            goal,
            computed_at,
            total: ranked.len() as u64,
            entries: ranked.into_iter().take(ask.limit).collect(),
            you,
        })
    }
}
