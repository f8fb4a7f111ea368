//! Token buckets per key (a client address, a presented credential), written as GCRA (the
//! generic cell rate algorithm: one timestamp per key, no floats): `burst` requests at once,
//! refilled at `per_minute`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::config::Bucket;

/// Above this many tracked keys, idle ones are dropped on the next call.
const PRUNE_ABOVE: usize = 4096;

/// A token bucket per key (by default a client address).
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    /// Time one token takes to refill.
    interval: Duration,
    /// How far ahead of now an address's theoretical arrival time may run (burst - 1 tokens).
    tolerance: Duration,
    /// Theoretical arrival time per key.
    tat: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    pub fn new(bucket: Bucket) -> Self {
        let (interval, tolerance) = shape(bucket);
        Self {
            interval,
            tolerance,
            tat: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip`, or says how long until one is available.
    pub fn try_acquire(&self, ip: K) -> Result<(), Duration> {
        self.at(ip, Instant::now(), true)
    }

    /// Whether `ip` has a token left, without taking it.
    pub fn check(&self, ip: K) -> Result<(), Duration> {
        self.at(ip, Instant::now(), false)
    }

    /// Takes a token for `ip` even if none is left (an event that already happened, such as
    /// a failed authentication); later calls wait longer.
    pub fn consume(&self, ip: K) {
        let now = Instant::now();
        let mut map = self.tat.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.get(&ip).copied().unwrap_or(now).max(now);
        map.insert(ip, tat + self.interval);
    }

    /// Takes a token for `key` from a bucket of its own shape (a client key's quota), or says
    /// how long until one is available.
    pub fn try_acquire_shaped(&self, key: K, bucket: Bucket, now: Instant) -> Result<(), Duration> {
        let (interval, tolerance) = shape(bucket);
        self.at_shaped(key, now, true, interval, tolerance)
    }

    fn at(&self, ip: K, now: Instant, take: bool) -> Result<(), Duration> {
        self.at_shaped(ip, now, take, self.interval, self.tolerance)
    }

    fn at_shaped(
        &self,
        ip: K,
        now: Instant,
        take: bool,
        interval: Duration,
        tolerance: Duration,
    ) -> Result<(), Duration> {
        let mut map = self.tat.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.get(&ip).copied().unwrap_or(now).max(now);
        let ahead = tat.saturating_duration_since(now);
        if ahead > tolerance {
            return Err(ahead.saturating_sub(tolerance));
        }
        if take {
            map.insert(ip, tat + interval);
        }
        Ok(())
    }
}

/// A bucket's refill interval and how far ahead its arrival time may run (burst - 1 tokens).
fn shape(bucket: Bucket) -> (Duration, Duration) {
    let interval = Duration::from_mins(1) / bucket.per_minute.max(1);
    (interval, interval * bucket.burst.max(1).saturating_sub(1))
}

/// Whole seconds to put in `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> RateLimiter<IpAddr> {
        RateLimiter::new(Bucket { per_minute, burst })
    }

    #[test]
    fn burst_then_refuse_then_refill() {
        let l = limiter(60, 3);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let now = Instant::now();
        for _ in 0..3 {
            assert!(l.at(ip, now, true).is_ok());
        }
        let wait = l.at(ip, now, true).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        assert_eq!(retry_after_secs(wait), 1);
        assert!(l.at(ip, now + Duration::from_secs(1), true).is_ok());
        // Other addresses have their own bucket.
        assert!(l.at([10, 0, 0, 2].into(), now, true).is_ok());
    }

    #[test]
    fn check_does_not_take_and_consume_always_does() {
        let l = limiter(1, 2);
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert!(l.check(ip).is_ok());
        l.consume(ip);
        assert!(l.check(ip).is_ok());
        l.consume(ip);
        assert!(l.check(ip).is_err());
        l.consume(ip);
        let wait = l.check(ip).unwrap_err();
        assert!(wait > Duration::from_mins(1), "{wait:?}");
    }
}
