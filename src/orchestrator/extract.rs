//! `ApiJson<T>`: the JSON body extractor. Unlike axum's `Json`, every rejection becomes an
//! [`ApiError`] with the `{"error":…}` body: 413 `PAYLOAD_TOO_LARGE` past the body limit,
//! 415 without a JSON content type, 400 `INVALID_JSON` for syntax errors (with line and column)
//! and for shape errors (with the field path, the offending value hidden).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::{ApiError, scrub_serde_message};
use crate::domain::ErrorCode;

/// The body limit in force, put into request extensions by the router so 413 can name it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body of type `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !has_json_content_type(&req) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::InvalidJson,
                "the request body must be JSON",
            )
            .with_fix("Send the header Content-Type: application/json."));
        }
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(limit)
            } else {
                ApiError::invalid_json("the request body could not be read")
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

fn has_json_content_type(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

/// Parses `bytes` as `T`, describing failures without echoing values.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        describe(&inner, &path)
    })?;
    Ok(value)
}

/// Describes a `serde_json` error: syntax with its position, shape with its path.
pub fn describe(e: &serde_json::Error, path: &str) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::invalid_json(format!(
            "the request body is not valid JSON: {}",
            scrub_serde_message(&e.to_string())
        )),
        Category::Data => {
            let at = if path.is_empty() || path == "." {
                String::new()
            } else {
                format!("`{path}`: ")
            };
            ApiError::invalid_json(format!(
                "the request body does not have the expected shape: {at}{}",
                scrub_serde_message(&e.to_string())
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Shape {
        #[allow(dead_code)]
        inner: Inner,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        n: u64,
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse::<serde_json::Value>(b"{\"a\": ").unwrap_err();
        assert_eq!(e.problem.code, ErrorCode::InvalidJson);
        assert!(
            e.problem.message.contains("line 1"),
            "{}",
            e.problem.message
        );
    }

    #[test]
    fn shape_errors_name_the_path_and_hide_the_value() {
        let e = parse::<Shape>(br#"{"inner": {"n": "sk-ant-SECRETVALUE"}}"#).unwrap_err();
        assert!(
            e.problem.message.contains("inner.n"),
            "{}",
            e.problem.message
        );
        assert!(!e.problem.message.contains("SECRETVALUE"));
    }
}
