//! `basis orchestrator settle close|list|show|export|mark-paid` (docs/SETTLEMENT.md): the
//! operator closes pending credits into a batch, exports the batch file for their own wallet
//! to sign and pay, and records the payment, on a running orchestrator over its HTTP API with
//! the admin key (as `keys`: from `BASIS_ADMIN_KEY` or a file, never an argument, never
//! printed). basis never signs or sends a transaction.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::keys::{Admin, connect, env};
use crate::config::atomic::write_atomic;
use crate::domain::{BatchFile, ErrorCode, Problem};
use crate::wire::{BatchList, CloseBatchResult, SettlementBatchInfo};

/// Closes a batch at `until` (unix seconds; now when `None`).
pub async fn close(admin: &Admin, until: Option<u64>) -> Result<CloseBatchResult, Problem> {
    let (client, key) = connect(admin, &env)?;
    client.close_batch(until, &key).await.map_err(Problem::from)
}

/// Batches newest first.
pub async fn list(admin: &Admin, before: Option<u64>, limit: usize) -> Result<BatchList, Problem> {
    let (client, key) = connect(admin, &env)?;
    client
        .batches(before, limit, &key)
        .await
        .map_err(Problem::from)
}

/// One batch.
pub async fn show(admin: &Admin, id: u64) -> Result<SettlementBatchInfo, Problem> {
    let (client, key) = connect(admin, &env)?;
    client.batch(id, &key).await.map_err(Problem::from)
}

/// What `export` wrote.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Exported {
    /// The file written; absent when the batch file went to stdout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub batch_id: u64,
    pub leaves: usize,
    pub total: String,
    pub root: String,
    pub digest: String,
}

/// The batch file of batch `id`, checked with `rewards verify`'s check before it is written
/// (atomically, 0644) to `out`; returned whole when `out` is `None`.
pub async fn export(
    admin: &Admin,
    id: u64,
    out: Option<&Path>,
) -> Result<(Exported, Option<BatchFile>), Problem> {
    let (client, key) = connect(admin, &env)?;
    let file = client.batch_file(id, &key).await.map_err(Problem::from)?;
    let summary = crate::domain::verify_batch_file(&file).map_err(|e| {
        Problem::new(
            ErrorCode::BatchInvalid,
            format!("the orchestrator's batch file does not verify: {e}"),
        )
        .with_fix("Report this: the stored batch and its file disagree. Nothing was written.")
    })?;
    let exported = Exported {
        file: out.map(|p| p.display().to_string()),
        batch_id: file.batch_id,
        leaves: summary.leaves,
        total: summary.total.to_string(),
        root: summary.root.to_string(),
        digest: summary.digest.to_string(),
    };
    let Some(path) = out else {
        return Ok((exported, Some(file)));
    };
    let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| {
        Problem::new(
            ErrorCode::Internal,
            format!("cannot encode the batch file: {e}"),
        )
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes, 0o644).map_err(|e| {
        Problem::new(
            ErrorCode::IoError,
            format!("cannot write {}: {e}", path.display()),
        )
        .with_fix("Give --out a path in a directory you can write.")
    })?;
    Ok((exported, None))
}

/// Records batch `id` paid by `tx_hash`.
pub async fn mark_paid(
    admin: &Admin,
    id: u64,
    tx_hash: &str,
) -> Result<SettlementBatchInfo, Problem> {
    let (client, key) = connect(admin, &env)?;
    client
        .mark_batch_paid(id, tx_hash, &key)
        .await
        .map_err(Problem::from)
}
