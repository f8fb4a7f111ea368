//! The control socket's protocol: one JSON request line, one JSON response line, then the
//! connection closes. The socket is `supervisor.sock` (0600) in the state dir; only its owner
//! (or root) may connect.
//!
//! ```text
//! → {"cmd":"status"}                      ← {"reply":"status", "pid":…, "state":"running", …}
//! → {"cmd":"stop","drain_timeout_s":30}   ← {"reply":"stopped","worker_exit":{…}}   (then it exits)
//! → {"cmd":"logs","lines":50}             ← {"reply":"logs","path":…,"lines":[…]}
//!                                          ← {"reply":"error","message":…} on a bad request
//! ```
//!
//! [`request`] is the client the operations use; [`read_request`] and [`write_response`] are
//! the server's halves.

use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::error::SupervisorError;
use super::state::{ExitInfo, SupervisorStatus};

/// The largest message either side accepts.
pub const MAX_MESSAGE_BYTES: u64 = 4 << 20;

/// A request to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The supervisor's state, the worker's pid, restarts and recent exits.
    Status,
    /// Stop the worker (SIGTERM; SIGKILL after the drain timeout), answer, and exit.
    Stop {
        /// Seconds the worker may take to finish its jobs (default: 30).
        #[serde(default)]
        drain_timeout_s: Option<u64>,
    },
    /// The last lines of the worker log, redacted.
    Logs {
        /// How many lines (default 50, at most 5000).
        #[serde(default)]
        lines: Option<usize>,
    },
}

/// The supervisor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Response {
    /// The answer to `status`.
    Status(SupervisorStatus),
    /// The answer to `stop`, sent once the worker has ended; the supervisor then exits.
    Stopped {
        /// How the worker ended (absent when none was running, e.g. in a crash loop).
        #[serde(default)]
        worker_exit: Option<ExitInfo>,
    },
    /// The answer to `logs`.
    Logs {
        /// The log file read.
        path: String,
        /// The lines, oldest first, redacted.
        lines: Vec<String>,
    },
    /// The request was not understood (or the supervisor is already stopping).
    Error { message: String },
}

/// Sends `req` to the supervisor at `socket` and reads its answer, all within `timeout`.
pub async fn request(
    socket: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<Response, SupervisorError> {
    let exchange = async {
        let mut stream =
            UnixStream::connect(socket)
                .await
                .map_err(|source| SupervisorError::Connect {
                    path: socket.to_path_buf(),
                    source,
                })?;
        let io = |source| SupervisorError::Connect {
            path: socket.to_path_buf(),
            source,
        };
        write_line(&mut stream, req).await.map_err(io)?;
        let line = read_line(&mut stream).await.map_err(io)?;
        serde_json::from_slice::<Response>(&line)
            .map_err(|e| SupervisorError::Protocol(e.to_string()))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| SupervisorError::Timeout { after: timeout })?
}

/// Reads one request line (server side). The error text is safe to send back: it never
/// echoes the line.
pub async fn read_request<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Request, String> {
    let line = read_line(reader)
        .await
        .map_err(|e| format!("cannot read the request: {e}"))?;
    serde_json::from_slice(&line).map_err(|e| {
        format!(
            "not a request (expected {{\"cmd\":\"status\"|\"stop\"|\"logs\"}}): {}",
            e.classify_message()
        )
    })
}

/// Writes one response line (server side).
pub async fn write_response<W: AsyncWrite + Unpin>(
    writer: &mut W,
    response: &Response,
) -> std::io::Result<()> {
    write_line(writer, response).await
}

async fn write_line<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    value: &T,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    writer.write_all(&bytes).await?;
    writer.flush().await
}

async fn read_line<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut limited = BufReader::new(reader.take(MAX_MESSAGE_BYTES));
    limited.read_until(b'\n', &mut line).await?;
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the message ended early or is too large",
        ));
    }
    Ok(line)
}

/// Serde's error category only: a parse error's message may quote the input.
trait Classify {
    fn classify_message(&self) -> &'static str;
}

impl Classify for serde_json::Error {
    fn classify_message(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "invalid JSON",
            serde_json::error::Category::Data => "unknown command or bad field",
            serde_json::error::Category::Eof => "incomplete JSON",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        let r: Request = serde_json::from_str(r#"{"cmd":"status"}"#).unwrap();
        assert_eq!(r, Request::Status);
        let r: Request = serde_json::from_str(r#"{"cmd":"stop","drain_timeout_s":5}"#).unwrap();
        assert_eq!(
            r,
            Request::Stop {
                drain_timeout_s: Some(5)
            }
        );
        let r: Request = serde_json::from_str(r#"{"cmd":"logs"}"#).unwrap();
        assert_eq!(r, Request::Logs { lines: None });
        let v = serde_json::to_value(Response::Stopped { worker_exit: None }).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"reply": "stopped", "worker_exit": null})
        );
    }

    #[tokio::test]
    async fn a_bad_request_is_answered_without_echoing_it() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        a.write_all(b"{\"cmd\":\"secret-4c0883a691\"}\n")
            .await
            .unwrap();
        let err = read_request(&mut b).await.unwrap_err();
        assert!(!err.contains("4c0883a691"), "{err}");
        a.write_all(b"{\"cmd\":\"logs\",\"lines\":3}\n")
            .await
            .unwrap();
        assert_eq!(
            read_request(&mut b).await.unwrap(),
            Request::Logs { lines: Some(3) }
        );
    }
}
