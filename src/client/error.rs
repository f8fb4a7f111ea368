//! `ClientError`: every way a call to the orchestrator can fail, and its [`Problem`] (stable
//! code + fix). Messages never contain a token or key.

use std::time::Duration;

use serde::Deserialize;

use crate::domain::{ErrorCode, Problem};

/// A failed call to the orchestrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("the orchestrator URL {url} is not usable: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    #[error("cannot reach the orchestrator at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the orchestrator at {url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    /// The orchestrator refused with a code this basis knows (passed through).
    #[error("the orchestrator refused (HTTP {status}): {}", problem.message)]
    Api { status: u16, problem: Problem },
    /// A 4xx with a code this basis does not know.
    #[error("the orchestrator refused (HTTP {status}, code {code}): {message}")]
    UnknownCode {
        status: u16,
        code: String,
        message: String,
    },
    /// A 5xx.
    #[error("the orchestrator at {url} failed (HTTP {status}): {message}")]
    Server {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the orchestrator at {url} sent an answer basis cannot read (HTTP {status}): {detail}")]
    BadResponse {
        url: String,
        status: u16,
        detail: String,
    },
}

impl ClientError {
    /// The stable code this error becomes.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidUrl { .. } => ErrorCode::ConfigInvalid,
            Self::Setup(_) => ErrorCode::Internal,
            Self::Unreachable { .. } => ErrorCode::OrchestratorUnreachable,
            Self::Timeout { .. } => ErrorCode::OrchestratorTimeout,
            Self::Api { problem, .. } => problem.code,
            Self::UnknownCode { .. } | Self::Server { .. } => ErrorCode::OrchestratorError,
            Self::BadResponse { .. } => ErrorCode::BadResponse,
        }
    }

    /// The HTTP status, when the orchestrator answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. }
            | Self::UnknownCode { status, .. }
            | Self::Server { status, .. }
            | Self::BadResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<ClientError> for Problem {
    fn from(e: ClientError) -> Self {
        let code = e.code();
        match e {
            ClientError::Api { problem, .. } => problem,
            ClientError::InvalidUrl { .. } => Problem::new(code, e.to_string()).with_fix(
                "Set BASIS_ORCHESTRATOR_URL in the env file (or `orchestrator_url` in \
                 basis.toml) to the orchestrator's http(s):// address, e.g. \
                 http://127.0.0.1:8787.",
            ),
            ClientError::Unreachable { ref url, .. } => {
                let fix = format!(
                    "Is the orchestrator running at {url} (`basis orchestrator` on its host)? \
                     Check BASIS_ORCHESTRATOR_URL in the env file (or `orchestrator_url` in \
                     basis.toml), the host, the port and any firewall; network_status (`basis \
                     network`) shows what this host sees."
                );
                Problem::new(code, e.to_string()).with_fix(fix)
            }
            ClientError::Timeout { .. } => Problem::new(code, e.to_string()).with_fix(
                "The orchestrator accepted the connection but is slow or stuck: retry in a \
                 moment, and tell its operator if it persists.",
            ),
            ClientError::Server { .. } | ClientError::UnknownCode { .. } => {
                Problem::new(code, e.to_string()).with_fix(
                    "The orchestrator failed or sent an error this basis does not know; retry \
                     later, update basis, or tell the orchestrator's operator.",
                )
            }
            ClientError::BadResponse { .. } => Problem::new(code, e.to_string()).with_fix(
                "Check that the URL points at a basis orchestrator and that both run \
                 compatible versions; network_status (`basis network`) asks it.",
            ),
            ClientError::Setup(_) => Problem::new(code, e.to_string()),
        }
    }
}

/// `{"error":{code,message,fix?}}` read leniently: the code as text (it may be newer than us).
#[derive(Debug, Deserialize)]
pub(super) struct LenientErrorBody {
    pub error: LenientProblem,
}

#[derive(Debug, Deserialize)]
pub(super) struct LenientProblem {
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fix: Option<String>,
}

/// Classifies a transport failure. The text comes from the innermost cause (e.g. "Connection
/// refused"); reqwest's own text names the full URL, which we show redacted instead.
pub(super) fn from_reqwest(e: &reqwest::Error, url: &str, timeout: Duration) -> ClientError {
    if e.is_connect() {
        let reason = if e.is_timeout() {
            "the connection timed out".to_owned()
        } else {
            root_cause(e)
        };
        return ClientError::Unreachable {
            url: url.to_owned(),
            reason,
        };
    }
    if e.is_timeout() {
        return ClientError::Timeout {
            url: url.to_owned(),
            secs: timeout.as_secs().max(1),
        };
    }
    if e.is_body() || e.is_decode() {
        return ClientError::BadResponse {
            url: url.to_owned(),
            status: e.status().map_or(0, |s| s.as_u16()),
            detail: root_cause(e),
        };
    }
    ClientError::Unreachable {
        url: url.to_owned(),
        reason: root_cause(e),
    }
}

fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if text.contains("://") {
        // Still reqwest's own text, which names the URL; say what kind of failure it was.
        "the request failed".to_owned()
    } else {
        text
    }
}
