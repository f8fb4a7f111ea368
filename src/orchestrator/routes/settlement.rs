//! Settlement routes (docs/SETTLEMENT.md). The operator's, with the admin key:
//! `POST /api/settlement/batches` (close), `GET /api/settlement/batches[/{id}]`,
//! `GET /api/settlement/batches/{id}/leaves` (its leaves, a page at a time) and
//! `POST /api/settlement/batches/{id}/paid`. Anyone's: the rewards of a worker
//! (`GET /api/workers/{id}/rewards`) or of a wallet (`GET /api/wallets/{address}/rewards`),
//! with each batch's leaf, proof and root.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::workers::path_id;
use crate::domain::{ErrorCode, WalletAddress};
use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::extract::ApiJson;
use crate::orchestrator::market::credit_with_decimals;
use crate::orchestrator::market::problems::worker_not_found;
use crate::orchestrator::settlement::{self, SettleError};
use crate::orchestrator::state::{AppState, unix_now_ms};
use crate::orchestrator::store::settlement::{BatchRow, CreditTotals, RewardScope};
use crate::wire::{
    BATCH_PAGE_DEFAULT, BATCH_PAGE_MAX, BatchLeaves, BatchList, CloseBatchRequest,
    CloseBatchResult, LEAVES_PAGE_DEFAULT, LEAVES_PAGE_MAX, MarkPaidRequest, REWARD_BATCHES,
    RewardTotals, Rewards, SettlementBatchInfo, StoredLeaf, WalletRewards,
};

/// Credits shown by `GET /api/workers/{id}/rewards`, newest first.
pub const REWARDS_HISTORY: usize = 100;

impl From<SettleError> for ApiError {
    fn from(e: SettleError) -> Self {
        let message = e.to_string();
        match e {
            SettleError::NotConfigured => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::SettlementNotConfigured, message)
                    .with_fix(
                        "Add [settlement] with token, chain_id and verifying_contract to \
                         orchestrator.toml (docs/SETTLEMENT.md, \"Configuration\") and restart.",
                    )
            }
            SettleError::Nothing => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::NothingToSettle, message).with_fix(
                    "Nothing is owed yet: close again once workers have been credited, or give \
                     a later --until.",
                )
            }
            SettleError::Behind { .. } | SettleError::OtherAsset { .. } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::SettlementConflict, message)
                    .with_fix("Give an --until later than the newest batch's, or leave it out (now).")
            }
            SettleError::AlreadyPaid { .. }
            | SettleError::TxHashUsed { .. }
            | SettleError::TxHashRace { .. } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::SettlementConflict, message)
                    .with_fix(
                        "Nothing changed. `basis orchestrator settle list` shows each batch's \
                         payment.",
                    )
            }
            SettleError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::BatchNotFound, message)
                    .with_fix("`basis orchestrator settle list` shows every batch's id.")
            }
            SettleError::BadTxHash => ApiError::bad_request(ErrorCode::InvalidArgument, message)
                .with_fix("Give the payment transaction's hash as the explorer shows it: 0x + 64 hex digits."),
            SettleError::Inconsistent(_) => ApiError::internal("settlement", &e),
            SettleError::Store(e) => e.into(),
        }
    }
}

fn batch_id(path: Result<Path<String>, PathRejection>) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::bad_request(ErrorCode::InvalidArgument, "the batch id must be a number")
            .with_fix("`basis orchestrator settle list` shows every batch's id.")
    };
    let Path(id) = path.map_err(|_| bad())?;
    id.parse().map_err(|_| bad())
}

fn shown(state: &AppState, b: &BatchRow) -> Result<SettlementBatchInfo, ApiError> {
    Ok(settlement::info(b, state.config.asset_decimals)?)
}

/// `POST /api/settlement/batches` (admin key): 201 with a new batch, 200 with the batch
/// this watermark already closed.
pub async fn close(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<ApiJson<CloseBatchRequest>, ApiError>,
) -> Result<(StatusCode, Json<CloseBatchResult>), ApiError> {
    crate::orchestrator::auth::require_admin(&state, &headers, ip).await?;
    let ApiJson(req) = body?;
    let now_ms = unix_now_ms();
    let until_ms = match req.until {
        Some(s) if s.saturating_mul(1000) > now_ms => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidArgument,
                "until is in the future: credits made after it could still arrive",
            )
            .with_fix("Give a time in the past, or leave it out (now)."));
        }
        Some(s) => s.saturating_mul(1000),
        None => now_ms / 1000 * 1000,
    };
    let closed = settlement::close(
        state.store.as_ref(),
        state.config.settlement.as_ref(),
        &state.config.asset,
        until_ms,
        now_ms,
    )
    .await?;
    let batch = shown(&state, &closed.batch)?;
    if closed.created {
        state
            .metrics
            .settled("batched", &state.config.asset, closed.batch.total);
        tracing::info!(
            batch_id = batch.batch_id,
            credits = batch.credits,
            leaves = batch.leaves,
            total = %batch.total,
            "settlement batch closed"
        );
    }
    let status = if closed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(CloseBatchResult {
            created: closed.created,
            batch,
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/settlement/batches` (admin key), newest first.
pub async fn list(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<BatchList>, ApiError> {
    crate::orchestrator::auth::require_admin(&state, &headers, ip).await?;
    let Query(q) = query.map_err(|e| {
        ApiError::bad_query(
            &e,
            format!("Use ?before=<batch id>&limit=<1-{BATCH_PAGE_MAX}>."),
        )
    })?;
    let limit = q
        .limit
        .unwrap_or(BATCH_PAGE_DEFAULT)
        .clamp(1, BATCH_PAGE_MAX);
    let rows = state.store.batches(q.before, limit + 1).await?;
    let more = rows.len() > limit;
    let batches = rows
        .iter()
        .take(limit)
        .map(|b| shown(&state, b))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(BatchList {
        next_before: more.then(|| batches.last().map(|b| b.batch_id)).flatten(),
        batches,
    }))
}

/// `GET /api/settlement/batches/{id}` (admin key).
pub async fn get(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<SettlementBatchInfo>, ApiError> {
    crate::orchestrator::auth::require_admin(&state, &headers, ip).await?;
    let id = batch_id(path)?;
    let b = state
        .store
        .batch(id)
        .await?
        .ok_or(SettleError::NotFound(id))?;
    Ok(Json(shown(&state, &b)?))
}

#[derive(Debug, Deserialize)]
pub struct LeavesQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// `GET /api/settlement/batches/{id}/leaves` (admin key): a page of the batch's leaves.
pub async fn leaves(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<LeavesQuery>, QueryRejection>,
) -> Result<Json<BatchLeaves>, ApiError> {
    crate::orchestrator::auth::require_admin(&state, &headers, ip).await?;
    let id = batch_id(path)?;
    let Query(q) = query.map_err(|e| {
        ApiError::bad_query(
            &e,
            format!("Use ?after=<position>&limit=<1-{LEAVES_PAGE_MAX}>."),
        )
    })?;
    if state.store.batch(id).await?.is_none() {
        return Err(SettleError::NotFound(id).into());
    }
    let limit = q
        .limit
        .unwrap_or(LEAVES_PAGE_DEFAULT)
        .clamp(1, LEAVES_PAGE_MAX);
    let rows = state.store.batch_leaves(id, q.after, limit).await?;
    Ok(Json(BatchLeaves {
        batch_id: id,
        next_after: (rows.len() == limit)
            .then(|| rows.last().map(|l| l.position))
            .flatten(),
        leaves: rows
            .into_iter()
            .map(|l| StoredLeaf {
                position: l.position,
                wallet: l.wallet,
                amount: l.amount,
            })
            .collect(),
    }))
}

/// `POST /api/settlement/batches/{id}/paid` (admin key).
pub async fn paid(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<ApiJson<MarkPaidRequest>, ApiError>,
) -> Result<Json<SettlementBatchInfo>, ApiError> {
    crate::orchestrator::auth::require_admin(&state, &headers, ip).await?;
    let id = batch_id(path)?;
    let ApiJson(req) = body?;
    let b = settlement::mark_paid(state.store.as_ref(), id, &req.tx_hash, unix_now_ms()).await?;
    state.metrics.settled("paid", &state.config.asset, b.total);
    tracing::info!(batch_id = id, tx_hash = ?b.tx_hash, "settlement batch marked paid");
    Ok(Json(shown(&state, &b)?))
}

fn wire_totals(t: &CreditTotals) -> RewardTotals {
    RewardTotals {
        accrued: t.accrued,
        pending: t.pending,
        batched: t.batched,
        paid: t.paid,
    }
}

/// `GET /api/workers/{id}/rewards`: the worker's credits by state, its newest batches with
/// its wallet's leaf and proof, and its newest credits.
pub async fn worker_rewards(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Rewards>, ApiError> {
    let id = path_id(id)?;
    let Some(row) = state.store.worker(id.clone()).await? else {
        return Err(worker_not_found(&id));
    };
    let totals = settlement::totals(state.store.as_ref(), RewardScope::Worker(id.clone())).await?;
    let batches = settlement::reward_batches(state.store.as_ref(), &totals, REWARD_BATCHES).await?;
    let credits = state.store.credits(id, REWARDS_HISTORY).await?;
    Ok(Json(Rewards {
        worker_id: row.worker_id,
        wallet: row.wallet,
        totals: wire_totals(&totals),
        asset: state.config.asset.clone(),
        asset_decimals: state.config.asset_decimals,
        batches,
        credits: credits
            .into_iter()
            .map(|c| credit_with_decimals(c, &state.config.asset_units()))
            .collect(),
    }))
}

/// `GET /api/wallets/{address}/rewards`: every worker's credits to this wallet together.
pub async fn wallet_rewards(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<WalletRewards>, ApiError> {
    let Path(text) = path.map_err(|_| {
        ApiError::bad_request(
            ErrorCode::InvalidWallet,
            "the wallet in the path is not valid UTF-8",
        )
    })?;
    let wallet = WalletAddress::parse(&text).map_err(|e| {
        ApiError::bad_request(ErrorCode::InvalidWallet, e.to_string())
            .with_fix("Give the public reward address: 0x and 40 hex digits.")
    })?;
    let totals = settlement::totals(state.store.as_ref(), RewardScope::Wallet(wallet)).await?;
    let batches = settlement::reward_batches(state.store.as_ref(), &totals, REWARD_BATCHES).await?;
    Ok(Json(WalletRewards {
        wallet,
        totals: wire_totals(&totals),
        asset: state.config.asset.clone(),
        asset_decimals: state.config.asset_decimals,
        credits: totals.credits,
        batches,
    }))
}
