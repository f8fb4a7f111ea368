//! `GET /api/receipts/{id}`: a stored receipt's JSON exactly as sealed, by receipt id
//! (`rcpt-…`) or by `receipt_hash` (`0x…`). Anyone holding it can re-verify it offline.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::{ErrorCode, ReceiptHash, ReceiptId};
use crate::orchestrator::error::ApiError;
use crate::orchestrator::state::AppState;

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
