//! Settlement rows (docs/SETTLEMENT.md, "Batches"): closed batches, their per-wallet leaves
//! and their Merkle trees' nodes; the [`SettlementStore`] trait, the SQL and row parsers both
//! backends share, and the fold of a worker's or a wallet's credits into totals.
//!
//! A credit's batch is not written on the credit: it follows from the batches. Each credit
//! has a `seq`, increasing in commit order (a close holds off new credits while it reads), and
//! each batch records its watermark and the highest `seq` committed when it closed. A credit
//! belongs to the first batch of its asset whose watermark is after it and whose `max_seq`
//! covers it ([`CREDITS_WITH_BATCH`]); before that batch it is `pending`, after the batch's
//! payment `paid`. So a close writes the batch, its leaves and nodes, and no credit row. What
//! a batch pays is decided above the store: a backend hands the credits a close covers to the
//! caller's [`Sealer`] and writes what it returns.

use alloy_primitives::B256;
use futures::future::BoxFuture;

use super::StoreError;
use super::rows::{Columns, corrupt};
use crate::domain::{Amount, WalletAddress, WorkerId};

pub use super::rows::{BATCHED, PAID, PENDING};

/// The columns [`batch_row`] reads, in order.
pub const BATCH_COLUMNS: &str = "batch_id, watermark_ms, period_start_ms, asset, token, \
     chain_id, verifying_contract, domain_name, domain_version, total, root, credits, leaves, \
     closed_ms, tx_hash, paid_ms, max_seq";

/// `credits c` with the batch `b` holding each (NULL columns while pending).
/// Within an asset, batches run in the same order by id, by watermark and by `max_seq` (a
/// watermark only moves forward; `max_seq` never falls), so the first by watermark that
/// covers the credit is the one: an index walk of `batches_by_asset` from the credit's time
/// that stops at the first match.
pub const CREDITS_WITH_BATCH: &str = "credits c LEFT JOIN settlement_batches b ON b.batch_id = \
     (SELECT x.batch_id FROM settlement_batches x WHERE x.asset = c.asset \
     AND x.watermark_ms > c.created_ms AND x.max_seq >= c.seq ORDER BY x.watermark_ms LIMIT 1)";

/// The credits batch N covers: `?1` asset, `?2` its `max_seq`, `?3` its watermark, `?4` and
/// `?5` the watermark and `max_seq` of the asset's batch before it (0 and 0 for the first).
/// Those made in `[?4, ?3)`, and those made earlier that committed after the batch before.
pub const CREDITS_OF_BATCH: &str = "SELECT wallet, net, created_ms, worker_id FROM credits \
     WHERE asset = ?1 AND seq <= ?2 AND created_ms < ?3 AND created_ms >= ?4 \
     UNION ALL SELECT wallet, net, created_ms, worker_id FROM credits \
     WHERE asset = ?1 AND seq > ?5 AND seq <= ?2 AND created_ms < ?4";

/// The newest batch of an asset before a batch id: `?1` asset, `?2` batch id.
pub const PREVIOUS_OF_ASSET: &str = "SELECT watermark_ms, max_seq FROM settlement_batches \
     WHERE asset = ?1 AND batch_id < ?2 ORDER BY batch_id DESC LIMIT 1";

/// `sql` with PostgreSQL's `$N` placeholders for `?N`.
pub fn pg(sql: &str) -> String {
    sql.replace('?', "$")
}

/// What a batch is closed under: its watermark and the EIP-712 domain and token it pays with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTerms {
    /// Credits made before this instant (unix milliseconds) are in the batch.
    pub watermark_ms: u64,
    pub closed_ms: u64,
    pub asset: String,
    /// The token contract, checksummed.
    pub token: String,
    pub chain_id: u64,
    /// The EIP-712 verifying contract, checksummed.
    pub verifying_contract: String,
    pub domain_name: String,
    pub domain_version: String,
}

/// A closed batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    pub batch_id: u64,
    pub terms: BatchTerms,
    /// Where its period starts (unix milliseconds): the watermark of the asset's batch before
    /// it, or its earliest credit's time for the first.
    pub period_start_ms: u64,
    /// The highest credit `seq` committed when it closed.
    pub max_seq: u64,
    /// The sum of its leaves.
    pub total: Amount,
    /// The Merkle root, `0x` hex.
    pub root: String,
    /// How many credits it holds, and how many wallets it pays.
    pub credits: u64,
    pub leaves: u64,
    /// The payment, once recorded.
    pub tx_hash: Option<String>,
    pub paid_ms: Option<u64>,
}

impl BatchRow {
    /// A new batch's row: `batch_id` closed under `terms` over `credits` credits up to
    /// `max_seq`, as `sealed` made it.
    pub fn sealed(
        batch_id: u64,
        terms: BatchTerms,
        max_seq: u64,
        credits: u64,
        sealed: &Sealed,
    ) -> Self {
        Self {
            batch_id,
            terms,
            period_start_ms: sealed.period_start_ms,
            max_seq,
            total: sealed.total,
            root: sealed.root.clone(),
            credits,
            leaves: sealed.leaves.len() as u64,
            tx_hash: None,
            paid_ms: None,
        }
    }
}

/// A credit as a batch sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoveredCredit {
    pub wallet: WalletAddress,
    pub net: Amount,
    pub created_ms: u64,
}

/// One wallet's leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafRow {
    pub position: u64,
    pub wallet: WalletAddress,
    pub amount: Amount,
}

/// What the caller's sealer makes of the credits a close covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// One per wallet, in position order, each with its node in `nodes`.
    pub leaves: Vec<(WalletAddress, Amount, u64)>,
    /// The whole tree in OpenZeppelin's layout (the root first).
    pub nodes: Vec<B256>,
    pub total: Amount,
    pub root: String,
    pub period_start_ms: u64,
}

/// Turns the credits a close covers (and the watermark of the asset's batch before, if any)
/// into the batch's leaves and tree; `Ok(None)` when they pay nothing (the close then writes
/// nothing). Runs inside the close's transaction.
pub type Sealer =
    Box<dyn FnOnce(&[CoveredCredit], Option<u64>) -> Result<Option<Sealed>, StoreError> + Send>;

/// What a close did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A new batch, holding every pending credit made before the watermark.
    New(BatchRow),
    /// A batch with this watermark already exists; nothing changed.
    Existing(BatchRow),
    /// No pending credit before the watermark pays anything; nothing changed.
    Nothing,
    /// The newest batch's watermark is later; nothing changed.
    Behind(BatchRow),
    /// The newest batch has this watermark but pays another asset (the configured asset
    /// changed); nothing changed.
    OtherAsset(BatchRow),
}

/// The id a close at `terms` gives its batch after the `newest` one, or why it makes none:
/// the newest batch already has this watermark (`Existing`, or `OtherAsset` when it pays
/// another asset), or a later one (`Behind`). Watermarks only move forward, across assets,
/// which is what keeps batches ordered alike by id, watermark and `max_seq`.
pub fn next_batch(newest: Option<BatchRow>, terms: &BatchTerms) -> NextBatch {
    let Some(b) = newest else {
        return NextBatch::Id(1);
    };
    match b.terms.watermark_ms.cmp(&terms.watermark_ms) {
        std::cmp::Ordering::Equal if b.terms.asset != terms.asset => {
            NextBatch::None(Closed::OtherAsset(b))
        }
        std::cmp::Ordering::Equal => NextBatch::None(Closed::Existing(b)),
        std::cmp::Ordering::Greater => NextBatch::None(Closed::Behind(b)),
        std::cmp::Ordering::Less => NextBatch::Id(b.batch_id + 1),
    }
}

/// What [`next_batch`] decided. Made once per close, so its size does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum NextBatch {
    Id(u64),
    None(Closed),
}

/// What recording a payment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkedPaid {
    Paid(BatchRow),
    NotFound,
    /// Already paid (by this or another transaction); nothing changed.
    AlreadyPaid(BatchRow),
    /// The transaction hash is recorded for another batch; nothing changed.
    TxHashUsed {
        batch_id: u64,
    },
}

/// Whose rewards to add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewardScope {
    Worker(WorkerId),
    Wallet(WalletAddress),
}

/// Credits added up by state, and by batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditTotals {
    /// Everything credited.
    pub accrued: Amount,
    pub pending: Amount,
    pub batched: Amount,
    pub paid: Amount,
    /// Per batch and wallet paid (newest batch first): this scope's credits in it.
    pub batches: Vec<(u64, WalletAddress, Amount)>,
    /// How many credits were added up.
    pub credits: u64,
    shares: std::collections::HashMap<(u64, WalletAddress), Amount>,
}

impl CreditTotals {
    /// Adds one credit: its batch (`None` while pending), whether that batch is paid, its
    /// wallet and net amount as stored.
    pub fn add(
        &mut self,
        batch_id: Option<i64>,
        paid: bool,
        wallet: &str,
        net: &str,
    ) -> Result<(), StoreError> {
        let net = Amount::parse(net).map_err(|e| corrupt("credit", e))?;
        let sum = |a: Amount| {
            a.checked_add(net)
                .ok_or_else(|| corrupt("credit", "rewards overflow"))
        };
        self.credits += 1;
        self.accrued = sum(self.accrued)?;
        match (batch_id, paid) {
            (None, _) => self.pending = sum(self.pending)?,
            (Some(_), false) => self.batched = sum(self.batched)?,
            (Some(_), true) => self.paid = sum(self.paid)?,
        }
        if let Some(id) = batch_id {
            let id = u64::try_from(id).map_err(|e| corrupt("credit", e))?;
            let wallet = WalletAddress::parse(wallet).map_err(|e| corrupt("credit wallet", e))?;
            let share = self.shares.entry((id, wallet)).or_insert(Amount::ZERO);
            *share = share
                .checked_add(net)
                .ok_or_else(|| corrupt("credit", "rewards overflow"))?;
        }
        Ok(())
    }

    /// The shares, newest batch first.
    #[must_use]
    pub fn finish(mut self) -> Self {
        self.batches = std::mem::take(&mut self.shares)
            .into_iter()
            .map(|((id, wallet), share)| (id, wallet, share))
            .collect();
        self.batches
            .sort_unstable_by_key(|b| (std::cmp::Reverse(b.0), b.1.address()));
        self
    }
}

/// A paid batch's credits added up per worker (`worker_id`, `net` rows): what each worker's
/// `rewards_pending` (credited, not yet paid out) loses when the batch is marked paid.
#[derive(Debug, Default)]
pub struct PaidPerWorker(pub std::collections::HashMap<String, Amount>);

impl PaidPerWorker {
    pub fn add(&mut self, worker: String, net: &str) -> Result<(), StoreError> {
        let net = Amount::parse(net).map_err(|e| corrupt("credit", e))?;
        let sum = self.0.entry(worker).or_insert(Amount::ZERO);
        *sum = sum
            .checked_add(net)
            .ok_or_else(|| corrupt("credit", "rewards overflow"))?;
        Ok(())
    }

    /// `pending` less what was paid (never below 0: a ledger the copy or an operator changed
    /// by hand is not a reason to fail a payment).
    pub fn left(pending: &str, paid: Amount) -> Result<Amount, StoreError> {
        let pending = Amount::parse(pending).map_err(|e| corrupt("rewards_pending", e))?;
        Ok(pending.checked_sub(paid).unwrap_or(Amount::ZERO))
    }
}

fn ms(row: &impl Columns, i: usize, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(row.int(i)?).map_err(|e| corrupt(what, e))
}

/// A batch, from [`BATCH_COLUMNS`].
pub fn batch_row(row: &impl Columns) -> Result<BatchRow, StoreError> {
    Ok(BatchRow {
        batch_id: ms(row, 0, "batch id")?,
        terms: BatchTerms {
            watermark_ms: ms(row, 1, "watermark")?,
            closed_ms: ms(row, 13, "closed")?,
            asset: row.text(3)?,
            token: row.text(4)?,
            chain_id: ms(row, 5, "chain id")?,
            verifying_contract: row.text(6)?,
            domain_name: row.text(7)?,
            domain_version: row.text(8)?,
        },
        period_start_ms: ms(row, 2, "period start")?,
        total: Amount::parse(&row.text(9)?).map_err(|e| corrupt("batch total", e))?,
        root: row.text(10)?,
        credits: ms(row, 11, "credit count")?,
        leaves: ms(row, 12, "leaf count")?,
        tx_hash: row.opt_text(14)?,
        paid_ms: row
            .opt_int(15)?
            .map(|v| u64::try_from(v).map_err(|e| corrupt("paid", e)))
            .transpose()?,
        max_seq: ms(row, 16, "max seq")?,
    })
}

/// A leaf, from `position, wallet, amount`.
pub fn leaf_row(row: &impl Columns) -> Result<LeafRow, StoreError> {
    Ok(LeafRow {
        position: ms(row, 0, "leaf position")?,
        wallet: WalletAddress::parse(&row.text(1)?).map_err(|e| corrupt("leaf wallet", e))?,
        amount: Amount::parse(&row.text(2)?).map_err(|e| corrupt("leaf amount", e))?,
    })
}

/// A covered credit, from `wallet, net, created_ms` ([`CREDITS_OF_BATCH`]).
pub fn covered_row(row: &impl Columns) -> Result<CoveredCredit, StoreError> {
    Ok(CoveredCredit {
        wallet: WalletAddress::parse(&row.text(0)?).map_err(|e| corrupt("credit wallet", e))?,
        net: Amount::parse(&row.text(1)?).map_err(|e| corrupt("credit net", e))?,
        created_ms: ms(row, 2, "credited")?,
    })
}

/// A proof read from a stored tree: the leaf's amount and the sibling hashes from it up.
pub type StoredProof = (Amount, Vec<B256>);

/// Settlement batches, their leaves and trees.
pub trait SettlementStore {
    /// In one transaction, holding off new credits while it reads: unless a batch with this
    /// watermark (or a later one) exists, covers every pending credit of `terms.asset` made
    /// before `terms.watermark_ms` and writes the batch, its leaves and tree as `seal` makes
    /// them. Closes are serialised: of two at once, the second sees the first's batch.
    fn close_batch(
        &self,
        terms: BatchTerms,
        seal: Sealer,
    ) -> BoxFuture<'_, Result<Closed, StoreError>>;

    /// Batches newest first, those with an id below `before` when given.
    fn batches(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<BatchRow>, StoreError>>;

    fn batch(&self, id: u64) -> BoxFuture<'_, Result<Option<BatchRow>, StoreError>>;

    /// Up to `limit` of the batch's leaves after position `after` (from the first when
    /// `None`), in position order.
    fn batch_leaves(
        &self,
        id: u64,
        after: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<LeafRow>, StoreError>>;

    /// `wallet`'s leaf in batch `id` with its proof, read from the stored tree (`None`: the
    /// batch pays the wallet nothing).
    fn leaf_proof(
        &self,
        id: u64,
        wallet: WalletAddress,
    ) -> BoxFuture<'_, Result<Option<StoredProof>, StoreError>>;

    /// Records the batch paid by `tx_hash` (its credits are then `paid`, and each worker's
    /// `rewards_pending` loses its share), unless it is unknown, already paid, or the hash
    /// is another batch's.
    fn mark_paid(
        &self,
        id: u64,
        tx_hash: String,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<MarkedPaid, StoreError>>;

    /// The scope's credits added up.
    fn reward_totals(&self, scope: RewardScope) -> BoxFuture<'_, Result<CreditTotals, StoreError>>;
}

/// The stored proof of the leaf at `node` from the `(node, hash)` rows read for
/// [`crate::domain::proof_nodes`]`(node)`.
pub fn assemble_proof(node: u64, rows: &[(u64, Vec<u8>)]) -> Result<Vec<B256>, StoreError> {
    let wanted = crate::domain::proof_nodes(usize::try_from(node).map_err(|e| corrupt("node", e))?);
    wanted
        .into_iter()
        .map(|i| {
            rows.iter()
                .find(|(n, _)| *n == i as u64)
                .and_then(|(_, h)| (h.len() == 32).then(|| B256::from_slice(h)))
                .ok_or_else(|| corrupt("batch tree", format!("node {i} is missing")))
        })
        .collect()
}
