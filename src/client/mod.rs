//! `OrchestratorClient`: how the rest of the crate (operations, the worker) talks to an
//! orchestrator over HTTP. One method per route; bodies are [`crate::wire`] types; every
//! failure is a [`ClientError`] that converts into a [`crate::domain::Problem`] with a stable
//! code and a fix.
//!
//! Never hangs: connecting gives up after [`CONNECT_TIMEOUT`], and every request (body
//! included) after the timeout given to [`OrchestratorClient::new`]. Never leaks: a worker's
//! device key never travels (its requests are signed, [`WorkerAuth`]); a legacy worker token
//! and the keys travel only in headers marked sensitive, and an answer that repeats one (or
//! looks like any secret) has its message withheld.
//!
//! Architecture invariant: the client speaks only wire types; it never imports the
//! orchestrator's internals, the operations or the fronts.

mod discovery;
mod error;
mod keys;
mod network;
mod receipts;
mod settlement;
mod signing;
mod tasks;
mod workers;

use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

pub use error::ClientError;
pub use signing::WorkerAuth;
pub use tasks::{ReadAs, SubmitOutcome};
pub use workers::{RegisterAuth, RegisterOutcome};

use crate::wire::known_code;

/// Connecting gives up after this long (or the request timeout, if shorter).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A sensible request timeout for interactive use.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Answers larger than this are refused (`BAD_RESPONSE`).
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Server messages are cut to this many characters.
const MAX_MESSAGE_CHARS: usize = 1000;

/// A client of one orchestrator. Cheap to clone (the connection pool is shared).
#[derive(Debug, Clone)]
pub struct OrchestratorClient {
    http: reqwest::Client,
    base: Url,
    timeout: Duration,
}

impl OrchestratorClient {
    /// A client for the orchestrator at `base` (`http(s)://host[:port][/prefix]`), whose
    /// requests fail after `timeout`.
    pub fn new(base: Url, timeout: Duration) -> Result<Self, ClientError> {
        let invalid = |reason: &'static str| ClientError::InvalidUrl {
            url: redact_url(&base),
            reason,
        };
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.host().is_none() {
            return Err(invalid("it has no host"));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(invalid("it must not contain a user name or password"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("it must not have a query or fragment"));
        }
        let mut base = base;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let timeout = timeout.max(Duration::from_millis(100));
        let http = crate::http::client_builder(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self {
            http,
            base,
            timeout,
        })
    }

    /// The orchestrator's base URL (always ending in `/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL of `path` under the base: exactly what the request is sent to (and signed for).
    fn url(&self, path: &str) -> Result<Url, ClientError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|_| ClientError::InvalidUrl {
                url: redact_url(&self.base),
                reason: "cannot join the route to it",
            })
    }

    fn request(&self, method: Method, path: &str) -> Result<RequestBuilder, ClientError> {
        Ok(self.http.request(method, self.url(path)?))
    }

    /// Sends `rb`; returns the status and the decoded body of a success, or the error.
    /// `accept` lists non-2xx statuses whose body is still a `T` (e.g. 503 for health).
    /// `secrets` are values that must never appear in what we return.
    async fn send<T: DeserializeOwned>(
        &self,
        rb: RequestBuilder,
        accept: &[StatusCode],
        secrets: &[&str],
    ) -> Result<(StatusCode, T), ClientError> {
        let url = redact_url(&self.base);
        let mut response = rb
            .send()
            .await
            .map_err(|e| error::from_reqwest(&e, &url, self.timeout))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| error::from_reqwest(&e, &url, self.timeout))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ClientError::BadResponse {
                    url,
                    status: status.as_u16(),
                    detail: format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() || accept.contains(&status) {
            return serde_json::from_slice(&body)
                .map(|v| (status, v))
                .map_err(|e| ClientError::BadResponse {
                    url,
                    status: status.as_u16(),
                    detail: format!("not the expected JSON ({})", e.classify_str()),
                });
        }
        Err(error_answer(&url, status, &body, secrets))
    }
}

/// Turns a non-success answer into the matching error.
fn error_answer(url: &str, status: StatusCode, body: &[u8], secrets: &[&str]) -> ClientError {
    let code = status.as_u16();
    let Ok(parsed) = serde_json::from_slice::<error::LenientErrorBody>(body) else {
        return if status.is_server_error() {
            ClientError::Server {
                url: url.to_owned(),
                status: code,
                message: status
                    .canonical_reason()
                    .unwrap_or("server error")
                    .to_owned(),
            }
        } else {
            ClientError::BadResponse {
                url: url.to_owned(),
                status: code,
                detail: "the error answer is not {\"error\":{code,message}} JSON".into(),
            }
        };
    };
    let message = clean_text(&parsed.error.message, secrets);
    let fix = parsed.error.fix.as_deref().map(|f| clean_text(f, secrets));
    match known_code(&parsed.error.code) {
        _ if status.is_server_error() => ClientError::Server {
            url: url.to_owned(),
            status: code,
            message,
        },
        Some(known) => {
            let mut problem = crate::domain::Problem::new(known, message);
            problem.fix = fix;
            ClientError::Api {
                status: code,
                problem,
            }
        }
        None => ClientError::UnknownCode {
            status: code,
            code: printable_code(&parsed.error.code),
            message,
        },
    }
}

/// A remote message made safe to show: cut, secrets withheld.
fn clean_text(text: &str, secrets: &[&str]) -> String {
    let leaks = secrets.iter().any(|s| !s.is_empty() && text.contains(s));
    if leaks || crate::guard::check_text("message", text).is_err() {
        return "(the orchestrator's message was withheld: it contained what looks like a secret)"
            .to_owned();
    }
    let mut out: String = text.chars().take(MAX_MESSAGE_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn printable_code(code: &str) -> String {
    let ok = (1..=64).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        code.to_owned()
    } else {
        "(unreadable)".to_owned()
    }
}

/// The URL without user info, query or fragment (for messages).
fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A header value holding a secret: marked sensitive so no layer logs it.
fn secret_header(value: &str) -> Result<HeaderValue, ClientError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        ClientError::Setup("a key or token holds characters that cannot go in a header".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// Extension for `serde_json` errors: the category only (never the text, which may hold data).
trait ClassifyStr {
    fn classify_str(&self) -> &'static str;
}

impl ClassifyStr for serde_json::Error {
    fn classify_str(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "read error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected shape",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(test)]
mod tests;
