//! Quotas per client key on the gateway (docs/PROTOCOL.md, "Quotas"): requests per minute and
//! tokens per UTC day, set with the key (`keys create`) or later (`keys set-limits`), answered
//! with 429 `QUOTA_EXCEEDED` and `Retry-After`.
//!
//! - Requests per minute: a token bucket per key (GCRA, `rate_limit`), up to N at once, then
//!   one more every 60/N s. Each replica keeps its own buckets: with R replicas behind a load
//!   balancer a key may reach up to R × N per minute in the worst case.
//! - Tokens per day: what the database recorded for the key today (every replica's completed
//!   jobs, written with each job's receipt), read with the key at most [`key_cache::TTL`] ago,
//!   plus what this replica's jobs used since. A request is admitted while that is below the
//!   limit, so the request that crosses it is served in full; the next ones wait for the next
//!   UTC midnight.
//!
//! Invariant: a key's cached [`ClientGrant`] is forgotten when the key is revoked or its
//! limits change, so the next request reads the database again.
//!
//! [`key_cache::TTL`]: super::key_cache::TTL

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::config::Bucket;
use super::rate_limit::RateLimiter;
use super::reservation::{Reservation, Reserved};
use super::store::{KeyGrant, KeySha256, utc_day};
use crate::wire::KeyLimits;

/// A client key as the gateway remembers it between database reads.
#[derive(Debug, Clone)]
pub struct ClientGrant {
    pub limits: KeyLimits,
    /// The UTC day `used_at_read` counts.
    pub day: u64,
    /// Tokens the database had recorded for the key on `day` when it was read.
    pub used_at_read: u64,
    /// Tokens this replica's jobs used since (shared by every copy of this grant).
    pub spent_since: Arc<AtomicU64>,
    /// When the database was asked: a job whose write began later may already be in
    /// `used_at_read`.
    pub read_at: Instant,
}

impl ClientGrant {
    /// The grant as read from the store on `day`.
    pub fn read(grant: &KeyGrant, day: u64) -> Self {
        Self {
            limits: grant.limits,
            day,
            used_at_read: grant.usage.tokens(),
            spent_since: Arc::default(),
            read_at: Instant::now(),
        }
    }

    /// Records tokens a finished job of this key used, whose write to the database began at
    /// `recorded_from`. A grant read after that may already count them: they are added only
    /// when it was read before, so a job is never counted twice (at worst it is missed here
    /// until the next read, at most the key cache's TTL later).
    pub fn spend(&self, tokens: u64, recorded_from: Instant) {
        if self.read_at < recorded_from {
            self.spent_since.fetch_add(tokens, Ordering::Relaxed);
        }
    }

    /// Tokens used on `today`, as far as this replica knows.
    fn used(&self, today: u64) -> u64 {
        let since = self.spent_since.load(Ordering::Relaxed);
        if today == self.day {
            self.used_at_read.saturating_add(since)
        } else {
            // Read yesterday: only what was spent since counts (at most one cache TTL of it).
            since
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverQuota {
    /// The key's requests-per-minute bucket is empty.
    Requests { limit: u32, retry_after: Duration },
    /// The key used its tokens for today.
    Tokens {
        limit: u64,
        used: u64,
        retry_after: Duration,
    },
    /// What is left of the key's tokens for today is reserved by its requests still running.
    Reserved {
        limit: u64,
        used: u64,
        retry_after: Duration,
    },
}

impl OverQuota {
    pub fn retry_after(&self) -> Duration {
        match self {
            Self::Requests { retry_after, .. }
            | Self::Tokens { retry_after, .. }
            | Self::Reserved { retry_after, .. } => *retry_after,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Requests { limit, .. } => {
                format!("this client key may send {limit} requests per minute")
            }
            Self::Tokens { limit, used, .. } => {
                format!("this client key used {used} of its {limit} tokens for today (UTC)")
            }
            Self::Reserved { limit, used, .. } => format!(
                "this client key used {used} of its {limit} tokens for today (UTC) and its \
                 requests still running may use the rest"
            ),
        }
    }
}

/// The per-key request buckets and token reservations of this replica.
#[derive(Debug)]
pub struct Quotas {
    requests: RateLimiter<KeySha256>,
    reserved: Reserved,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            // The shape is given per call (each key's own); this one is never used.
            requests: RateLimiter::new(Bucket {
                per_minute: 1,
                burst: 1,
            }),
            reserved: Reserved::default(),
        }
    }
}

impl Quotas {
    /// Admits one request of `key` under `grant`'s limits at `unix_s` / `now`, or says why not.
    /// `reserve`: for a chat completion, the tokens it may use (its `max_tokens`, else 1), which
    /// the daily token quota applies to (listing models and posting tasks use none): it is
    /// admitted while what the key used today plus what its running requests reserved is
    /// below the limit, and holds its reservation (the answer) while it runs. The token quota
    /// is checked first, so a refused request takes nothing from the bucket.
    pub fn admit(
        &self,
        key: KeySha256,
        grant: &ClientGrant,
        reserve: Option<u64>,
        unix_s: u64,
        now: Instant,
    ) -> Result<Option<Reservation>, OverQuota> {
        let mut held = super::reservation::lock(&self.reserved);
        let tokens = match (grant.limits.tokens_per_day, reserve) {
            (Some(limit), Some(reserve)) => {
                let used = grant.used(utc_day(unix_s));
                if used >= limit {
                    return Err(OverQuota::Tokens {
                        limit,
                        used,
                        retry_after: Duration::from_secs(86_400 - unix_s % 86_400),
                    });
                }
                let running = held.get(&key).copied().unwrap_or(0);
                if running > 0 && used.saturating_add(running) >= limit {
                    // What is left is reserved by requests still running: try again soon.
                    return Err(OverQuota::Reserved {
                        limit,
                        used,
                        retry_after: Duration::from_secs(1),
                    });
                }
                Some(reserve.max(1))
            }
            _ => None,
        };
        if let Some(limit) = grant.limits.requests_per_minute {
            let bucket = Bucket {
                per_minute: limit,
                burst: limit,
            };
            self.requests
                .try_acquire_shaped(key, bucket, now)
                .map_err(|retry_after| OverQuota::Requests { limit, retry_after })?;
        }
        Ok(tokens.map(|tokens| Reservation::hold(&self.reserved, &mut held, key, tokens)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::store::KeyRole;
    use crate::wire::KeyUsage;

    fn grant(limits: KeyLimits, tokens_today: u64, day: u64) -> ClientGrant {
        ClientGrant::read(
            &KeyGrant {
                role: KeyRole::Client,
                limits,
                usage: KeyUsage {
                    requests: 1,
                    prompt_tokens: tokens_today,
                    completion_tokens: 0,
                    amount: crate::domain::Amount::ZERO,
                },
            },
            day,
        )
    }

    #[test]
    fn requests_per_minute_refuse_then_allow_after_the_wait() {
        let q = Quotas::default();
        let key = KeySha256::of("k");
        let g = grant(
            KeyLimits {
                requests_per_minute: Some(2),
                tokens_per_day: None,
            },
            0,
            0,
        );
        let t0 = Instant::now();
        assert!(q.admit(key, &g, Some(1), 10, t0).is_ok());
        assert!(q.admit(key, &g, Some(1), 10, t0).is_ok());
        let Err(over @ OverQuota::Requests { limit: 2, .. }) = q.admit(key, &g, Some(1), 10, t0)
        else {
            panic!("the third request in the same instant must be refused");
        };
        assert_eq!(over.retry_after(), Duration::from_secs(30));
        assert!(
            q.admit(key, &g, Some(1), 40, t0 + over.retry_after())
                .is_ok()
        );
        // Another key has its own bucket; an unlimited key is never refused.
        assert!(q.admit(KeySha256::of("other"), &g, Some(1), 10, t0).is_ok());
        let free = grant(KeyLimits::default(), u64::MAX, 0);
        for _ in 0..100 {
            assert!(
                q.admit(KeySha256::of("free"), &free, Some(1), 10, t0)
                    .is_ok()
            );
        }
    }

    #[test]
    fn tokens_per_day_count_the_database_and_this_replica_until_midnight() {
        let q = Quotas::default();
        let key = KeySha256::of("k");
        let limits = KeyLimits {
            requests_per_minute: None,
            tokens_per_day: Some(100),
        };
        let day = 20_000;
        let noon = day * 86_400 + 43_200;
        let g = grant(limits, 60, day);
        assert!(q.admit(key, &g, Some(1), noon, Instant::now()).is_ok());
        g.spend(39, Instant::now());
        assert!(
            q.admit(key, &g, Some(1), noon, Instant::now()).is_ok(),
            "99 < 100"
        );
        g.clone().spend(1, Instant::now());
        let Err(OverQuota::Tokens {
            used: 100,
            retry_after,
            ..
        }) = q.admit(key, &g, Some(1), noon, Instant::now())
        else {
            panic!("at the limit: refused");
        };
        assert_eq!(retry_after, Duration::from_hours(12), "until UTC midnight");
        // Calls that use no tokens (models, posting a task) are not held by it.
        assert!(q.admit(key, &g, None, noon, Instant::now()).is_ok());
        // The next day, the count read yesterday no longer applies (only the 40 spent since).
        assert!(
            q.admit(key, &g, Some(1), noon + 86_400, Instant::now())
                .is_ok()
        );
        // A job whose write began before the grant was read may be in its count already: not
        // added again.
        let began = Instant::now();
        let later = grant(limits, 99, day);
        later.spend(50, began);
        assert!(
            q.admit(key, &later, Some(1), noon, Instant::now()).is_ok(),
            "99 < 100"
        );
        let fresh = grant(limits, 100, day + 1);
        assert!(
            q.admit(key, &fresh, Some(1), noon + 86_400, Instant::now())
                .is_err()
        );
    }

    #[test]
    fn requests_running_at_once_hold_their_max_tokens() {
        let q = Quotas::default();
        let key = KeySha256::of("k");
        let limits = KeyLimits {
            requests_per_minute: None,
            tokens_per_day: Some(100),
        };
        let day = 20_000;
        let noon = day * 86_400 + 43_200;
        let g = grant(limits, 60, day);
        let now = Instant::now();
        // 60 used; two requests of up to 30 each run at once (60 + 30 < 100 when the second
        // asks); a third must wait for one of them.
        let a = q.admit(key, &g, Some(30), noon, now).unwrap();
        let b = q.admit(key, &g, Some(30), noon, now).unwrap();
        assert!(a.is_some() && b.is_some());
        let Err(over @ OverQuota::Reserved { .. }) = q.admit(key, &g, Some(1), noon, now) else {
            panic!("the rest is reserved by the running requests");
        };
        assert_eq!(over.retry_after(), Duration::from_secs(1));
        drop(a);
        assert!(q.admit(key, &g, Some(1), noon, now).unwrap().is_some());
        drop(b);
        // Nothing is held once they end; calls that use no tokens hold nothing.
        assert!(q.reserved.lock().unwrap().is_empty());
        assert!(q.admit(key, &g, None, noon, now).unwrap().is_none());
    }
}
