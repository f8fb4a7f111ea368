//! Who is asking: the enrollment key (gated registration), the admin key and the worker's
//! proof of possession (`Authorization: Bearer <token>`). Keys and tokens are hashed and
//! compared in constant time; none is ever logged or echoed.

use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode, header};

use super::error::ApiError;
use super::state::AppState;
use super::store::{KeyRole, KeySha256};
use crate::domain::{ErrorCode, TokenSha256, WorkerToken};
use crate::wire::{ADMIN_KEY_HEADER, ENROLLMENT_KEY_HEADER};

/// What a credential header held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Absent,
    Valid,
    Invalid,
}

impl Credential {
    pub fn is_valid(self) -> bool {
        self == Self::Valid
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap_or_default().trim())
}

/// Checks `x-basis-admin-key` against the config's admin hashes and the stored admin keys.
pub async fn admin_key(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<Credential, ApiError> {
    let Some(key) = header_str(headers, ADMIN_KEY_HEADER) else {
        return Ok(Credential::Absent);
    };
    let hash = KeySha256::of(key);
    // Check every configured hash (no early exit), then the store.
    let in_config = state
        .config
        .admin_keys
        .iter()
        .fold(false, |found, k| found | k.ct_eq(&hash));
    let valid = in_config || state.store.key_role(hash).await? == Some(KeyRole::Admin);
    if valid {
        tracing::info!(%ip, "admin key accepted");
        Ok(Credential::Valid)
    } else {
        state.auth_failed(ip);
        Ok(Credential::Invalid)
    }
}

/// Checks `Authorization: Bearer <token>` against the stored token hash.
pub fn worker_proof(
    state: &AppState,
    headers: &HeaderMap,
    stored: &TokenSha256,
    ip: IpAddr,
) -> Credential {
    let Some(value) = header_str(headers, header::AUTHORIZATION.as_str()) else {
        return Credential::Absent;
    };
    let valid = value
        .strip_prefix("Bearer ")
        .and_then(|t| WorkerToken::parse(t.trim()).ok())
        .is_some_and(|token| token.matches(stored));
    if valid {
        Credential::Valid
    } else {
        state.auth_failed(ip);
        Credential::Invalid
    }
}

/// For a new registration while gated: the enrollment key must be present (401) and right (403).
pub fn enrollment_key(state: &AppState, headers: &HeaderMap, ip: IpAddr) -> Result<(), ApiError> {
    let Some(expected) = state.config.enrollment_key else {
        return Ok(());
    };
    let Some(key) = header_str(headers, ENROLLMENT_KEY_HEADER).filter(|k| !k.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::RegistrationGated,
            "this orchestrator registers new workers only with the operator's enrollment key",
        )
        .with_fix(
            "Ask the orchestrator's operator for the enrollment key, and give it to basis through \
             the BASIS_ENROLLMENT_KEY environment variable (never as a tool argument).",
        ));
    };
    if KeySha256::of(key).ct_eq(&expected) {
        Ok(())
    } else {
        state.auth_failed(ip);
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::EnrollmentKeyInvalid,
            "the enrollment key is not the one this orchestrator expects (it was not shown)",
        )
        .with_fix("Check BASIS_ENROLLMENT_KEY against the key the operator gave you."))
    }
}
