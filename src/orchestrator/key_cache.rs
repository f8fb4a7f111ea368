//! A short memory of client keys found valid, so the gateway's hot path does not read the
//! database (a blocking-pool hop and a query) on every request. Only the key's sha256 is kept,
//! as in the database; only valid keys are remembered (an unknown key is always looked up, so
//! a key created by `basis orchestrator keys create` works at once), and each for [`TTL`] at
//! most: a key taken out of the database stops working within that time. The same memory,
//! with [`PROVEN_TTL`], holds the credentials that passed authentication lately, which the
//! failed-authentication lockout of their address does not stop (`auth::not_locked_out`).
//! Each entry may carry a value (a client key's quotas, `quota::ClientGrant`); revoking or
//! re-limiting a key [`KeyCache::forget`]s it at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::store::KeySha256;

/// How long a key found valid is trusted without asking the database again.
pub const TTL: Duration = Duration::from_secs(5);
/// How long a credential that passed authentication is exempt from its address's lockout.
pub const PROVEN_TTL: Duration = Duration::from_mins(15);
/// Most keys remembered; past it, expired ones go, then all.
const CAPACITY: usize = 4096;

#[derive(Debug)]
pub struct KeyCache<V = ()> {
    /// Key hash → when it was found valid, and what was found.
    found: Mutex<HashMap<KeySha256, (Instant, V)>>,
    ttl: Duration,
    /// Bumped by every [`KeyCache::forget`]: a read of the database that began before a
    /// forget must not put back what it read ([`KeyCache::remember_unless_forgotten`]).
    forgets: AtomicU64,
}

impl<V: Clone> Default for KeyCache<V> {
    fn default() -> Self {
        Self::with_ttl(TTL)
    }
}

impl KeyCache<()> {
    /// Remembers that `key` was found valid at `now`.
    pub fn remember(&self, key: KeySha256, now: Instant) {
        self.remember_with(key, now, ());
    }

    /// Whether `key` was found valid less than the TTL ago.
    pub fn is_fresh(&self, key: &KeySha256, now: Instant) -> bool {
        self.get(key, now).is_some()
    }
}

impl<V: Clone> KeyCache<V> {
    /// A memory whose entries last `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            found: Mutex::default(),
            ttl,
            forgets: AtomicU64::new(0),
        }
    }

    /// What was found for `key`, if less than the TTL ago.
    pub fn get(&self, key: &KeySha256, now: Instant) -> Option<V> {
        let found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        found
            .get(key)
            .filter(|(at, _)| now.saturating_duration_since(*at) < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Remembers that `key` was found valid at `now`, with `value`.
    pub fn remember_with(&self, key: KeySha256, now: Instant, value: V) {
        let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        if found.len() >= CAPACITY && !found.contains_key(&key) {
            found.retain(|_, (at, _)| now.saturating_duration_since(*at) < self.ttl);
            if found.len() >= CAPACITY {
                found.clear();
            }
        }
        found.insert(key, (now, value));
    }

    /// Forgets `key` (revoked, or its quotas changed): the next use asks the database.
    pub fn forget(&self, key: &KeySha256) {
        let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        self.forgets.fetch_add(1, Ordering::AcqRel);
        found.remove(key);
    }

    /// Where the forgets stand: take it before reading the database, and hand it to
    /// [`KeyCache::remember_unless_forgotten`].
    pub fn epoch(&self) -> u64 {
        self.forgets.load(Ordering::Acquire)
    }

    /// [`KeyCache::remember_with`], unless a key was forgotten since `epoch`: what was read
    /// may be what a revocation just took away (it is used once, not remembered).
    pub fn remember_unless_forgotten(&self, key: KeySha256, now: Instant, value: V, epoch: u64) {
        // Under the lock forget takes too: no forget can slip between the check and the insert.
        let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        if self.forgets.load(Ordering::Acquire) == epoch {
            found.insert(key, (now, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_trusted_for_the_ttl_only() {
        let cache = KeyCache::<()>::default();
        let key = KeySha256::of("k");
        let t0 = Instant::now();
        assert!(!cache.is_fresh(&key, t0), "unknown keys are looked up");
        cache.remember(key, t0);
        assert!(cache.is_fresh(&key, t0 + TTL / 2));
        assert!(!cache.is_fresh(&key, t0 + TTL), "expired: asked again");
        assert!(!cache.is_fresh(&KeySha256::of("other"), t0));
        cache.remember(key, t0);
        cache.forget(&key);
        assert!(!cache.is_fresh(&key, t0), "forgotten: asked again");
        // A read that began before a forget does not put the key back.
        let epoch = cache.epoch();
        cache.forget(&key);
        cache.remember_unless_forgotten(key, t0, (), epoch);
        assert!(!cache.is_fresh(&key, t0));
        cache.remember_unless_forgotten(key, t0, (), cache.epoch());
        assert!(cache.is_fresh(&key, t0));
    }

    #[test]
    fn it_stays_bounded() {
        let cache = KeyCache::<()>::default();
        let t0 = Instant::now();
        for i in 0..CAPACITY + 10 {
            cache.remember(KeySha256::of(&i.to_string()), t0);
        }
        let len = cache.found.lock().unwrap().len();
        assert!(len <= CAPACITY, "{len} keys kept");
        assert!(cache.is_fresh(&KeySha256::of(&(CAPACITY + 9).to_string()), t0));
    }
}
