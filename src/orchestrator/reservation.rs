//! A chat request's hold on its client key's daily tokens while it runs ([`Reservation`]),
//! taken by `quota::Quotas::admit` and carried by the request and its job (`hub`), so that
//! requests running at once cannot all pass a nearly used quota. A leaf: the quota and the
//! hub both import it, and it imports only the key type.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::store::KeySha256;

/// Tokens reserved by each key's chat requests running on this replica.
pub type Reserved = Arc<Mutex<HashMap<KeySha256, u64>>>;

/// Locks the reservations (a poisoned lock is still a consistent map of counters).
pub fn lock(reserved: &Reserved) -> MutexGuard<'_, HashMap<KeySha256, u64>> {
    reserved.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A chat request's hold on its key's daily tokens while it runs (its `max_tokens`, or 1 when
/// it sets none); released when dropped (the job ended, or the request failed before it ran).
#[derive(Debug)]
pub struct Reservation {
    reserved: Reserved,
    key: KeySha256,
    tokens: u64,
}

impl Reservation {
    /// Adds `tokens` to `key`'s reservations in `held` (the locked `reserved`).
    pub fn hold(
        reserved: &Reserved,
        held: &mut HashMap<KeySha256, u64>,
        key: KeySha256,
        tokens: u64,
    ) -> Self {
        *held.entry(key).or_default() += tokens;
        Self {
            reserved: Arc::clone(reserved),
            key,
            tokens,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut held = lock(&self.reserved);
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(self.tokens);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}
