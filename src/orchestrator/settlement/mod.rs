//! Settlement (docs/SETTLEMENT.md): closing pending credits into batches, recording a
//! payment, and the rewards views with each wallet's Merkle proof. The rules live here, once,
//! above the store: a batch pays one leaf per wallet (its credits' net amounts added up,
//! wallets whose sum is 0 left out) under the root of [`PayoutTree`], whose nodes are stored
//! so a proof is a few lookups; its period starts where the asset's batch before it ended.
//! The store keeps the close atomic. basis never signs: the batch's typed data is for the
//! operator's own wallet.

pub mod config;

use std::collections::HashMap;

use alloy_primitives::{B256, U256};

use self::config::SettlementConfig;
use super::store::settlement::{
    BatchRow, BatchTerms, Closed, CoveredCredit, CreditTotals, MarkedPaid, RewardScope, Sealed,
};
use super::store::{Store, StoreError};
use crate::domain::{
    Amount, BatchDomain, BatchHeader, BatchLeaf, PayoutTree, SettlementBatch, WalletAddress,
    batch_signing_hash, leaf_hash,
};
use crate::wire::{BatchStatus, RewardBatch, SettlementBatchInfo};

/// Why a settlement operation did nothing.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error(
        "settlement is not configured: add [settlement] with token, chain_id and \
         verifying_contract to orchestrator.toml"
    )]
    NotConfigured,
    #[error("no pending credit made before the watermark pays anything")]
    Nothing,
    #[error(
        "the watermark is earlier than batch {batch_id}'s ({watermark}); watermarks only move \
         forward"
    )]
    Behind { batch_id: u64, watermark: u64 },
    #[error(
        "batch {batch_id} already closed this watermark for {asset}, another asset; watermarks \
         only move forward"
    )]
    OtherAsset { batch_id: u64, asset: String },
    #[error("no settlement batch {0}")]
    NotFound(u64),
    #[error("batch {batch_id} is already paid (transaction {tx_hash})")]
    AlreadyPaid { batch_id: u64, tx_hash: String },
    #[error("transaction {tx_hash} is already recorded as batch {batch_id}'s payment")]
    TxHashUsed { tx_hash: String, batch_id: u64 },
    #[error("transaction {tx_hash} was just recorded as another batch's payment")]
    TxHashRace { tx_hash: String },
    #[error("the tx hash must be 0x and 64 hex digits")]
    BadTxHash,
    #[error("stored batch {0} does not rebuild to its root")]
    Inconsistent(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The leaves and tree of the credits a close covers: one leaf per wallet with a positive
/// sum, in address order; `Ok(None)` when nothing is payable. The period starts at
/// `previous_watermark_ms` (the asset's batch before), else at the earliest credit.
pub fn seal(
    covered: &[CoveredCredit],
    previous_watermark_ms: Option<u64>,
) -> Result<Option<Sealed>, StoreError> {
    let overflow = || StoreError::Corrupt {
        what: "settlement batch",
        reason: "its total does not fit in 128 bits of atomic units".into(),
    };
    let mut sums: HashMap<WalletAddress, Amount> = HashMap::new();
    for c in covered {
        let sum = sums.entry(c.wallet).or_insert(Amount::ZERO);
        *sum = sum.checked_add(c.net).ok_or_else(overflow)?;
    }
    let mut leaves: Vec<(WalletAddress, Amount)> =
        sums.into_iter().filter(|(_, a)| !a.is_zero()).collect();
    if leaves.is_empty() {
        return Ok(None);
    }
    leaves.sort_unstable_by_key(|(w, _)| w.address());
    let total = leaves
        .iter()
        .try_fold(Amount::ZERO, |t, (_, a)| t.checked_add(*a))
        .ok_or_else(overflow)?;
    let hashes: Vec<B256> = leaves
        .iter()
        .map(|(w, a)| leaf_hash(w.address(), U256::from(a.atomic())))
        .collect();
    let tree = PayoutTree::new(&hashes).map_err(|e| StoreError::Corrupt {
        what: "settlement batch",
        reason: e.to_string(),
    })?;
    let leaves = leaves
        .into_iter()
        .enumerate()
        .map(|(k, (w, a))| (w, a, tree.node_of(k).unwrap_or_default() as u64))
        .collect();
    let earliest = covered.iter().map(|c| c.created_ms).min().unwrap_or(0);
    Ok(Some(Sealed {
        leaves,
        root: tree.root().to_string(),
        nodes: tree.nodes().to_vec(),
        total,
        period_start_ms: previous_watermark_ms.unwrap_or(earliest),
    }))
}

fn address(text: &str) -> Result<WalletAddress, StoreError> {
    WalletAddress::parse(text).map_err(|e| StoreError::Corrupt {
        what: "batch address",
        reason: e.to_string(),
    })
}

/// The batch's header for its file: id, period in seconds, token and domain as closed.
pub fn header(b: &BatchRow) -> Result<BatchHeader, StoreError> {
    Ok(BatchHeader {
        batch_id: b.batch_id,
        period_start: b.period_start_ms / 1000,
        period_end: b.terms.watermark_ms / 1000,
        asset: b.terms.asset.clone(),
        token: address(&b.terms.token)?.address(),
        domain: BatchDomain {
            name: b.terms.domain_name.clone(),
            version: b.terms.domain_version.clone(),
            chain_id: b.terms.chain_id,
            verifying_contract: address(&b.terms.verifying_contract)?.address(),
        },
    })
}

/// The batch as the operator's routes show it (with its EIP-712 digest).
pub fn info(b: &BatchRow, asset_decimals: Option<u8>) -> Result<SettlementBatchInfo, StoreError> {
    let h = header(b)?;
    let root: B256 = b.root.parse().map_err(|_| StoreError::Corrupt {
        what: "batch root",
        reason: "not a 32-byte hash".into(),
    })?;
    let message = SettlementBatch {
        batchId: U256::from(b.batch_id),
        root,
        total: U256::from(b.total.atomic()),
        token: h.token,
        periodStart: h.period_start,
        periodEnd: h.period_end,
    };
    Ok(SettlementBatchInfo {
        batch_id: b.batch_id,
        status: if b.tx_hash.is_some() {
            BatchStatus::Paid
        } else {
            BatchStatus::Batched
        },
        period_start: h.period_start,
        period_end: h.period_end,
        asset: b.terms.asset.clone(),
        asset_decimals,
        token: b.terms.token.clone(),
        chain_id: b.terms.chain_id,
        verifying_contract: b.terms.verifying_contract.clone(),
        domain_name: b.terms.domain_name.clone(),
        domain_version: b.terms.domain_version.clone(),
        total: b.total,
        root: b.root.clone(),
        digest: batch_signing_hash(&h.domain, &message).to_string(),
        credits: b.credits,
        leaves: b.leaves,
        closed_at: b.terms.closed_ms / 1000,
        tx_hash: b.tx_hash.clone(),
        paid_at: b.paid_ms.map(|ms| ms / 1000),
    })
}

/// A closed batch, and whether this close made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedBatch {
    pub created: bool,
    pub batch: BatchRow,
}

/// Closes a batch at `until_ms` (see [`super::store::SettlementStore::close_batch`]).
pub async fn close(
    store: &dyn Store,
    config: Option<&SettlementConfig>,
    asset: &str,
    until_ms: u64,
    now_ms: u64,
) -> Result<ClosedBatch, SettleError> {
    let config = config.ok_or(SettleError::NotConfigured)?;
    let terms = BatchTerms {
        watermark_ms: until_ms,
        closed_ms: now_ms,
        asset: asset.to_owned(),
        token: config.token.checksummed(),
        chain_id: config.domain.chain_id,
        verifying_contract: config.domain.verifying_contract.to_checksum(None),
        domain_name: config.domain.name.clone(),
        domain_version: config.domain.version.clone(),
    };
    match store.close_batch(terms, Box::new(seal)).await? {
        Closed::New(batch) => Ok(ClosedBatch {
            created: true,
            batch,
        }),
        Closed::Existing(batch) => Ok(ClosedBatch {
            created: false,
            batch,
        }),
        Closed::Nothing => Err(SettleError::Nothing),
        Closed::Behind(b) => Err(SettleError::Behind {
            batch_id: b.batch_id,
            watermark: b.terms.watermark_ms / 1000,
        }),
        Closed::OtherAsset(b) => Err(SettleError::OtherAsset {
            batch_id: b.batch_id,
            asset: b.terms.asset,
        }),
    }
}

/// Records batch `id` paid by `tx_hash` (`0x` + 64 hex digits, stored lowercase).
pub async fn mark_paid(
    store: &dyn Store,
    id: u64,
    tx_hash: &str,
    now_ms: u64,
) -> Result<BatchRow, SettleError> {
    let hash = tx_hash.trim();
    let hex = hash.strip_prefix("0x").ok_or(SettleError::BadTxHash)?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SettleError::BadTxHash);
    }
    let hash = format!("0x{}", hex.to_ascii_lowercase());
    match store.mark_paid(id, hash.clone(), now_ms).await {
        Ok(MarkedPaid::Paid(b)) => Ok(b),
        Ok(MarkedPaid::NotFound) => Err(SettleError::NotFound(id)),
        Ok(MarkedPaid::AlreadyPaid(b)) => Err(SettleError::AlreadyPaid {
            batch_id: id,
            tx_hash: b.tx_hash.unwrap_or_default(),
        }),
        Ok(MarkedPaid::TxHashUsed { batch_id }) => Err(SettleError::TxHashUsed {
            tx_hash: hash,
            batch_id,
        }),
        // Two payments recorded at once with one hash: the unique index refused the second;
        // the batch that holds it is the other one, whichever that is.
        Err(StoreError::Conflict) => Err(SettleError::TxHashRace { tx_hash: hash }),
        Err(e) => Err(e.into()),
    }
}

/// The newest batches in `totals` (at most `limit`) with the wallet's leaf and its proof,
/// read from the stored tree.
pub async fn reward_batches(
    store: &dyn Store,
    totals: &CreditTotals,
    limit: usize,
) -> Result<Vec<RewardBatch>, SettleError> {
    let mut out = Vec::new();
    for (batch_id, wallet, share) in totals.batches.iter().take(limit) {
        let b = store
            .batch(*batch_id)
            .await?
            .ok_or(SettleError::Inconsistent(*batch_id))?;
        // A wallet whose credits in the batch sum to 0 has no leaf.
        let Some((amount, proof)) = store.leaf_proof(*batch_id, *wallet).await? else {
            continue;
        };
        out.push(RewardBatch {
            batch_id: b.batch_id,
            status: if b.tx_hash.is_some() {
                BatchStatus::Paid
            } else {
                BatchStatus::Batched
            },
            share: *share,
            leaf: BatchLeaf {
                wallet: *wallet,
                amount: amount.to_string(),
                proof: proof.iter().map(ToString::to_string).collect(),
            },
            root: b.root.clone(),
            tx_hash: b.tx_hash.clone(),
            paid_at: b.paid_ms.map(|ms| ms / 1000),
        });
    }
    Ok(out)
}

/// A scope's credits added up (see [`super::store::SettlementStore::reward_totals`]).
pub async fn totals(store: &dyn Store, scope: RewardScope) -> Result<CreditTotals, SettleError> {
    Ok(store.reward_totals(scope).await?)
}
