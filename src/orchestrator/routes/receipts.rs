//! `GET /api/receipts/{id}`: a stored receipt's JSON exactly as sealed, by receipt id
//! (`rcpt-…`) or by `receipt_hash` (`0x…`). Anyone holding it can re-verify it offline.
//! `GET /api/receipts`: receipts in issue order, paged (`ReceiptPage`), each as sealed (the
//! page is assembled from the stored bytes, never re-serialized).

use std::fmt::Write as _;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::{ErrorCode, ReceiptHash, ReceiptId};
use crate::orchestrator::error::ApiError;
use crate::orchestrator::state::AppState;
use crate::orchestrator::store::ReceiptQuery as StoreQuery;
use crate::wire::{RECEIPTS_PAGE_DEFAULT, RECEIPTS_PAGE_MAX, ReceiptQuery};

/// `GET /api/receipts?since=&worker=&after=&limit=`.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ReceiptQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let fix = "Use ?since=UNIX&worker=ID&after=NEXT_AFTER&limit=1..1000 (all optional).";
    let Query(q) = query.map_err(|e| ApiError::bad_query(&e, fix))?;
    let limit = q.limit.unwrap_or(RECEIPTS_PAGE_DEFAULT);
    if !(1..=RECEIPTS_PAGE_MAX).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            format!("limit must be between 1 and {RECEIPTS_PAGE_MAX}"),
        )
        .with_fix(fix));
    }
    let after = q
        .after
        .as_deref()
        .map(|a| {
            a.split_once(':')
                .and_then(|(t, id)| Some((t.parse().ok()?, ReceiptId::parse(id).ok()?)))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        ErrorCode::InvalidArgument,
                        "after is not a next_after this orchestrator issued",
                    )
                    .with_fix(fix)
                })
        })
        .transpose()?;
    let mut rows = state
        .store
        .receipts(StoreQuery {
            since: q.since.unwrap_or(0),
            worker: q.worker,
            after,
            limit: limit + 1,
        })
        .await?;
    let next_after = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|((t, id), _)| format!("{t}:{id}"))
    } else {
        None
    };
    let mut body = String::from("{\"receipts\":[");
    for (i, (_, json)) in rows.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(json);
    }
    body.push(']');
    if let Some(next) = next_after {
        let _ = write!(body, ",\"next_after\":\"{next}\"");
    }
    body.push('}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let bad = || {
        ApiError::bad_request(
            ErrorCode::InvalidArgument,
            "a receipt is named by its id (rcpt- + 32 hex) or its hash (0x + 64 hex)",
        )
    };
    let Path(id) = id.map_err(|_| bad())?;
    let body = if id.starts_with("0x") {
        let hash = ReceiptHash::parse(&id).map_err(|_| bad())?;
        state.store.receipt_by_hash(hash).await?
    } else {
        let rid = ReceiptId::parse(&id).map_err(|_| bad())?;
        state.store.receipt(rid).await?
    };
    match body {
        Some(json) => Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ReceiptNotFound,
            "no receipt with this id or hash is stored here",
        )
        .with_fix("Use the x-basis-receipt-id (or -hash) of a completed gateway answer.")),
    }
}
