//! The task market's rows in the store (docs/TASK_MARKET.md): [`TaskRow`], [`SubmissionRow`],
//! the listing's [`TaskFilter`], the [`TaskStore`] trait, and [`MarketTx`], the narrow
//! transaction a backend opens for the market engine (`orchestrator::market::engine`).
//!
//! The store holds no market rule: which claim wins, when a lease lapses, what a submission
//! is credited, all of it is decided in the engine, which reads and writes rows through
//! [`MarketTx`] inside one transaction ([`TaskStore::transact`]). A backend only maps rows.
//!
//! Contract every implementation keeps: [`TaskStore::transact`] runs its body in one
//! transaction that is serializable with respect to every other market transaction (SQLite's
//! single writer; PostgreSQL row locks), commits it when the body returns `Ok` and rolls it
//! back when it returns `Err`; it answers `Ok` only once the commit is durable.
//! [`TaskStore::transact_grouped`] keeps the same contract for each body while it may share
//! one transaction among changes to single tasks that arrive together (PostgreSQL's group
//! commit; SQLite's writer groups every write already, and runs a grouped body without a
//! savepoint since it may run again). Times are unix
//! milliseconds here (a 1 s lease is exact); the wire shows seconds.

use futures::future::BoxFuture;

use super::{KeySha256, StoreError};
use crate::domain::{
    Amount, Evaluation, HashedReceipt, MetricSpec, MetricValue, OutputFormat, OutputHash,
    ReceiptHash, ReceiptId, Runtime, SubmissionId, TaskId, TaskStatus, Usage, WalletAddress,
    WorkerId,
};
use crate::wire::{Claim, Credit, Dispute, TaskInput};

/// Milliseconds → whole unix seconds (rounded down).
pub fn secs(ms: u64) -> u64 {
    ms / 1000
}

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    pub task_id: TaskId,
    pub client: String,
    pub description: String,
    pub criteria: Vec<String>,
    /// Sorted and without duplicates.
    pub required_capabilities: Vec<String>,
    /// MiB the claiming worker's largest GPU must have.
    pub min_vram_mib: Option<u64>,
    pub reward: Amount,
    pub asset: String,
    pub deadline_ms: u64,
    pub output_format: OutputFormat,
    pub claim_ttl_s: u64,
    pub evaluator: String,
    pub pass_threshold: u8,
    pub input: Option<TaskInput>,
    pub status: TaskStatus,
    pub attempts: u32,
    pub created_ms: u64,
    /// The claim holder (claimed) or the submitter (submitted and after).
    pub claimed_by: Option<WorkerId>,
    /// When the current (or the submitted) claim began.
    pub claimed_ms: Option<u64>,
    pub claim_expiry_ms: Option<u64>,
    pub submission_id: Option<SubmissionId>,
    /// sha256 of the key the poster sent (its client key), if any: the poster reads the
    /// task's submission with it. Never on the wire.
    pub client_key: Option<KeySha256>,
    /// The family the leaderboard ranks this task in, by its metric.
    pub family: Option<String>,
    /// The number a submission reports and the evaluator confirms.
    pub metric: Option<MetricSpec>,
}

impl TaskRow {
    /// The claim it holds now, if claimed.
    pub fn claim(&self) -> Option<Claim> {
        if self.status != TaskStatus::Claimed {
            return None;
        }
        Some(Claim {
            task_id: self.task_id.clone(),
            worker_id: self.claimed_by.clone()?,
            claimed_at: secs(self.claimed_ms?),
            claim_expiry: secs(self.claim_expiry_ms?),
            attempts: self.attempts,
        })
    }
}

/// A submission as stored, with its task's status and format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionRow {
    pub submission_id: SubmissionId,
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    pub status: TaskStatus,
    pub output_format: OutputFormat,
    pub output: String,
    pub output_hash: OutputHash,
    pub usage: Option<Usage>,
    pub duration_ms: Option<u64>,
    pub claimed_ms: u64,
    pub submitted_ms: u64,
    pub evaluation_deadline_ms: u64,
    pub evaluation: Option<Evaluation>,
    pub attestation_hash: Option<ReceiptHash>,
    pub evaluated_ms: Option<u64>,
    pub auto_evaluated: bool,
    pub dispute_deadline_ms: Option<u64>,
    pub dispute: Option<Dispute>,
    pub credit: Option<Credit>,
    pub receipt_id: Option<ReceiptId>,
    pub receipt_hash: Option<ReceiptHash>,
    /// The metric the submission reported (the evaluator's confirmed value is in
    /// `evaluation`).
    pub metric: Option<MetricValue>,
}

/// `GET /api/tasks` as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: TaskStatus,
    /// Only tasks whose required capabilities are all among these; `None`: no filter.
    pub capabilities: Option<Vec<String>>,
    /// Only tasks needing at most this VRAM (MiB; 0: only tasks needing none); `None`: no
    /// filter.
    pub fits_vram_mib: Option<u64>,
    pub min_reward: Option<Amount>,
    /// Only tasks whose deadline is at or after this (unix ms).
    pub deadline_from_ms: Option<u64>,
    /// Resume after this `(reward, task_id)` (exclusive).
    pub after: Option<(Amount, TaskId)>,
    pub limit: usize,
}

/// How a claim ended, in the claims history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimEnd {
    Released,
    Lapsed,
    Submitted,
    Expired,
}

impl ClaimEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Released => "released",
            Self::Lapsed => "lapsed",
            Self::Submitted => "submitted",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Released, Self::Lapsed, Self::Submitted, Self::Expired]
            .into_iter()
            .find(|end| end.as_str() == s)
    }
}

/// A submission row to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionInsert {
    pub submission_id: SubmissionId,
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    pub output: String,
    pub output_hash: OutputHash,
    pub usage: Option<Usage>,
    pub duration_ms: Option<u64>,
    pub claimed_ms: u64,
    pub submitted_ms: u64,
    pub evaluation_deadline_ms: u64,
    pub metric: Option<MetricValue>,
}

/// An evaluation to record on its submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationRecord {
    pub submission_id: SubmissionId,
    pub evaluation: Evaluation,
    pub attestation_hash: ReceiptHash,
    pub evaluated_ms: u64,
    pub auto: bool,
    pub dispute_deadline_ms: Option<u64>,
    pub receipt_id: ReceiptId,
}

/// A dispute's resolution to record on its submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolutionRecord {
    pub submission_id: SubmissionId,
    /// The task's status after the resolution.
    pub resolution: TaskStatus,
    pub note: String,
    pub resolved_ms: u64,
    /// The new settlement receipt, when resolved for the worker.
    pub receipt_id: Option<ReceiptId>,
}

/// What the sweeper looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueTasks {
    /// Open or claimed tasks whose deadline has passed.
    Deadline,
    /// Claimed tasks whose lease has run out.
    Lease,
}

/// A future of a [`MarketTx`] call.
pub type TxFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// The rows the market engine reads and writes inside one transaction. Every method is a
/// plain read or write of rows; none decides anything.
pub trait MarketTx: Send {
    fn task<'a>(&'a mut self, id: &'a TaskId) -> TxFuture<'a, Option<TaskRow>>;
    /// Writes the task's mutable state: status, attempts, claim fields, submission id.
    fn write_task_state<'a>(&'a mut self, t: &'a TaskRow, now_ms: u64) -> TxFuture<'a, ()>;
    /// Appends the task's current claim (holder, attempt, times) to the claims history.
    fn open_claim<'a>(&'a mut self, t: &'a TaskRow) -> TxFuture<'a, ()>;
    /// Ends the task's open claim in the history, if one is open.
    fn close_claim<'a>(
        &'a mut self,
        task: &'a TaskId,
        end: ClaimEnd,
        now_ms: u64,
    ) -> TxFuture<'a, ()>;
    /// How `worker`'s latest claim on `task` ended (`None`: never claimed, or still open).
    fn last_claim_end<'a>(
        &'a mut self,
        task: &'a TaskId,
        worker: &'a WorkerId,
    ) -> TxFuture<'a, Option<ClaimEnd>>;
    /// A task other than `except` that `worker` holds claimed with a lease running past
    /// `now_ms`.
    fn live_claim_of<'a>(
        &'a mut self,
        worker: &'a WorkerId,
        except: &'a TaskId,
        now_ms: u64,
    ) -> TxFuture<'a, Option<TaskId>>;
    fn submission<'a>(&'a mut self, id: &'a SubmissionId) -> TxFuture<'a, Option<SubmissionRow>>;
    fn insert_submission<'a>(&'a mut self, s: &'a SubmissionInsert) -> TxFuture<'a, ()>;
    fn record_evaluation<'a>(&'a mut self, e: &'a EvaluationRecord) -> TxFuture<'a, ()>;
    fn record_dispute<'a>(
        &'a mut self,
        id: &'a SubmissionId,
        reason: &'a str,
        now_ms: u64,
    ) -> TxFuture<'a, ()>;
    fn record_resolution<'a>(&'a mut self, r: &'a ResolutionRecord) -> TxFuture<'a, ()>;
    /// The registered worker's wallet and runtime.
    fn payee<'a>(
        &'a mut self,
        worker: &'a WorkerId,
    ) -> TxFuture<'a, Option<(WalletAddress, Runtime)>>;
    fn insert_receipt<'a>(&'a mut self, receipt: &'a HashedReceipt) -> TxFuture<'a, ()>;
    fn insert_credit<'a>(&'a mut self, credit: &'a Credit, now_ms: u64) -> TxFuture<'a, ()>;
    /// The worker's `rewards_pending` (`None`: not registered).
    fn pending_rewards<'a>(&'a mut self, worker: &'a WorkerId) -> TxFuture<'a, Option<Amount>>;
    fn set_pending_rewards<'a>(
        &'a mut self,
        worker: &'a WorkerId,
        total: Amount,
    ) -> TxFuture<'a, ()>;
    /// Up to `limit` tasks due at `now_ms`.
    fn due_tasks(&mut self, due: DueTasks, now_ms: u64, limit: usize) -> TxFuture<'_, Vec<TaskId>>;
    /// Up to `limit` unevaluated submissions whose evaluation deadline is at or before
    /// `now_ms`.
    fn due_evaluations(&mut self, now_ms: u64, limit: usize) -> TxFuture<'_, Vec<SubmissionId>>;
}

/// A market transaction's body: runs against the open transaction; `Ok` commits, `Err` rolls
/// back.
pub type TxBody =
    Box<dyn for<'t> FnOnce(&'t mut dyn MarketTx) -> BoxFuture<'t, Result<(), StoreError>> + Send>;

/// A market transaction's body that may run more than once: a grouped transaction
/// ([`TaskStore::transact_grouped`]) that fails is rolled back and each of its bodies is run
/// again alone. So a body has no effect outside its transaction but what it reports.
pub type GroupBody =
    Box<dyn for<'t> FnMut(&'t mut dyn MarketTx) -> BoxFuture<'t, Result<(), StoreError>> + Send>;

/// The rows a grouped body decides on, which the store may lock (and read) before it runs:
/// its task, and the worker whose other claims it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLocks {
    pub task: TaskId,
    pub worker: Option<WorkerId>,
}

/// Stored tasks, claims, submissions and credits.
pub trait TaskStore: Send + Sync {
    /// Inserts a new open task.
    fn insert_task(&self, task: TaskRow) -> BoxFuture<'_, Result<(), StoreError>>;

    fn task(&self, id: TaskId) -> BoxFuture<'_, Result<Option<TaskRow>, StoreError>>;

    /// A page of tasks: highest reward first, then by task id.
    fn list_tasks(&self, filter: TaskFilter) -> BoxFuture<'_, Result<Vec<TaskRow>, StoreError>>;

    fn submission(
        &self,
        id: SubmissionId,
    ) -> BoxFuture<'_, Result<Option<SubmissionRow>, StoreError>>;

    /// A worker's newest credits first.
    fn credits(
        &self,
        worker: WorkerId,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Credit>, StoreError>>;

    /// Runs `body` in one market transaction (see the module doc).
    fn transact(&self, body: TxBody) -> BoxFuture<'_, Result<(), StoreError>>;

    /// [`TaskStore::transact`] for a change to one task, which the store may run in a
    /// transaction shared with other such changes that arrive meanwhile (group commit): each
    /// body sees what the bodies before it wrote, and all commit together, so the contract
    /// holds for each as if it ran alone, in that order. `locks` are the rows the body
    /// decides on. The default runs it alone.
    fn transact_grouped(
        &self,
        locks: GroupLocks,
        mut body: GroupBody,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let _ = locks;
        self.transact(Box::new(move |tx: &mut dyn MarketTx| body(tx)))
    }
}
