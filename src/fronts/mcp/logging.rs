//! MCP logging (`logging/setLevel`, `notifications/message`): each session keeps the level its
//! client asked for, and the server's own notifications below it are not sent.
//!
//! What is sent: one line per tool call (the tool, the outcome, the problem code), never an
//! argument or a result, so a notification cannot carry a secret. `tracing` itself goes to
//! stderr only (stdout is the protocol on stdio).
// MCP logging is deprecated by SEP-2577 in rmcp, but the spec versions clients use today have it.
#![allow(deprecated)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::{Peer, RoleServer};
use serde_json::Value;

/// The logger name on every notification.
pub const LOGGER: &str = "basis";

/// A session's minimum level. Until the client sets one, `info` and above are sent.
#[derive(Debug, Clone)]
pub struct SessionLevel(Arc<AtomicU8>);

impl Default for SessionLevel {
    fn default() -> Self {
        Self(Arc::new(AtomicU8::new(rank(LoggingLevel::Info))))
    }
}

impl SessionLevel {
    pub fn set(&self, level: LoggingLevel) {
        self.0.store(rank(level), Ordering::Relaxed);
    }

    pub fn enabled(&self, level: LoggingLevel) -> bool {
        rank(level) >= self.0.load(Ordering::Relaxed)
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
        assert!(!level.enabled(LoggingLevel::Debug));
        assert!(level.enabled(LoggingLevel::Info));
        level.set(LoggingLevel::Error);
        assert!(!level.enabled(LoggingLevel::Warning));
        assert!(level.enabled(LoggingLevel::Critical));
        level.set(LoggingLevel::Debug);
        assert!(level.enabled(LoggingLevel::Debug));
    }
}
