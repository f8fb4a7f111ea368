//! The operator's key routes (admin key): `GET /api/keys` (every key, its quotas and today's
//! usage), `GET /api/keys/{id}/usage` (its usage and charged amount per UTC day), `POST
//! /api/keys/{id}/revoke` (the key stops working at once on every route, on every replica) and `PUT /api/keys/{id}/limits` (a client key's quotas). Keys are made by
//! `basis orchestrator keys create` on the database; only their sha256 is ever stored.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::domain::ErrorCode;
use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::extract::ApiJson;
use crate::orchestrator::keys::{FindKeyError, find};
use crate::orchestrator::replica::notify;
use crate::orchestrator::state::{AppState, unix_now};
use crate::orchestrator::store::{KeyEntry, KeyRole, KeySha256, utc_day};
use crate::wire::{
    ApiKey, DayUsage, KeyList, KeyUsage, KeyUsageReport, REPLICA_KEY_CHANGED, SetLimitsRequest,
    USAGE_DAYS_DEFAULT, USAGE_DAYS_MAX,
};

/// `GET /api/keys`.
pub async fn list(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Json<KeyList>, ApiError> {
    crate::orchestrator::auth::require_admin(&state, &headers, ip).await?;
    let day = utc_day(unix_now());
    let keys = state.store.keys(day).await?;
    Ok(Json(KeyList {
        keys: keys.iter().map(KeyEntry::to_wire).collect(),
        day,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    days: Option<u32>,
}

/// `GET /api/keys/{id}/usage?days=N`: the key's usage per UTC day over the last N days
/// (today included), for billing its holder.
pub async fn usage(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<KeyUsageReport>, ApiError> {
    crate::orchestrator::auth::require_admin(&state, &headers, ip).await?;
    let fix = format!("Use ?days=N with N from 1 to {USAGE_DAYS_MAX}.");
    let Query(q) = query.map_err(|e| ApiError::bad_query(&e, fix.clone()))?;
    let days = q.days.unwrap_or(USAGE_DAYS_DEFAULT);
    if !(1..=USAGE_DAYS_MAX).contains(&days) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            format!("days must be from 1 to {USAGE_DAYS_MAX}"),
        )
        .with_fix(fix));
    }
    let key = lookup(&state, path).await?;
    let to_day = utc_day(unix_now());
    let from_day = to_day.saturating_sub(u64::from(days - 1));
    let used = state.store.key_usage(key.sha256, from_day, to_day).await?;
    let mut total = KeyUsage::default();
    for (_, u) in &used {
        total.requests = total.requests.saturating_add(u.requests);
        total.prompt_tokens = total.prompt_tokens.saturating_add(u.prompt_tokens);
        total.completion_tokens = total.completion_tokens.saturating_add(u.completion_tokens);
        total.amount = total.amount.checked_add(u.amount).ok_or_else(|| {
            ApiError::internal("a key's charged amounts overflow", &"the sum exceeds 2^128")
        })?;
    }
    Ok(Json(KeyUsageReport {
        key: key.to_wire(),
        from_day,
        to_day,
        days: used
            .into_iter()
            .map(|(day, usage)| DayUsage {
                day,
                date: date_of(day),
                usage,
            })
            .collect(),
        total,
        asset: state.config.asset.clone(),
        asset_decimals: state.config.asset_decimals,
    }))
}

/// A day since 1970-01-01 as `YYYY-MM-DD`.
fn date_of(day: u64) -> String {
    i64::try_from(day.saturating_mul(86_400))
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(|| format!("day {day}"), |t| t.date_naive().to_string())
}

/// `POST /api/keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ApiKey>, ApiError> {
    crate::orchestrator::auth::require_admin(&state, &headers, ip).await?;
    let key = lookup(&state, path).await?;
    state.store.revoke_key(key.sha256, unix_now()).await?;
    changed(&state, &key.sha256).await;
    tracing::info!(key = %key.to_wire().id, "key revoked");
    Ok(Json(lookup_sha(&state, &key.sha256).await?.to_wire()))
}

/// `PUT /api/keys/{id}/limits`.
pub async fn set_limits(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<SetLimitsRequest>, ApiError>,
) -> Result<Json<ApiKey>, ApiError> {
    crate::orchestrator::auth::require_admin(&state, &headers, ip).await?;
    let ApiJson(req) = body?;
    let key = lookup(&state, path).await?;
    if key.role != KeyRole::Client {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            format!(
                "quotas apply to client keys only, and {} is a {} key",
                key.to_wire().id,
                key.role
            ),
        )
        .with_fix("Set limits on a client key (`basis orchestrator keys list` shows roles)."));
    }
    if req.requests_per_minute == Some(0) || req.tokens_per_day == Some(0) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            "a limit must be at least 1",
        )
        .with_fix("Leave a limit out to remove it; revoke the key to stop it altogether."));
    }
    state.store.set_key_limits(key.sha256, req.into()).await?;
    changed(&state, &key.sha256).await;
    tracing::info!(key = %key.to_wire().id, "key limits changed");
    Ok(Json(lookup_sha(&state, &key.sha256).await?.to_wire()))
}

/// The body of a key-changed call (`replica::notify`).
#[derive(Deserialize)]
struct Changed {
    sha256: String,
}

/// `POST /internal/v1/keys/changed`, from another replica (signed): forget the key.
pub async fn changed_elsewhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    super::internal::from_replica(&state, &headers, REPLICA_KEY_CHANGED, &body)?;
    let sha = serde_json::from_slice::<Changed>(&body)
        .ok()
        .and_then(|c| KeySha256::parse(&c.sha256))
        .ok_or_else(|| {
            ApiError::bad_request(ErrorCode::InvalidJson, "expected {\"sha256\": \"0x…\"}")
        })?;
    state.client_keys.forget(&sha);
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets what this replica remembered of `key`, and tells the others to.
async fn changed(state: &AppState, key: &KeySha256) {
    state.client_keys.forget(key);
    if let Some(node) = &state.replica {
        let window = state.config.online_window_s;
        notify::key_changed(node, state.store.as_ref(), key, unix_now(), window).await;
    }
}

async fn lookup(
    state: &AppState,
    path: Result<Path<String>, PathRejection>,
) -> Result<KeyEntry, ApiError> {
    let Path(id) = path.map_err(|e| {
        ApiError::bad_request(ErrorCode::InvalidArgument, format!("the key id: {e}"))
    })?;
    match find(state.store.as_ref(), &id, utc_day(unix_now())).await? {
        Ok(key) => Ok(key),
        Err(e @ FindKeyError::NotFound(_)) => {
            Err(
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::KeyNotFound, e.to_string())
                    .with_fix("`basis orchestrator keys list` shows every key's id."),
            )
        }
        Err(e) => Err(
            ApiError::bad_request(ErrorCode::InvalidArgument, e.to_string())
                .with_fix("Give the id as `keys list` shows it (key: + hex), or more hex digits."),
        ),
    }
}

async fn lookup_sha(state: &AppState, sha: &KeySha256) -> Result<KeyEntry, ApiError> {
    let id = format!("0x{}", hex::encode(sha.0));
    match find(state.store.as_ref(), &id, utc_day(unix_now())).await? {
        Ok(key) => Ok(key),
        Err(e) => Err(ApiError::internal("a key vanished while being changed", &e)),
    }
}
