//! MCP logging (`logging/setLevel`, `notifications/message`): each session keeps the level its
//! client asked for, and nothing below it is sent.
//!
//! What is sent:
//! - one line per tool call (the tool, the outcome, the problem code), never an argument or a
//!   result; `info` and above until the client sets a level;
//! - from the first `logging/setLevel` on, the crate's own `tracing` events at or above that
//!   level, taken by [`LogHook`] (`logger` = the event's target, `data` = its message and
//!   fields, every string through the secrets guard). Events from this session's tool calls
//!   reach this session only; events from elsewhere reach every session that asked.
//!
//! `tracing` itself still goes to stderr (stdout is the protocol on stdio).
// MCP logging is deprecated by SEP-2577 in rmcp, but the spec versions clients use today have it.
#![allow(deprecated)]

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::{Peer, RoleServer};
use serde_json::{Value, json};
use tracing::Level;
use tracing::level_filters::LevelFilter;

use crate::telemetry::LogHook;
use crate::telemetry::hook::{Listener, Next, Records};

/// The logger name on the tool-call lines and on the hook's own notices.
pub const LOGGER: &str = "basis";

/// A session's logging: its minimum level and, once the client set one, its listener on the
/// log hook. Clones share both; the listener (and its forwarding task) ends with the last one.
#[derive(Debug, Clone, Default)]
pub struct SessionLevel(Arc<State>);

#[derive(Debug)]
struct State {
    /// The minimum [`rank`]; shared with the forwarding task.
    level: Arc<AtomicU8>,
    listener: OnceLock<Listener>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            level: Arc::new(AtomicU8::new(rank(LoggingLevel::Info))),
            listener: OnceLock::new(),
        }
    }
}

impl SessionLevel {
    /// Sets the session's level. The first call also starts forwarding `tracing` events to
    /// `peer` (a task that ends with the session).
    pub fn set(&self, level: LoggingLevel, peer: &Peer<RoleServer>) {
        self.0.level.store(rank(level), Ordering::Relaxed);
        let listener = self.0.listener.get_or_init(|| {
            let listener = LogHook::global().listen();
            tokio::spawn(forward(
                listener.records(),
                peer.clone(),
                Arc::clone(&self.0.level),
            ));
            listener
        });
        listener.set_level(threshold(level));
    }

    pub fn enabled(&self, level: LoggingLevel) -> bool {
        enabled(&self.0.level, level)
    }

    /// Runs `future` (a tool call) with its events attributed to this session.
    pub async fn scope<F: Future>(&self, future: F) -> F::Output {
        match self.0.listener.get() {
            Some(listener) => listener.scope(future).await,
            None => future.await,
        }
    }

    /// Sends `data` at `level` to `peer` when the session's level lets it through. A peer
    /// that went away is not an error for the caller.
    pub async fn notify(&self, peer: &Peer<RoleServer>, level: LoggingLevel, data: Value) {
        if !self.enabled(level) {
            return;
        }
        let param = LoggingMessageNotificationParam::new(level, data).with_logger(LOGGER);
        if let Err(e) = peer.notify_logging_message(param).await {
            tracing::debug!("cannot send a log notification: {e}");
        }
    }
}

fn enabled(minimum: &AtomicU8, level: LoggingLevel) -> bool {
    rank(level) >= minimum.load(Ordering::Relaxed)
}

/// Sends the listener's records to `peer` until the session ends (the listener is dropped)
/// or the peer is gone. Never logs: a failed send ends it.
async fn forward(mut records: Records, peer: Peer<RoleServer>, level: Arc<AtomicU8>) {
    while let Some(next) = records.next().await {
        let param = match next {
            Next::Record(record) => LoggingMessageNotificationParam::new(
                mcp_level(record.level),
                Value::Object(record.data.clone()),
            )
            .with_logger(record.target),
            Next::Dropped(n) if enabled(&level, LoggingLevel::Warning) => {
                LoggingMessageNotificationParam::new(
                    LoggingLevel::Warning,
                    json!({
                        "message": format!("{n} log messages were dropped: the client read them too slowly"),
                        "dropped": n,
                    }),
                )
                .with_logger(LOGGER)
            }
            Next::Dropped(_) => continue,
        };
        if peer.notify_logging_message(param).await.is_err() {
            return;
        }
    }
}

/// The most verbose `tracing` level whose events are at or above `level` once mapped by
/// [`mcp_level`] (`tracing` has nothing above error).
fn threshold(level: LoggingLevel) -> LevelFilter {
    match level {
        LoggingLevel::Debug => LevelFilter::DEBUG,
        LoggingLevel::Info => LevelFilter::INFO,
        LoggingLevel::Notice | LoggingLevel::Warning => LevelFilter::WARN,
        LoggingLevel::Error => LevelFilter::ERROR,
        LoggingLevel::Critical | LoggingLevel::Alert | LoggingLevel::Emergency => LevelFilter::OFF,
    }
}

/// The MCP level of a `tracing` event.
fn mcp_level(level: Level) -> LoggingLevel {
    match level {
        Level::ERROR => LoggingLevel::Error,
        Level::WARN => LoggingLevel::Warning,
        Level::INFO => LoggingLevel::Info,
        _ => LoggingLevel::Debug,
    }
}

/// Severity order of the RFC 5424 levels MCP uses.
fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_filters_lower_severities() {
        let level = SessionLevel::default();
        let set = |l| level.0.level.store(rank(l), Ordering::Relaxed);
        assert!(!level.enabled(LoggingLevel::Debug));
        assert!(level.enabled(LoggingLevel::Info));
        set(LoggingLevel::Error);
        assert!(!level.enabled(LoggingLevel::Warning));
        assert!(level.enabled(LoggingLevel::Critical));
        set(LoggingLevel::Debug);
        assert!(level.enabled(LoggingLevel::Debug));
    }

    #[test]
    fn a_forwarded_event_is_at_or_above_the_session_level() {
        let all = [
            LoggingLevel::Debug,
            LoggingLevel::Info,
            LoggingLevel::Notice,
            LoggingLevel::Warning,
            LoggingLevel::Error,
            LoggingLevel::Critical,
            LoggingLevel::Alert,
            LoggingLevel::Emergency,
        ];
        let events = [
            Level::TRACE,
            Level::DEBUG,
            Level::INFO,
            Level::WARN,
            Level::ERROR,
        ];
        for session in all {
            for event in events {
                let taken = event <= threshold(session) && event != Level::TRACE;
                let due = rank(mcp_level(event)) >= rank(session) && event != Level::TRACE;
                assert_eq!(taken, due, "session {session:?}, event {event}");
            }
        }
    }
}
