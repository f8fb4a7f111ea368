//! The market engine: every decision of the task market's lifecycle (docs/TASK_MARKET.md):
//! claim, release and submit here; evaluate, dispute, resolve and the sweeper in
//! `engine_settle`. Each runs in one store transaction ([`TaskStore::transact`]) and reads
//! and writes rows only through [`MarketTx`], so every backend gets the same rules without
//! holding any: a backend maps rows, the engine decides.
//!
//! Invariants: a task moves only through [`transition`] ([`apply`]); what time has already
//! decided (a passed deadline, a lapsed lease) is applied first ([`catch_up`]) and kept even
//! when the change itself is refused; a refusal is an answer, not a failure, and commits what
//! was caught up; a [`StoreError`] rolls the whole transaction back.

use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt as _;
use futures::future::BoxFuture;

use crate::domain::{
    Evaluation, Forbidden, OutputHash, SubmissionId, TaskEvent, TaskId, TaskStatus, Usage,
    WorkerId, transition,
};
use crate::orchestrator::market::settle::SettlePolicy;
use crate::orchestrator::store::{
    ClaimEnd, MarketTx, StoreError, SubmissionInsert, SubmissionRow, TaskRow, TaskStore,
};
use crate::wire::Claim;

pub use super::engine_settle::{dispute, evaluate, resolve, sweep};

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

/// A change's result inside its transaction: refused, or done.
pub type Outcome<T> = Result<Result<T, Refusal>, StoreError>;

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

/// Runs `body` in one store transaction and returns what it decided, once committed.
pub(super) async fn transact<T, F>(store: &dyn TaskStore, body: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn MarketTx) -> BoxFuture<'t, Result<T, StoreError>>
        + Send
        + 'static,
{
    let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    store
        .transact(Box::new(move |tx: &mut dyn MarketTx| {
            async move {
                let value = body(tx).await?;
                *out.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
                Ok(())
            }
            .boxed()
        }))
        .await?;
    // The body stored its value before the commit; `transact` answered Ok, so it committed.
    let value = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    value
        .ok_or_else(|| StoreError::Backend("a market transaction ended without its outcome".into()))
}

/// [`transact`] for a change that may be refused.
async fn change<T, F>(store: &dyn TaskStore, body: F) -> Result<T, TaskError>
where
    T: Send + 'static,
    F: for<'t> FnOnce(&'t mut dyn MarketTx) -> BoxFuture<'t, Outcome<T>> + Send + 'static,
{
    transact(store, body).await?.map_err(TaskError::Refused)
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

/// Claims an open task (a compare-and-swap: of N concurrent claimers exactly one wins),
/// first applying a lapsed lease or a passed deadline. Claiming a task the worker already
/// holds returns its claim.
pub async fn claim(store: &dyn TaskStore, args: ClaimArgs) -> Result<Claimed, TaskError> {
    change(store, move |tx| claim_in(tx, args).boxed()).await
}

async fn claim_in(tx: &mut dyn MarketTx, a: ClaimArgs) -> Outcome<Claimed> {
    let Some(mut t) = tx.task(&a.task_id).await? else {
        return Ok(Err(Refusal::TaskNotFound));
    };
    catch_up(tx, &mut t, a.now_ms).await?;
    if t.status == TaskStatus::Claimed {
        if t.claimed_by.as_ref() == Some(&a.worker_id)
            && let Some(claim) = t.claim()
        {
            return Ok(Ok(Claimed { claim, new: false }));
        }
        return Ok(Err(Refusal::AlreadyClaimed));
    }
    if t.status != TaskStatus::Open {
        return Ok(Err(Refusal::TaskNotOpen(t.status)));
    }
    if !a.multi_task
        && let Some(other) = tx.live_claim_of(&a.worker_id, &t.task_id, a.now_ms).await?
    {
        return Ok(Err(Refusal::ActiveClaimExists(other)));
    }
    let lease_ms = t.claim_ttl_s.saturating_mul(1000);
    // Set the holder first: `apply` writes the whole state once the move is allowed.
    let mut next = t.clone();
    next.claimed_by = Some(a.worker_id.clone());
    next.claimed_ms = Some(a.now_ms);
    next.claim_expiry_ms = Some(a.now_ms.saturating_add(lease_ms));
    if let Err(f) = apply(tx, &mut next, TaskEvent::Claim, a.now_ms).await? {
        return Ok(Err(Refusal::TaskNotOpen(f.from)));
    }
    tx.open_claim(&next).await?;
    let claim = next
        .claim()
        .ok_or_else(|| corrupt("claim", "a claimed task without its holder"))?;
    Ok(Ok(Claimed { claim, new: true }))
}

/// Gives a held claim back (attempt + 1; the third → abandoned).
pub async fn release(
    store: &dyn TaskStore,
    task: TaskId,
    worker: WorkerId,
    now_ms: u64,
) -> Result<TaskRow, TaskError> {
    change(store, move |tx| {
        release_in(tx, task, worker, now_ms).boxed()
    })
    .await
}

async fn release_in(
    tx: &mut dyn MarketTx,
    task: TaskId,
    worker: WorkerId,
    now_ms: u64,
) -> Outcome<TaskRow> {
    let Some(mut t) = tx.task(&task).await? else {
        return Ok(Err(Refusal::TaskNotFound));
    };
    catch_up(tx, &mut t, now_ms).await?;
    if t.status != TaskStatus::Claimed || t.claimed_by.as_ref() != Some(&worker) {
        return Ok(Err(Refusal::NotClaimHolder));
    }
    Ok(match apply(tx, &mut t, TaskEvent::Release, now_ms).await? {
        Ok(()) => Ok(t),
        Err(_) => Err(Refusal::NotClaimHolder),
    })
}

/// Records the claim holder's output; idempotent on `(task_id, output_hash)`.
pub async fn submit(store: &dyn TaskStore, sub: NewSubmission) -> Result<Submitted, TaskError> {
    change(store, move |tx| submit_in(tx, sub).boxed()).await
}

async fn submit_in(tx: &mut dyn MarketTx, s: NewSubmission) -> Outcome<Submitted> {
    let Some(mut t) = tx.task(&s.task_id).await? else {
        return Ok(Err(Refusal::TaskNotFound));
    };
    // Already submitted: the same output again is the same submission.
    if let Some(existing) = &t.submission_id {
        let Some(sub) = tx.submission(existing).await? else {
            return Err(corrupt(
                "submission",
                "a task names a submission that is not stored",
            ));
        };
        return Ok(if sub.worker_id != s.worker_id {
            Err(Refusal::NotClaimHolder)
        } else if sub.output_hash == s.output_hash {
            Ok(Submitted {
                submission: sub,
                new: false,
            })
        } else {
            Err(Refusal::AlreadySubmitted(sub.submission_id))
        });
    }
    let caught = catch_up(tx, &mut t, s.now_ms).await?;
    let holds = t.status == TaskStatus::Claimed && t.claimed_by.as_ref() == Some(&s.worker_id);
    if !holds {
        let expired = match caught {
            Some(TaskEvent::Deadline) => Some(true),
            Some(_) => Some(false),
            None => match tx.last_claim_end(&s.task_id, &s.worker_id).await? {
                Some(ClaimEnd::Lapsed) => Some(false),
                Some(ClaimEnd::Expired) => Some(true),
                _ => None,
            },
        };
        // The lapse (or expiry) just applied is kept: a refusal commits.
        return Ok(Err(match expired {
            Some(deadline) => Refusal::ClaimExpired { deadline },
            None => Refusal::NotClaimHolder,
        }));
    }
    let claimed_ms = t.claimed_ms.unwrap_or(s.now_ms);
    t.submission_id = Some(s.submission_id.clone());
    if apply(tx, &mut t, TaskEvent::Submit, s.now_ms)
        .await?
        .is_err()
    {
        return Ok(Err(Refusal::NotClaimHolder));
    }
    tx.insert_submission(&SubmissionInsert {
        submission_id: s.submission_id.clone(),
        task_id: s.task_id.clone(),
        worker_id: s.worker_id.clone(),
        output: s.output,
        output_hash: s.output_hash,
        usage: s.usage,
        duration_ms: s.duration_ms,
        claimed_ms,
        submitted_ms: s.now_ms,
        evaluation_deadline_ms: s.now_ms.saturating_add(s.evaluation_timeout_ms),
    })
    .await?;
    let submission = tx
        .submission(&s.submission_id)
        .await?
        .ok_or_else(|| corrupt("submission", "the one just written cannot be read back"))?;
    Ok(Ok(Submitted {
        submission,
        new: true,
    }))
}
