//! `basis rewards verify FILE` (docs/SETTLEMENT.md, "The batch file"): checks a settlement
//! batch file offline, with nothing but the file: every leaf's Merkle proof against the root,
//! the total against the leaves, the EIP-712 typed data against the batch and its digest.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{BatchFile, ErrorCode, Problem, verify_batch_file};

/// What a verified batch file proves, in words.
const PROVES: &str = "every payout in the file is a leaf of its Merkle root (so a \
     distributor contract holding that root pays exactly these amounts to these wallets), the \
     total is their sum, and the typed data and its digest describe this batch. It does not \
     prove the operator signed or paid it: check the signature or the payment transaction.";

/// A batch file that verified.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Verified {
    pub file: String,
    pub batch_id: u64,
    pub leaves: usize,
    /// Atomic units of `asset`, as a decimal string.
    pub total: String,
    pub asset: String,
    pub root: String,
    pub digest: String,
    pub proves: String,
}

/// Verifies the batch file at `path`.
pub fn verify(path: &Path) -> Result<Verified, Problem> {
    let file: BatchFile = super::parse::json_file(
        path,
        ErrorCode::BatchInvalid,
        "a settlement batch file",
        "Give a settlement batch file (docs/SETTLEMENT.md, \"The batch file\") as exported.",
    )?;
    let summary = verify_batch_file(&file).map_err(|e| {
        Problem::new(ErrorCode::BatchInvalid, format!("{}: {e}", path.display())).with_fix(
            "Ask the operator for the batch file again; a file that fails here was changed or \
             is not the one the root commits to.",
        )
    })?;
    Ok(Verified {
        file: path.display().to_string(),
        batch_id: file.batch_id,
        leaves: summary.leaves,
        total: summary.total.to_string(),
        asset: file.asset,
        root: summary.root.to_string(),
        digest: summary.digest.to_string(),
        proves: PROVES.to_owned(),
    })
}
