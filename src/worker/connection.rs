//! Opening the worker channel (docs/PROTOCOL.md, "Connecting"): the WebSocket upgrade at
//! `/api/workers/connect` (rustls on ring with the platform's roots for `wss://`, plain TCP for
//! `ws://`), then `hello` → `welcome`. A worker with a device key sends no credential: the
//! orchestrator's first frame is a `challenge`, and the `hello` carries the key's signature over
//! it, the orchestrator's origin and the worker id (`wire::signature::channel_proof`); the key
//! never leaves the host. A legacy worker sends its token as the upgrade's bearer header, in that
//! one header and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use zeroize::Zeroizing;

use super::config::{Credential, WorkerConfig};
use super::status::{LastError, UNREACHABLE, unix_now};
use crate::wire::signature::{channel_proof, origin_of};
use crate::wire::{OrchestratorMessage, WORKER_CONNECT, WorkerMessage};

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How much one read of the channel takes at most. tungstenite zero-fills that much before each
/// read, and its default (128 KiB) made that fill a visible share of a worker's CPU per job;
/// frames are mostly a few hundred bytes, and a larger one still arrives whole (the buffer
/// grows to its length).
const READ_BUFFER: usize = 8 * 1024;

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
        "the orchestrator refused the worker's credential (HTTP {0}); register this worker (`basis register`): it moves a worker still on BASIS_WORKER_TOKEN to its device key (BASIS_DEVICE_KEY)"
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
    if let Credential::Token(token) = &config.credential {
        let bearer = Zeroizing::new(format!("Bearer {}", token.expose_secret()));
        let mut auth = HeaderValue::from_str(&bearer)
            .map_err(|_| ChannelError::Protocol("the token cannot form a header".into()))?;
        auth.set_sensitive(true);
        request.headers_mut().insert(header::AUTHORIZATION, auth);
    }
    let connector = if url.scheme() == "wss" {
        Connector::Rustls(tls_config()?)
    } else {
        Connector::Plain
    };
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(WebSocketConfig::default().read_buffer_size(READ_BUFFER)),
        true,
        Some(connector),
    )
    .await
    .map_err(connect_error)?;
    match &config.credential {
        Credential::Token(_) => send(&mut ws, hello).await?,
        Credential::Key(key) => {
            let challenge = challenge(&mut ws).await?;
            let origin = channel_origin(url);
            let proof = channel_proof(key, &origin, &challenge, &config.worker_id);
            send(&mut ws, &with_proof(hello, proof)).await?;
        }
    }
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

/// Waits for the orchestrator's `challenge`, the first frame on a connection opened without a
/// bearer token.
async fn challenge(ws: &mut Ws) -> Result<String, ChannelError> {
    loop {
        let frame = ws
            .next()
            .await
            .ok_or_else(|| ChannelError::Lost("closed before the challenge".into()))?
            .map_err(|e| ChannelError::Lost(e.to_string()))?;
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(frame) => {
                let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                return Err(ChannelError::Lost(format!(
                    "closed before the challenge {why}"
                )));
            }
            _ => continue,
        };
        return match serde_json::from_str::<OrchestratorMessage>(&text) {
            Ok(OrchestratorMessage::Challenge { challenge }) => Ok(challenge),
            Ok(OrchestratorMessage::Error { code, message }) => {
                Err(ChannelError::Rejected { code, message })
            }
            Ok(_) => Err(ChannelError::Protocol(
                "expected a challenge first: the orchestrator may be too old for device keys"
                    .into(),
            )),
            Err(e) => Err(ChannelError::Protocol(format!("unreadable frame: {e}"))),
        };
    }
}

/// The origin the channel proof names: that of the orchestrator's base URL, which is the
/// channel URL without its route (`wss://h/p/api/workers/connect` → `https://h/p`).
fn channel_origin(url: &url::Url) -> String {
    let origin = origin_of(url);
    match origin.strip_suffix(WORKER_CONNECT) {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => origin,
    }
}

/// `hello` carrying `proof`.
fn with_proof(hello: &WorkerMessage, proof: String) -> WorkerMessage {
    let mut hello = hello.clone();
    if let WorkerMessage::Hello { proof: slot, .. } = &mut hello {
        *slot = Some(proof);
    }
    hello
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proof_names_the_orchestrators_base_origin() {
        let origin = |s: &str| channel_origin(&url::Url::parse(s).unwrap());
        assert_eq!(
            origin("ws://127.0.0.1:8787/api/workers/connect"),
            "http://127.0.0.1:8787"
        );
        assert_eq!(
            origin("wss://orch.example/basis/api/workers/connect"),
            "https://orch.example/basis"
        );
        let base = url::Url::parse("http://127.0.0.1:8787").unwrap();
        let connect = crate::worker::connect_url(&base).unwrap();
        assert_eq!(channel_origin(&connect), origin_of(&base));
    }
}
