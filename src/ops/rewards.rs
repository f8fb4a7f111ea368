//! A worker's rewards (docs/SETTLEMENT.md): `get_rewards` and `basis rewards` read this
//! host's worker's credits by state (accrued, pending, batched, paid) and the batches holding
//! them, each with the wallet's leaf, its Merkle proof and the root, so the claim can be
//! checked offline; `wallet_wide` adds up every worker paying the same wallet. `basis rewards
//! verify FILE` checks a settlement batch file offline, with nothing but the file: every
//! leaf's proof against the root, the total against the leaves, the EIP-712 typed data against
//! the batch and its digest.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Amount, BatchFile, ErrorCode, Problem, WalletAddress, WorkerId, verify_batch_file,
};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::ops::Context;
use crate::ops::tasks::{client, read_env};
use crate::wire::{Credit, RewardBatch, RewardTotals};

/// Credits `get_rewards` shows, newest first.
pub const CREDITS_SHOWN: usize = 20;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Add up every worker paying this worker's wallet, not only this one (default false).
    #[serde(default)]
    pub wallet_wide: bool,
    /// The env file naming this worker (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.env_file.guard("env_file")
    }
}

/// Whose rewards a view adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Worker,
    Wallet,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub orchestrator_url: String,
    pub scope: Scope,
    pub worker_id: WorkerId,
    /// The reward address (the worker's now; with `wallet_wide`, the one added up).
    pub wallet: WalletAddress,
    /// Atomic units of `asset`, as decimal strings.
    #[serde(flatten)]
    pub totals: RewardTotals,
    pub asset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<u8>,
    /// The totals in whole units, in words.
    pub summary: String,
    /// The newest batches (at most 10) with the wallet's leaf, its proof and the root:
    /// `MerkleProof.verify(proof, root, keccak256(keccak256(abi.encode(wallet, amount))))`.
    pub batches: Vec<RewardBatch>,
    /// This worker's newest credits (at most 20; none with `wallet_wide`).
    pub credits: Vec<Credit>,
}

fn summary(t: &RewardTotals, asset: &str, decimals: Option<u8>) -> String {
    let d = |a: Amount| a.describe(asset, decimals);
    format!(
        "accrued {}: pending {} (in no batch yet), batched {} (closed, not paid yet), paid {}",
        d(t.accrued),
        d(t.pending),
        d(t.batched),
        d(t.paid)
    )
}

/// This host's worker's rewards (or, `wallet_wide`, its wallet's).
pub async fn view(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let path = ctx.env_path(input.env_file.as_deref());
    let env = read_env(ctx, input.env_file.as_deref())?;
    let Some(worker_id) = env.as_ref().and_then(|e| e.worker_id.clone()) else {
        let what = if env.is_some() {
            format!("{} names no worker", path.display())
        } else {
            format!("there is no worker env file at {}", path.display())
        };
        return Err(Problem::new(ErrorCode::EnvIncomplete, what)
            .with_fix("onboard first: write_env, then register_worker"));
    };
    let (client, url) = client(ctx, env.as_ref())?;
    let worker = client.rewards(&worker_id).await?;
    let mut out = Output {
        orchestrator_url: url.to_string(),
        scope: Scope::Worker,
        worker_id,
        wallet: worker.wallet,
        summary: summary(&worker.totals, &worker.asset, worker.asset_decimals),
        totals: worker.totals,
        asset: worker.asset,
        asset_decimals: worker.asset_decimals,
        batches: worker.batches,
        credits: worker.credits.into_iter().take(CREDITS_SHOWN).collect(),
    };
    if input.wallet_wide {
        let all = client.wallet_rewards(&out.wallet).await?;
        out.scope = Scope::Wallet;
        out.summary = summary(&all.totals, &all.asset, all.asset_decimals);
        out.totals = all.totals;
        out.batches = all.batches;
        out.credits = Vec::new();
    }
    Ok(out)
}

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
