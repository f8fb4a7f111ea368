//! Reconnect delays: exponential backoff with full jitter, 1 s doubling to 30 s
//! (docs/PROTOCOL.md, "Reconnecting and draining"). The
//! n-th wait is uniform in `[0, min(cap, base · 2ⁿ)]`, so a fleet of workers that lost the
//! same orchestrator does not come back in lockstep; a successful `welcome` resets it.

use std::time::Duration;

use rand::Rng as _;

/// The bounds of the backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The ceiling of the first wait.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
        }
    }
}

/// Where a backoff sequence stands.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Self { policy, attempt: 0 }
    }

    /// The ceiling of the next wait: `min(cap, base · 2^attempt)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.policy
            .base
            .checked_mul(factor)
            .map_or(self.policy.cap, |d| d.min(self.policy.cap))
    }

    /// The next wait, uniform in `[0, ceiling]`; then the ceiling doubles.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let max = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=max))
    }

    /// Back to the first ceiling (after a successful connection).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Waits so far in this sequence.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_to_the_cap_and_reset() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            let ceiling = b.ceiling();
            let delay = b.next_delay();
            assert!(delay <= ceiling, "{delay:?} > {ceiling:?}");
            ceilings.push(ceiling.as_secs());
        }
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 30, 30, 30]);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), Duration::from_secs(30), "no overflow");
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_secs(1));
        assert_eq!(b.attempts(), 0);
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let mut b = Backoff::new(BackoffPolicy::default());
        for _ in 0..5 {
            b.next_delay();
        }
        let delays: Vec<Duration> = (0..50)
            .map(|_| {
                let mut b = b.clone();
                b.next_delay()
            })
            .collect();
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 10, "full jitter: the waits differ");
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
    }
}
