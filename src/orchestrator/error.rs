//! `ApiError`: the one error type of every handler. It renders `{"error":{code,message,fix}}`
//! with the right status, and never leaks internals: an internal failure is logged with
//! `tracing` and answered with a generic `INTERNAL`.

use std::fmt;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::store::StoreError;
use crate::domain::{ErrorCode, Problem};
use crate::guard::SecretRefused;
use crate::wire::ApiErrorBody;

/// An error answer: status, problem, and for 429 the `Retry-After` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub problem: Problem,
    pub retry_after_s: Option<u64>,
}

/// Put into the response's extensions so the metrics layer can count errors by code.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCodeTag(pub ErrorCode);

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            problem: Problem::new(code, message),
            retry_after_s: None,
        }
    }

    #[must_use]
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.problem.fix = Some(fix.into());
        self
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A query string that does not parse: 400 `INVALID_ARGUMENT` with the parser's message
    /// (any quoted value scrubbed) and `fix`.
    pub fn bad_query(e: &QueryRejection, fix: impl Into<String>) -> Self {
        Self::bad_request(
            ErrorCode::InvalidArgument,
            format!("bad query: {}", scrub_serde_message(&e.body_text())),
        )
        .with_fix(fix)
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::bad_request(ErrorCode::InvalidJson, message)
            .with_fix("Send a JSON object as described in /openapi.json.")
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than the orchestrator accepts ({limit} bytes)"),
        )
        .with_fix("Send a smaller body (fewer models, a shorter hardware summary).")
    }

    pub fn rate_limited(what: &str, retry_after_s: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!("too many {what} from this address; retry in {retry_after_s} s"),
        )
        .with_fix("Wait for the Retry-After delay, then retry once.");
        e.retry_after_s = Some(retry_after_s);
        e
    }

    /// Adds `Retry-After: secs`.
    #[must_use]
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_s = Some(secs);
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
            .with_fix("See /openapi.json for the routes this orchestrator serves.")
    }

    /// Logs `err` (with `context`) and returns a generic 500 that reveals nothing of it.
    pub fn internal(context: &str, err: &dyn fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the orchestrator failed to handle this request",
        )
        .with_fix("Retry later; if it persists, the operator can find the cause in the orchestrator's log.")
    }
}

/// Seconds a client is told to wait when the database is unavailable.
const STORE_RETRY_AFTER_S: u64 = 2;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Unavailable(why) = &e {
            tracing::warn!(error = %why, "the database is unavailable");
            let mut api = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StoreUnavailable,
                "the orchestrator cannot reach its database right now; nothing was changed",
            )
            .with_fix(
                "Retry after the Retry-After seconds; the orchestrator reconnects by itself.",
            );
            api.retry_after_s = Some(STORE_RETRY_AFTER_S);
            return api;
        }
        Self::internal("store failure", &e)
    }
}

impl From<SecretRefused> for ApiError {
    fn from(refused: SecretRefused) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            problem: Problem::from(refused),
            retry_after_s: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.problem.code;
        let mut response = (self.status, Json(ApiErrorBody::from(self.problem))).into_response();
        if let Some(secs) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The body was not read to its end, so this connection cannot carry another
            // request: say so, or a client's pool reuses it and its next request meets a
            // closed socket (a broken pipe).
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response.extensions_mut().insert(ErrorCodeTag(code));
        response
    }
}

/// Hides the values serde puts in its messages (`invalid type: string "…"`, ``unknown variant
/// `…` ``): a field may hold a secret, and an error must not echo it.
pub fn scrub_serde_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push_str("(value hidden)");
            }
            '`' if out.ends_with("variant ") || out.ends_with("field ") => {
                for c in chars.by_ref() {
                    if c == '`' {
                        break;
                    }
                }
                out.push_str("(value hidden)");
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_values_but_keeps_the_shape() {
        let secret = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        let msg =
            format!("invalid type: string \"{secret}\\\"x\", expected u64 at line 1 column 9");
        let s = scrub_serde_message(&msg);
        assert!(!s.contains(secret));
        assert!(s.contains("expected u64 at line 1 column 9"), "{s}");
        let s = scrub_serde_message(&format!("unknown variant `{secret}`, expected `a` or `b`"));
        assert!(!s.contains(secret));
        assert!(s.contains("expected `a` or `b`"), "{s}");
    }

    #[tokio::test]
    async fn renders_the_error_body_and_retry_after() {
        let resp = ApiError::rate_limited("registrations", 7).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "7");
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "RATE_LIMITED");
        assert!(body["error"]["fix"].is_string());
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let e = ApiError::internal("x", &"disk /secret/path exploded");
        assert!(!e.problem.message.contains("/secret/path"));
        assert_eq!(e.problem.code, ErrorCode::Internal);
    }
}
