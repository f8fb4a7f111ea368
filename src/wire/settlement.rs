//! Settlement on the wire (docs/SETTLEMENT.md): the operator's batch routes
//! (`/api/settlement/batches…`, admin key) and the rewards views a worker or a wallet owner
//! reads (`/api/workers/{id}/rewards`, `/api/wallets/{address}/rewards`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{Amount, BatchLeaf, WalletAddress, WorkerId};

use super::tasks::Credit;

/// The operator's batch routes: `GET` lists, `POST` closes.
pub const SETTLEMENT_BATCHES: &str = "/api/settlement/batches";

/// `GET /api/settlement/batches/{id}` and its `/leaves` and `/paid`.
pub fn batch_path(id: u64) -> String {
    format!("{SETTLEMENT_BATCHES}/{id}")
}

/// `GET /api/wallets/{address}/rewards`.
pub fn wallet_rewards_path(wallet: &WalletAddress) -> String {
    format!("/api/wallets/{}/rewards", wallet.checksummed())
}

/// Batches a list returns by default, and at most.
pub const BATCH_PAGE_DEFAULT: usize = 50;
pub const BATCH_PAGE_MAX: usize = 500;

/// Batches a rewards view shows with their proofs, newest first.
pub const REWARD_BATCHES: usize = 10;

/// `POST /api/settlement/batches` (admin key): close a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBatchRequest {
    /// The watermark, unix seconds: every pending credit made before it goes into the
    /// batch. Default: now. Closing again with the same watermark returns the same batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
}

/// `POST /api/settlement/batches/{id}/paid` (admin key): record the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkPaidRequest {
    /// The payment transaction's hash, `0x` + 64 hex digits.
    pub tx_hash: String,
}

/// A batch's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Closed, its root and typed data fixed; not paid yet.
    Batched,
    /// The operator recorded its payment transaction.
    Paid,
}

/// A closed settlement batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SettlementBatchInfo {
    pub batch_id: u64,
    pub status: BatchStatus,
    /// Unix seconds: its credits were made in `[period_start, period_end)`; `period_end` is
    /// the watermark it was closed at.
    pub period_start: u64,
    pub period_end: u64,
    pub asset: String,
    /// Decimals of `asset`, when the orchestrator knows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<u8>,
    /// The token contract it pays in, and the EIP-712 domain it is signed under.
    pub token: String,
    pub chain_id: u64,
    pub verifying_contract: String,
    pub domain_name: String,
    pub domain_version: String,
    /// The sum of its leaves, atomic units.
    pub total: Amount,
    /// The Merkle root over its leaves (one per wallet).
    pub root: String,
    /// The EIP-712 digest of its `SettlementBatch` message: what the operator's wallet signs.
    pub digest: String,
    /// How many credits it holds, and how many wallets it pays.
    pub credits: u64,
    pub leaves: u64,
    /// Unix seconds.
    pub closed_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<u64>,
}

/// What `POST /api/settlement/batches` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CloseBatchResult {
    /// `false`: a batch with this watermark already existed and is returned unchanged.
    pub created: bool,
    pub batch: SettlementBatchInfo,
}

/// Leaves a page of `GET /api/settlement/batches/{id}/leaves` holds by default, and at most.
pub const LEAVES_PAGE_DEFAULT: usize = 10_000;
pub const LEAVES_PAGE_MAX: usize = 50_000;

/// One wallet's leaf as stored: its position in the batch file, the wallet, the amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoredLeaf {
    pub position: u64,
    pub wallet: WalletAddress,
    /// Atomic units.
    pub amount: Amount,
}

/// `GET /api/settlement/batches/{id}/leaves` (admin key): the batch's leaves in position
/// order, a page at a time; `basis orchestrator settle export` rebuilds the tree from them
/// and checks it against the batch's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchLeaves {
    pub batch_id: u64,
    pub leaves: Vec<StoredLeaf>,
    /// Pass as `?after=` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// `GET /api/settlement/batches`, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchList {
    pub batches: Vec<SettlementBatchInfo>,
    /// Pass as `?before=` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

/// A batch as a rewards view shows it: the wallet's leaf with its Merkle proof and the root,
/// so the claim can be checked offline (`MerkleProof.verify(proof, root, leaf)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RewardBatch {
    pub batch_id: u64,
    pub status: BatchStatus,
    /// This view's credits in the batch (a worker's share of its wallet's leaf).
    pub share: Amount,
    /// The wallet's leaf: what the batch pays it (all its workers together), and the proof.
    pub leaf: BatchLeaf,
    pub root: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<u64>,
}

/// Rewards added up by state. Atomic units of `asset`, as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RewardTotals {
    /// Everything credited: `pending + batched + paid`.
    pub accrued: Amount,
    /// Credited, in no batch yet.
    pub pending: Amount,
    /// In a closed batch, not yet paid.
    pub batched: Amount,
    /// In a batch whose payment the operator recorded.
    pub paid: Amount,
}

/// `GET /api/workers/{id}/rewards`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rewards {
    pub worker_id: WorkerId,
    /// The worker's reward address now.
    pub wallet: WalletAddress,
    #[serde(flatten)]
    pub totals: RewardTotals,
    pub asset: String,
    /// Decimals of `asset`: an amount / 10^asset_decimals is whole units (e.g. 6 for USDC:
    /// "1500000" is 1.5). Absent when the orchestrator does not know them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<u8>,
    /// The newest batches holding its credits (at most 10), with proofs.
    pub batches: Vec<RewardBatch>,
    /// Newest first (at most 100).
    pub credits: Vec<Credit>,
}

/// `GET /api/wallets/{address}/rewards`: every worker paying this wallet, together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WalletRewards {
    pub wallet: WalletAddress,
    #[serde(flatten)]
    pub totals: RewardTotals,
    pub asset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<u8>,
    /// How many credits were added up.
    pub credits: u64,
    /// The newest batches paying this wallet (at most 10), with proofs.
    pub batches: Vec<RewardBatch>,
}
