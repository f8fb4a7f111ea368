//! `Tuning`: the supervisor's durations and limits. The defaults are the product's
//! (docs/FILES.md, "Supervisor restarts and logs"): 1 s doubling to 60 s, reset after 5
//! healthy minutes, 5 exits in 10 minutes, 5 MiB × 3 files.
//!
//! Tests shorten them through the hidden `basis supervise --tuning SPEC` flag or the
//! [`TUNING_ENV`] variable (inherited from `basis start`): a comma list of `key=value` with
//! keys `backoff_initial_ms`, `backoff_max_ms`, `healthy_ms`, `crash_window_ms`,
//! `crash_max_exits`, `log_max_bytes`, `log_files`, `drain_timeout_ms`. Not for production.

use std::str::FromStr;
use std::time::Duration;

use super::error::SupervisorError;

/// The variable `basis supervise` reads a tuning spec from (tests only).
pub const TUNING_ENV: &str = "BASIS_SUPERVISE_TUNING";

/// Durations and limits of one supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuning {
    /// The first restart delay.
    pub backoff_initial: Duration,
    /// The longest restart delay (the delay doubles up to it).
    pub backoff_max: Duration,
    /// A worker that ran this long resets the delay to `backoff_initial`.
    pub healthy_after: Duration,
    /// The crash-loop window...
    pub crash_window: Duration,
    /// ...and how many exits within it stop the restarts.
    pub crash_max_exits: usize,
    /// `worker.log` is rotated before it would grow past this.
    pub log_max_bytes: u64,
    /// Log files kept, the current one included (`worker.log`, `.1`, `.2`, …).
    pub log_files: usize,
    /// How long a worker may drain after SIGTERM when the supervisor itself is terminated,
    /// or when `stop` gives no timeout.
    pub drain_timeout: Duration,
    /// How many recent exits `status` shows.
    pub kept_exits: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_mins(1),
            healthy_after: Duration::from_mins(5),
            crash_window: Duration::from_mins(10),
            crash_max_exits: 5,
            log_max_bytes: 5 << 20,
            log_files: 3,
            drain_timeout: Duration::from_secs(30),
            kept_exits: 10,
        }
    }
}

impl FromStr for Tuning {
    type Err = SupervisorError;

    /// Starts from the defaults and applies each `key=value` of a comma list.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut t = Tuning::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| SupervisorError::Tuning(format!("`{item}` is not key=value")))?;
            let n: u64 = value.trim().parse().map_err(|_| {
                SupervisorError::Tuning(format!("{key}: `{value}` is not a whole number"))
            })?;
            let ms = Duration::from_millis(n);
            let count = || {
                usize::try_from(n)
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| SupervisorError::Tuning(format!("{key} must be at least 1")))
            };
            match key.trim() {
                "backoff_initial_ms" => t.backoff_initial = ms,
                "backoff_max_ms" => t.backoff_max = ms,
                "healthy_ms" => t.healthy_after = ms,
                "crash_window_ms" => t.crash_window = ms,
                "crash_max_exits" => t.crash_max_exits = count()?,
                "log_max_bytes" => t.log_max_bytes = n.max(1),
                "log_files" => t.log_files = count()?,
                "drain_timeout_ms" => t.drain_timeout = ms,
                other => {
                    return Err(SupervisorError::Tuning(format!("unknown key `{other}`")));
                }
            }
        }
        if t.backoff_max < t.backoff_initial {
            t.backoff_max = t.backoff_initial;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_brief() {
        let t = Tuning::default();
        assert_eq!(t.backoff_initial, Duration::from_secs(1));
        assert_eq!(t.backoff_max, Duration::from_mins(1));
        assert_eq!(t.healthy_after, Duration::from_mins(5));
        assert_eq!(t.crash_window, Duration::from_mins(10));
        assert_eq!(t.crash_max_exits, 5);
        assert_eq!(t.log_max_bytes, 5 * 1024 * 1024);
        assert_eq!(t.log_files, 3);
    }

    #[test]
    fn spec_overrides_and_errors() {
        let t: Tuning = "backoff_initial_ms=50, backoff_max_ms=400,crash_max_exits=3,log_files=2"
            .parse()
            .unwrap();
        assert_eq!(t.backoff_initial, Duration::from_millis(50));
        assert_eq!(t.backoff_max, Duration::from_millis(400));
        assert_eq!(t.crash_max_exits, 3);
        assert_eq!(t.log_files, 2);
        assert_eq!(t.healthy_after, Duration::from_mins(5));
        assert_eq!("".parse::<Tuning>().unwrap(), Tuning::default());
        for bad in ["nope", "x=1", "log_files=0", "backoff_max_ms=abc"] {
            assert!(bad.parse::<Tuning>().is_err(), "{bad}");
        }
    }
}
