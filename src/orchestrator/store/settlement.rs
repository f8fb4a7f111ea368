//! Settlement rows (docs/SETTLEMENT.md, "Batches"): closed batches, their per-wallet leaves,
//! and each credit's state (`pending` → `batched` → `paid`). The [`SettlementStore`] trait,
//! the columns and row parsers both backends share, and the fold of a worker's or a wallet's
//! credits into totals. What a batch pays is decided above the store: a backend hands the
//! credits it moved to the caller's [`Sealer`] and writes what it returns.

use futures::future::BoxFuture;

use super::StoreError;
use super::rows::{Columns, corrupt};
use crate::domain::{Amount, WalletAddress, WorkerId};

/// A credit's state.
pub const PENDING: &str = "pending";
pub const BATCHED: &str = "batched";
pub const PAID: &str = "paid";

/// The columns [`batch_row`] reads, in order.
pub const BATCH_COLUMNS: &str = "batch_id, watermark_ms, period_start_ms, asset, token, \
     chain_id, verifying_contract, domain_name, domain_version, total, root, credits, leaves, \
     closed_ms, tx_hash, paid_ms";

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
    /// The earliest of its credits (unix milliseconds).
    pub period_start_ms: u64,
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

/// A credit as a batch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MovedCredit {
    pub wallet: WalletAddress,
    pub net: Amount,
    pub created_ms: u64,
}

/// What the caller's sealer makes of the moved credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// One per wallet, in leaf-position order.
    pub leaves: Vec<(WalletAddress, Amount)>,
    pub total: Amount,
    pub root: String,
    pub period_start_ms: u64,
}

/// Turns the credits a close moved into the batch's leaves and root; `None` when they pay
/// nothing (the close is then rolled back). Runs inside the close's transaction.
pub type Sealer = Box<dyn FnOnce(&[MovedCredit]) -> Option<Sealed> + Send>;

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
}

impl CreditTotals {
    /// Adds one credit (`status`, `batch_id`, `wallet`, `net`, as stored).
    pub fn add(
        &mut self,
        status: &str,
        batch_id: Option<i64>,
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
        match status {
            PENDING => self.pending = sum(self.pending)?,
            BATCHED => self.batched = sum(self.batched)?,
            PAID => self.paid = sum(self.paid)?,
            other => return Err(corrupt("credit", format!("unknown status {other:?}"))),
        }
        if let Some(id) = batch_id {
            let id = u64::try_from(id).map_err(|e| corrupt("credit", e))?;
            let wallet = WalletAddress::parse(wallet).map_err(|e| corrupt("credit wallet", e))?;
            match self
                .batches
                .iter_mut()
                .find(|(b, w, _)| *b == id && *w == wallet)
            {
                Some((_, _, share)) => *share = sum(*share)?,
                None => self.batches.push((id, wallet, net)),
            }
        }
        Ok(())
    }

    /// Sorts the batches newest first.
    pub fn finish(mut self) -> Self {
        self.batches
            .sort_unstable_by_key(|b| std::cmp::Reverse(b.0));
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
    })
}

/// A leaf, from `wallet, amount`.
pub fn leaf_row(row: &impl Columns) -> Result<(WalletAddress, Amount), StoreError> {
    Ok((
        WalletAddress::parse(&row.text(0)?).map_err(|e| corrupt("leaf wallet", e))?,
        Amount::parse(&row.text(1)?).map_err(|e| corrupt("leaf amount", e))?,
    ))
}

/// A moved credit, from `wallet, net, created_ms`.
pub fn moved_row(row: &impl Columns) -> Result<MovedCredit, StoreError> {
    Ok(MovedCredit {
        wallet: WalletAddress::parse(&row.text(0)?).map_err(|e| corrupt("credit wallet", e))?,
        net: Amount::parse(&row.text(1)?).map_err(|e| corrupt("credit net", e))?,
        created_ms: ms(row, 2, "credited")?,
    })
}

/// Settlement batches and the state of credits.
pub trait SettlementStore {
    /// In one transaction: unless a batch with this watermark (or a later one) exists, moves
    /// every pending credit made before `terms.watermark_ms` into a new batch (the next id),
    /// and writes the batch and the leaves `seal` makes of them. Closes are serialised: of
    /// two at once, the second sees the first's batch.
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

    /// The batch's leaves in position order.
    fn batch_leaves(
        &self,
        id: u64,
    ) -> BoxFuture<'_, Result<Vec<(WalletAddress, Amount)>, StoreError>>;

    /// Records the batch paid by `tx_hash` and its credits `paid`, unless it is unknown,
    /// already paid, or the hash is another batch's.
    fn mark_paid(
        &self,
        id: u64,
        tx_hash: String,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<MarkedPaid, StoreError>>;

    /// The scope's credits added up.
    fn reward_totals(&self, scope: RewardScope) -> BoxFuture<'_, Result<CreditTotals, StoreError>>;
}
