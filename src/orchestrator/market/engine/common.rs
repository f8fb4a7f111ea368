//! The engine's core: what a market change is (its arguments, [`Refusal`]s and
//! [`TaskError`]), how one runs in a store transaction ([`transact`]), and the two moves every
//! change is made of: [`apply`] (a task through `transition`, with its claims history) and
//! [`catch_up`] (what time has already decided).

use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::domain::{
    Evaluation, Forbidden, MetricValue, OutputHash, SubmissionId, TaskEvent, TaskId, TaskStatus,
    Usage, WorkerId, transition,
};
use crate::orchestrator::market::settle::SettlePolicy;
use crate::orchestrator::store::{
    ClaimEnd, GroupLocks, MarketTx, StoreError, SubmissionRow, TaskRow, TaskStore,
};
use crate::wire::Capabilities;
use crate::wire::Claim;

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
    /// The worker lacks what the task requires (each item in words, e.g. `gpu`,
    /// `vram >= 24576 MiB (has no GPU VRAM)`).
    CapabilityMismatch(Vec<String>),
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
    /// An evaluation confirms a metric for a task that measures none.
    NoMetric,
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

/// A change's result inside its transaction: refused, or done.
pub type Outcome<T> = Result<Result<T, Refusal>, StoreError>;

/// A claim attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimArgs {
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    /// The worker registered as multi-task: it may hold several claims at once.
    pub multi_task: bool,
    /// What the worker registered (tags and VRAM), checked against the task's requirements.
    pub capabilities: Capabilities,
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
    pub metric: Option<MetricValue>,
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
    /// What the auto-completed submissions credited (net), in atomic units.
    pub credited: crate::domain::Amount,
}

impl SweepReport {
    pub fn total(&self) -> usize {
        self.reopened + self.abandoned + self.expired + self.auto_completed + self.auto_rejected
    }
}

/// Where a transaction body leaves what it decided, for its caller to take once committed.
struct Outcomes<T>(Arc<Mutex<Option<T>>>);

impl<T: Send + 'static> Outcomes<T> {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(None)))
    }

    /// `run`, keeping its value (a later run's replaces an earlier one's).
    fn keep<'t>(
        &self,
        run: BoxFuture<'t, Result<T, StoreError>>,
    ) -> BoxFuture<'t, Result<(), StoreError>> {
        let out = Arc::clone(&self.0);
        async move {
            let value = run.await?;
            *out.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
            Ok(())
        }
        .boxed()
    }

    /// The value kept; called once the store answered `Ok`, so the run that kept it committed.
    fn take(&self) -> Result<T, StoreError> {
        let value = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        value.ok_or_else(|| {
            StoreError::Backend("a market transaction ended without its outcome".into())
        })
    }
}

impl<T> Clone for Outcomes<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

/// Runs `body` in one store transaction and returns what it decided, once committed.
pub(crate) async fn transact<T, F>(store: &dyn TaskStore, body: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn MarketTx) -> BoxFuture<'t, Result<T, StoreError>>
        + Send
        + 'static,
{
    let outcomes = Outcomes::new();
    let out = outcomes.clone();
    store
        .transact(Box::new(move |tx: &mut dyn MarketTx| out.keep(body(tx))))
        .await?;
    outcomes.take()
}

/// [`transact`] for a change to one task, which the store may commit together with others
/// that arrive meanwhile (`TaskStore::transact_grouped`); `body` may run more than once (a
/// shared transaction that failed is run again alone), and only its last run counts.
pub(crate) async fn transact_grouped<T, F>(
    store: &dyn TaskStore,
    locks: GroupLocks,
    mut body: F,
) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: for<'t> FnMut(&'t mut dyn MarketTx) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
{
    let outcomes = Outcomes::new();
    let out = outcomes.clone();
    store
        .transact_grouped(
            locks,
            Box::new(move |tx: &mut dyn MarketTx| out.keep(body(tx))),
        )
        .await?;
    outcomes.take()
}

/// [`transact_grouped`] for a change that may be refused.
pub(super) async fn change_grouped<T, F>(
    store: &dyn TaskStore,
    locks: GroupLocks,
    body: F,
) -> Result<T, TaskError>
where
    T: Send + 'static,
    F: for<'t> FnMut(&'t mut dyn MarketTx) -> BoxFuture<'t, Outcome<T>> + Send + 'static,
{
    transact_grouped(store, locks, body)
        .await?
        .map_err(TaskError::Refused)
}

/// The claims-history entry an event ends, if any.
fn claim_end(event: TaskEvent, from: TaskStatus) -> Option<ClaimEnd> {
    match event {
        TaskEvent::Release => Some(ClaimEnd::Released),
        TaskEvent::LeaseLapsed => Some(ClaimEnd::Lapsed),
        TaskEvent::Submit => Some(ClaimEnd::Submitted),
        TaskEvent::Deadline if from == TaskStatus::Claimed => Some(ClaimEnd::Expired),
        _ => None,
    }
}

/// Moves `t` on `event` through [`transition`] and writes it; claim fields follow the new
/// status (kept for the submitter, cleared when the task reopens or ends unsubmitted).
pub(super) async fn apply(
    tx: &mut dyn MarketTx,
    t: &mut TaskRow,
    event: TaskEvent,
    now_ms: u64,
) -> Result<Result<(), Forbidden>, StoreError> {
    let moved = match transition(t.status, t.attempts, event) {
        Ok(m) => m,
        Err(f) => return Ok(Err(f)),
    };
    if let Some(end) = claim_end(event, t.status) {
        tx.close_claim(&t.task_id, end, now_ms).await?;
    }
    t.status = moved.to;
    t.attempts = moved.attempts;
    if matches!(
        moved.to,
        TaskStatus::Open | TaskStatus::Abandoned | TaskStatus::Expired
    ) {
        t.claimed_by = None;
        t.claimed_ms = None;
        t.claim_expiry_ms = None;
    }
    tx.write_task_state(t, now_ms).await?;
    Ok(Ok(()))
}

/// Applies what time has already decided: a passed deadline (open or claimed → expired), or
/// else a lapsed lease (claimed → open / abandoned). Returns the event applied.
pub(super) async fn catch_up(
    tx: &mut dyn MarketTx,
    t: &mut TaskRow,
    now_ms: u64,
) -> Result<Option<TaskEvent>, StoreError> {
    let event = if matches!(t.status, TaskStatus::Open | TaskStatus::Claimed)
        && t.deadline_ms <= now_ms
    {
        TaskEvent::Deadline
    } else if t.status == TaskStatus::Claimed && t.claim_expiry_ms.is_some_and(|e| e <= now_ms) {
        TaskEvent::LeaseLapsed
    } else {
        return Ok(None);
    };
    Ok(apply(tx, t, event, now_ms).await?.ok().map(|()| event))
}

pub(super) fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: reason.to_string(),
    }
}
