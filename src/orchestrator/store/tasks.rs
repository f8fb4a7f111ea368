//! The task market in the store (§7): [`TaskRow`], [`SubmissionRow`], the arguments of each
//! state change, the typed [`Refusal`]s, and the [`TaskStore`] trait.
//!
//! Contract every implementation keeps: each state change is one transaction that re-reads
//! the task's current status and applies [`crate::domain::transition`] (nothing else decides
//! the next status), so a claim is a compare-and-swap: of N concurrent claimers of one open
//! task exactly one wins. Evaluating writes the evaluation, the status, the credit, the
//! worker's `rewards_pending` and the sealed settlement receipt together. Times are unix
//! milliseconds here (a 1 s lease is exact); the wire shows seconds.

use futures::future::BoxFuture;

use super::{KeySha256, StoreError};
use crate::domain::{
    Amount, Evaluation, OutputFormat, OutputHash, ReceiptHash, ReceiptId, SubmissionId, TaskId,
    TaskStatus, Usage, WorkerId,
};
use crate::orchestrator::market::AssetUnits;
use crate::orchestrator::market::settle::SettlePolicy;
use crate::wire::{Claim, Credit, Dispute, Submission, Task, TaskInput};

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
}

impl TaskRow {
    /// The wire form (times in seconds), with the asset's decimals when `units` knows them.
    pub fn to_wire(&self, units: &AssetUnits<'_>) -> Task {
        let claimed = self.status == TaskStatus::Claimed;
        Task {
            task_id: self.task_id.clone(),
            client: self.client.clone(),
            description: self.description.clone(),
            criteria: self.criteria.clone(),
            required_capabilities: self.required_capabilities.clone(),
            reward: self.reward,
            asset: self.asset.clone(),
            asset_decimals: units.decimals_of(&self.asset),
            deadline: secs(self.deadline_ms),
            output_format: self.output_format,
            claim_ttl_s: self.claim_ttl_s,
            evaluator: self.evaluator.clone(),
            pass_threshold: self.pass_threshold,
            input: self.input.clone(),
            status: self.status,
            attempts: self.attempts,
            created_at: secs(self.created_ms),
            claimed_by: self.claimed_by.clone(),
            claim_expiry: self.claim_expiry_ms.filter(|_| claimed).map(secs),
            submission_id: self.submission_id.clone(),
        }
    }

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

/// `credit` with its asset's decimals, when `units` knows them (the store keeps none).
pub fn credit_with_decimals(mut credit: Credit, units: &AssetUnits<'_>) -> Credit {
    credit.asset_decimals = units.decimals_of(&credit.asset);
    credit
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
}

impl SubmissionRow {
    /// The wire form (times in seconds), the credit with its asset's decimals when `units`
    /// knows them.
    pub fn to_wire(&self, units: &AssetUnits<'_>) -> Submission {
        Submission {
            submission_id: self.submission_id.clone(),
            task_id: self.task_id.clone(),
            worker_id: self.worker_id.clone(),
            status: self.status,
            output_format: self.output_format,
            output: self.output.clone(),
            output_hash: self.output_hash,
            usage: self.usage,
            duration_ms: self.duration_ms,
            submitted_at: secs(self.submitted_ms),
            evaluation_deadline: secs(self.evaluation_deadline_ms),
            evaluation: self.evaluation.clone(),
            attestation_hash: self.attestation_hash,
            evaluated_at: self.evaluated_ms.map(secs),
            auto_evaluated: self.auto_evaluated,
            dispute_deadline: self.dispute_deadline_ms.map(secs),
            dispute: self.dispute.clone(),
            credit: self.credit.clone().map(|c| credit_with_decimals(c, units)),
            receipt_id: self.receipt_id.clone(),
            receipt_hash: self.receipt_hash,
        }
    }
}

/// `GET /api/tasks` as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: TaskStatus,
    /// Only tasks whose required capabilities are all among these; `None`: no filter.
    pub capabilities: Option<Vec<String>>,
    pub min_reward: Option<Amount>,
    /// Only tasks whose deadline is at or after this (unix ms).
    pub deadline_from_ms: Option<u64>,
    /// Resume after this `(reward, task_id)` (exclusive).
    pub after: Option<(Amount, TaskId)>,
    pub limit: usize,
}

/// A claim attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimArgs {
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    /// The worker registered as multi-task: it may hold several claims at once.
    pub multi_task: bool,
    pub now_ms: u64,
}

/// A granted claim; `new` is false when the worker already held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub claim: Claim,
    pub new: bool,
}

/// A submission to record (format and hash already checked against the task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubmission {
    pub submission_id: SubmissionId,
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    pub output: String,
    pub output_hash: OutputHash,
    pub usage: Option<Usage>,
    pub duration_ms: Option<u64>,
    pub now_ms: u64,
    /// How long the evaluator has, from now.
    pub evaluation_timeout_ms: u64,
}

/// A recorded submission; `new` is false for a repeat of the same `(task_id, output_hash)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub submission: SubmissionRow,
    pub new: bool,
}

/// An evaluation to apply (by an evaluator, or by the timeout policy when `auto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluateArgs {
    pub submission_id: SubmissionId,
    pub evaluation: Evaluation,
    pub auto: bool,
    pub now_ms: u64,
    pub policy: SettlePolicy,
}

/// A worker's dispute of a rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeArgs {
    pub submission_id: SubmissionId,
    pub worker_id: WorkerId,
    pub reason: String,
    pub now_ms: u64,
}

/// The operator's decision on a dispute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveArgs {
    pub submission_id: SubmissionId,
    /// For the worker (`completed`: credited) or against (`rejected`).
    pub for_worker: bool,
    pub note: String,
    pub now_ms: u64,
    pub policy: SettlePolicy,
}

/// What one sweep changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Claims whose lease ran out and whose task reopened.
    pub reopened: usize,
    /// Claims whose lease ran out on the last attempt.
    pub abandoned: usize,
    /// Open or claimed tasks past their deadline.
    pub expired: usize,
    /// Submissions settled by the evaluator-timeout policy.
    pub auto_completed: usize,
    pub auto_rejected: usize,
}

impl SweepReport {
    pub fn total(&self) -> usize {
        self.reopened + self.abandoned + self.expired + self.auto_completed + self.auto_rejected
    }
}

/// Why the market refused a change (a client's mistake or a lost race, never a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TaskNotFound,
    /// The task is in this status, which takes no claim.
    TaskNotOpen(TaskStatus),
    /// Another worker holds the claim.
    AlreadyClaimed,
    /// This worker holds a claim on this other task and is not multi-task.
    ActiveClaimExists(TaskId),
    NotClaimHolder,
    /// The lease ran out (`deadline`: the task's deadline passed first).
    ClaimExpired {
        deadline: bool,
    },
    /// This worker already submitted a different output for the task.
    AlreadySubmitted(SubmissionId),
    SubmissionNotFound,
    AlreadyEvaluated,
    /// Not rejected, already disputed once, or not this worker's submission.
    NotDisputable(&'static str),
    DisputeWindowClosed,
    NotDisputed,
}

/// A refused or failed task-market change.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("refused: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for TaskError {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

/// Stored tasks, claims, submissions and credits.
pub trait TaskStore {
    /// Inserts a new open task.
    fn insert_task(&self, task: TaskRow) -> BoxFuture<'_, Result<(), StoreError>>;

    fn task(&self, id: TaskId) -> BoxFuture<'_, Result<Option<TaskRow>, StoreError>>;

    /// A page of tasks: highest reward first, then by task id.
    fn list_tasks(&self, filter: TaskFilter) -> BoxFuture<'_, Result<Vec<TaskRow>, StoreError>>;

    /// Claims an open task (compare-and-swap), first applying a lapsed lease or a passed
    /// deadline. Claiming a task the worker already holds returns its claim.
    fn claim_task(&self, args: ClaimArgs) -> BoxFuture<'_, Result<Claimed, TaskError>>;

    /// Gives a held claim back (attempt + 1; the third → abandoned).
    fn release_task(
        &self,
        task: TaskId,
        worker: WorkerId,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<TaskRow, TaskError>>;

    /// Records the claim holder's output; idempotent on `(task_id, output_hash)`.
    fn submit(&self, sub: NewSubmission) -> BoxFuture<'_, Result<Submitted, TaskError>>;

    fn submission(
        &self,
        id: SubmissionId,
    ) -> BoxFuture<'_, Result<Option<SubmissionRow>, StoreError>>;

    /// Evaluates a submitted output and settles it, in one transaction.
    fn evaluate(&self, args: EvaluateArgs) -> BoxFuture<'_, Result<SubmissionRow, TaskError>>;

    /// Disputes a rejection within its window.
    fn dispute(&self, args: DisputeArgs) -> BoxFuture<'_, Result<SubmissionRow, TaskError>>;

    /// Resolves a dispute (for the worker: credited and a new settlement receipt).
    fn resolve(&self, args: ResolveArgs) -> BoxFuture<'_, Result<SubmissionRow, TaskError>>;

    /// A worker's newest credits first.
    fn credits(
        &self,
        worker: WorkerId,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Credit>, StoreError>>;

    /// Lapsed leases, passed deadlines and evaluator timeouts due at `now_ms`, at most `limit`
    /// of each, each through [`crate::domain::transition`].
    fn sweep(
        &self,
        now_ms: u64,
        policy: SettlePolicy,
        limit: usize,
    ) -> BoxFuture<'_, Result<SweepReport, StoreError>>;
}
