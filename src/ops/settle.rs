//! `basis orchestrator settle close|list|show|export|mark-paid` (docs/SETTLEMENT.md): the
//! operator closes pending credits into a batch, exports the batch file for their own wallet
//! to sign and pay (rebuilt and checked here from the batch's leaves), and records the payment, on a running orchestrator over its HTTP API with
//! the admin key (as `keys`: from `BASIS_ADMIN_KEY` or a file, never an argument, never
//! printed). basis never signs or sends a transaction.

use std::path::Path;
use std::str::FromStr as _;

use alloy_primitives::{Address, U256};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::keys::{Admin, connect, env};
use crate::config::atomic::write_atomic;
use crate::domain::{
    BatchDomain, BatchFile, BatchHeader, ErrorCode, Problem, WalletAddress, build_batch_file,
    verify_batch_file,
};
use crate::wire::{BatchList, CloseBatchResult, SettlementBatchInfo};

/// Closes a batch at `until` (unix seconds; the orchestrator's now when `None`, so an
/// operator's clock ahead of the server's is never a watermark in its future).
pub async fn close(admin: &Admin, until: Option<u64>) -> Result<CloseBatchResult, Problem> {
    let (client, key) = connect(admin, &env)?;
    client.close_batch(until, &key).await.map_err(|e| {
        let mut problem = Problem::from(e);
        if matches!(
            problem.code,
            ErrorCode::OrchestratorUnreachable | ErrorCode::OrchestratorTimeout
        ) {
            let check = "A close that timed out may still have been made: `basis orchestrator \
                         settle list` shows it (a retry with its watermark, --until, returns it).";
            problem.fix = Some(match problem.fix.take() {
                Some(fix) => format!("{fix} {check}"),
                None => check.to_owned(),
            });
        }
        problem
    })
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

/// The header a batch file of `b` carries: as the orchestrator closed it.
fn header(b: &SettlementBatchInfo) -> Result<BatchHeader, Problem> {
    let address = |text: &str| {
        Address::from_str(text).map_err(|_| {
            Problem::new(
                ErrorCode::BatchInvalid,
                format!("the orchestrator's batch names a malformed address ({text})"),
            )
        })
    };
    Ok(BatchHeader {
        batch_id: b.batch_id,
        period_start: b.period_start,
        period_end: b.period_end,
        asset: b.asset.clone(),
        token: address(&b.token)?,
        domain: BatchDomain {
            name: b.domain_name.clone(),
            version: b.domain_version.clone(),
            chain_id: b.chain_id,
            verifying_contract: address(&b.verifying_contract)?,
        },
    })
}

/// The batch file of batch `id`: its leaves fetched a page at a time, the tree rebuilt here
/// and checked against the batch's root and digest (a file that does not match is never
/// written), then written (atomically, 0644) to `out`, or returned whole when `out` is `None`.
pub async fn export(
    admin: &Admin,
    id: u64,
    out: Option<&Path>,
) -> Result<(Exported, Option<BatchFile>), Problem> {
    let (client, key) = connect(admin, &env)?;
    let batch = client.batch(id, &key).await.map_err(Problem::from)?;
    let mut payouts: Vec<(WalletAddress, U256)> = Vec::new();
    let mut after = None;
    loop {
        let page = client
            .batch_leaves(id, after, &key)
            .await
            .map_err(Problem::from)?;
        payouts.extend(
            page.leaves
                .iter()
                .map(|l| (l.wallet, U256::from(l.amount.atomic()))),
        );
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mismatch = |what: String| {
        Problem::new(
            ErrorCode::BatchInvalid,
            format!("batch {id}'s leaves do not rebuild the batch: {what}"),
        )
        .with_fix("Report this: the stored batch and its leaves disagree. Nothing was written.")
    };
    let file = build_batch_file(&header(&batch)?, &payouts).map_err(|e| mismatch(e.to_string()))?;
    if file.root != batch.root || file.digest != batch.digest {
        return Err(mismatch(format!(
            "root {} and digest {}, the batch says {} and {}",
            file.root, file.digest, batch.root, batch.digest
        )));
    }
    let summary = verify_batch_file(&file).map_err(|e| mismatch(e.to_string()))?;
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
