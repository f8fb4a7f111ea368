//! Opening the worker channel: the WebSocket upgrade at `/api/workers/connect` with the token
//! as a bearer header (rustls on ring with the platform's roots for `wss://`, plain TCP for
//! `ws://`), then `hello` → `welcome`. The token goes into that one header and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use zeroize::Zeroizing;

use super::config::WorkerConfig;
use super::status::{LastError, UNREACHABLE, unix_now};
use crate::wire::{OrchestratorMessage, WorkerMessage};

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The timing the orchestrator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Welcome {
    pub heartbeat_interval_s: u32,
    pub online_window_s: u32,
}

impl Welcome {
    pub(super) fn heartbeat_interval(self) -> Duration {
        Duration::from_secs(u64::from(self.heartbeat_interval_s.max(1)))
    }

    /// With no frame at all for this long, the connection is considered dead.
    pub(super) fn silence_limit(self) -> Duration {
        let window = Duration::from_secs(u64::from(self.online_window_s));
        window.max(self.heartbeat_interval() * 3)
    }
}

/// Why a connection could not be opened (or was lost).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ChannelError {
    #[error("cannot reach the orchestrator: {0}")]
    Unreachable(String),
    #[error(
        "the orchestrator refused the worker token (HTTP {0}); register this worker (`basis register`) or check BASIS_WORKER_TOKEN"
    )]
    Unauthorized(u16),
    #[error("the orchestrator refused the connection: {code}: {message}")]
    Rejected { code: String, message: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("connection lost: {0}")]
    Lost(String),
}

impl ChannelError {
    pub(super) fn last_error(&self) -> LastError {
        let code = match self {
            Self::Unreachable(_) => UNREACHABLE.to_owned(),
            Self::Unauthorized(_) => "UNAUTHORIZED".to_owned(),
            Self::Rejected { code, .. } => code.clone(),
            Self::Protocol(_) => "PROTOCOL".to_owned(),
            Self::Lost(_) => "CONNECTION_LOST".to_owned(),
        };
        LastError {
            code,
            message: self.to_string(),
            at: unix_now(),
        }
    }
}

/// Opens the channel at `url` (the primary's or a fallback's) and completes `hello` →
/// `welcome` within the configured time.
pub(super) async fn open(
    config: &WorkerConfig,
    url: &url::Url,
    hello: &WorkerMessage,
) -> Result<(Ws, Welcome), ChannelError> {
    let limit = config.welcome_timeout;
    tokio::time::timeout(limit, handshake(config, url, hello))
        .await
        .unwrap_or_else(|_| {
            Err(ChannelError::Unreachable(format!(
                "no welcome within {} s",
                limit.as_secs()
            )))
        })
}

async fn handshake(
    config: &WorkerConfig,
    url: &url::Url,
    hello: &WorkerMessage,
) -> Result<(Ws, Welcome), ChannelError> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ChannelError::Protocol(e.to_string()))?;
    let bearer = Zeroizing::new(format!("Bearer {}", config.token.expose_secret()));
    let mut auth = HeaderValue::from_str(&bearer)
        .map_err(|_| ChannelError::Protocol("the token cannot form a header".into()))?;
    auth.set_sensitive(true);
    request.headers_mut().insert(header::AUTHORIZATION, auth);
    let connector = if url.scheme() == "wss" {
        Connector::Rustls(tls_config()?)
    } else {
        Connector::Plain
    };
    let (mut ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, Some(connector))
            .await
            .map_err(connect_error)?;
    send(&mut ws, hello).await?;
    loop {
        let frame = ws
            .next()
            .await
            .ok_or_else(|| ChannelError::Lost("closed before welcome".into()))?
            .map_err(|e| ChannelError::Lost(e.to_string()))?;
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(frame) => {
                let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                return Err(ChannelError::Lost(format!("closed before welcome {why}")));
            }
            _ => continue,
        };
        return match serde_json::from_str::<OrchestratorMessage>(&text) {
            Ok(OrchestratorMessage::Welcome {
                heartbeat_interval_s,
                online_window_s,
            }) => Ok((
                ws,
                Welcome {
                    heartbeat_interval_s,
                    online_window_s,
                },
            )),
            Ok(OrchestratorMessage::Error { code, message }) => {
                Err(ChannelError::Rejected { code, message })
            }
            Ok(_) => Err(ChannelError::Protocol(
                "expected welcome after hello".into(),
            )),
            Err(e) => Err(ChannelError::Protocol(format!("unreadable frame: {e}"))),
        };
    }
}

/// Sends one frame as JSON text.
pub(super) async fn send<S>(sink: &mut S, message: &WorkerMessage) -> Result<(), ChannelError>
where
    S: SinkExt<Message, Error = tungstenite::Error> + Unpin,
{
    let text = serde_json::to_string(message).map_err(|e| ChannelError::Protocol(e.to_string()))?;
    sink.send(Message::text(text))
        .await
        .map_err(|e| ChannelError::Lost(e.to_string()))
}

fn connect_error(e: tungstenite::Error) -> ChannelError {
    match e {
        tungstenite::Error::Http(resp) => {
            let status = resp.status().as_u16();
            if matches!(status, 401 | 403) {
                return ChannelError::Unauthorized(status);
            }
            let body = resp
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let parsed = serde_json::from_str::<serde_json::Value>(&body).ok();
            let field = |name: &str| {
                parsed
                    .as_ref()
                    .and_then(|v| v.pointer(&format!("/error/{name}")))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned)
            };
            match (field("code"), field("message")) {
                (Some(code), Some(message)) => ChannelError::Rejected { code, message },
                _ => ChannelError::Rejected {
                    code: format!("HTTP_{status}"),
                    message: "the WebSocket upgrade was refused".into(),
                },
            }
        }
        other => ChannelError::Unreachable(other.to_string()),
    }
}

/// rustls on ring, verifying with the platform's roots (as `crate::http` clients do).
fn tls_config() -> Result<Arc<rustls::ClientConfig>, ChannelError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(BuilderVerifierExt::with_platform_verifier)
        .map_err(|e| ChannelError::Unreachable(format!("TLS setup: {e}")))?
        .with_no_client_auth();
    Ok(Arc::new(config))
}
