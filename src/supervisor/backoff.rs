//! Restart policy: [`Backoff`] (1 s doubling to 60 s, reset after a healthy run) and
//! [`CrashGuard`] (N exits within a window stop the restarts). Both take times as arguments,
//! so tests drive them without sleeping.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::tuning::Tuning;

/// The delay before the next restart.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    healthy_after: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(tuning: &Tuning) -> Self {
        Self {
            initial: tuning.backoff_initial,
            max: tuning.backoff_max,
            healthy_after: tuning.healthy_after,
            next: tuning.backoff_initial,
        }
    }

    /// The delay before restarting a worker that ran for `ran_for`. A run of at least the
    /// healthy duration resets the delay first; each call then doubles it, up to the maximum.
    pub fn after_exit(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= self.healthy_after {
            self.next = self.initial;
        }
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }
}

/// Counts exits in a sliding window; trips when there are too many.
#[derive(Debug, Clone)]
pub struct CrashGuard {
    window: Duration,
    max_exits: usize,
    exits: VecDeque<Instant>,
}

impl CrashGuard {
    pub fn new(tuning: &Tuning) -> Self {
        Self {
            window: tuning.crash_window,
            max_exits: tuning.crash_max_exits,
            exits: VecDeque::new(),
        }
    }

    /// Records an exit at `at`; true when `max_exits` exits now fall within the window.
    pub fn record(&mut self, at: Instant) -> bool {
        self.exits.push_back(at);
        while let Some(first) = self.exits.front() {
            if at.saturating_duration_since(*first) > self.window {
                self.exits.pop_front();
            } else {
                break;
            }
        }
        self.exits.len() >= self.max_exits
    }

    /// Exits counted in the current window.
    pub fn recent(&self) -> usize {
        self.exits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets_after_a_healthy_run() {
        let mut b = Backoff::new(&Tuning::default());
        let quick = Duration::from_secs(2);
        let delays: Vec<u64> = (0..9).map(|_| b.after_exit(quick).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.after_exit(Duration::from_mins(5)), Duration::from_secs(1));
        assert_eq!(b.after_exit(quick), Duration::from_secs(2));
    }

    #[test]
    fn five_exits_in_ten_minutes_trip_the_guard() {
        let mut g = CrashGuard::new(&Tuning::default());
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Spread out: never five within ten minutes.
        for i in 0..10 {
            assert!(!g.record(at(i * 200)), "exit {i}");
        }
        let t1 = at(10_000);
        for i in 0..4 {
            assert!(!g.record(t1 + Duration::from_secs(i)));
        }
        assert!(g.record(t1 + Duration::from_secs(5)));
        assert_eq!(g.recent(), 5);
    }
}
