//! Logging: `tracing` to stderr only (stdout belongs to MCP stdio and `--json` output),
//! filtered by `RUST_LOG`, as text or JSON lines, every line redacted by the secrets guard
//! ([`redact`]); and the [`hook`] that hands the crate's
//! events to the MCP sessions that asked for them (`logging/setLevel`).

pub mod hook;
mod redact;

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry};

pub use hook::LogHook;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber: stderr, filtered by `RUST_LOG` (`default_filter` when it is
/// unset), beside [`LogHook::global`]'s layer, which has a filter of its own (off until an MCP
/// client sets a level). Calling it twice is harmless (the second call is ignored).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Every line passes the secrets guard on its way to stderr, whatever its level or origin.
    // A failed write is dropped, not reported: tracing reports it with `eprintln!`, which panics
    // when stderr is a pipe nobody reads any more (a worker whose supervisor was killed).
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(redact::RedactingStderr)
        .with_target(false)
        .log_internal_errors(false);
    let stderr: Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => stderr
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => stderr
            .json()
            .flatten_event(true)
            .with_filter(filter)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(LogHook::global().layer())
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use crate::domain::WorkerToken;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_token_formatted_into_a_log_line_is_redacted_in_text_and_json() {
        let token = WorkerToken::generate();
        let secret = token.expose_secret().to_owned();
        for json in [false, true] {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let builder = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_max_level(tracing::Level::TRACE);
            let dispatch: tracing::Dispatch = if json {
                builder.json().finish().into()
            } else {
                builder.finish().into()
            };
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!(token = %token, debug = ?token, "registering with {token}");
            });
            let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            assert!(logged.contains("[REDACTED]"), "{logged}");
            assert!(!logged.contains(&secret));
        }
    }
}
