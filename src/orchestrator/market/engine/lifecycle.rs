//! Claim, release and submit: the worker's side of a task's lifecycle, each one store
//! transaction through [`MarketTx`].

use futures::FutureExt as _;

use super::common::{
    ClaimArgs, Claimed, NewSubmission, Outcome, Refusal, Submitted, TaskError, apply, catch_up,
    change_grouped, corrupt,
};
use crate::domain::{TaskEvent, TaskId, TaskStatus, WorkerId};
use crate::orchestrator::store::{
    ClaimEnd, GroupLocks, MarketTx, SubmissionInsert, TaskRow, TaskStore,
};

/// Claims an open task (a compare-and-swap: of N concurrent claimers exactly one wins),
/// first applying a lapsed lease or a passed deadline. Claiming a task the worker already
/// holds returns its claim.
pub async fn claim(store: &dyn TaskStore, args: ClaimArgs) -> Result<Claimed, TaskError> {
    let locks = GroupLocks {
        task: args.task_id.clone(),
        // The worker's row is locked to count its other claims (`live_claim_of`).
        worker: (!args.multi_task).then(|| args.worker_id.clone()),
    };
    change_grouped(store, locks, move |tx| claim_in(tx, args.clone()).boxed()).await
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
    let missing = a
        .capabilities
        .missing(&t.required_capabilities, t.min_vram_mib);
    if !missing.is_empty() {
        return Ok(Err(Refusal::CapabilityMismatch(missing)));
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
    let locks = GroupLocks {
        task: task.clone(),
        worker: None,
    };
    change_grouped(store, locks, move |tx| {
        release_in(tx, task.clone(), worker.clone(), now_ms).boxed()
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
    let locks = GroupLocks {
        task: sub.task_id.clone(),
        worker: None,
    };
    change_grouped(store, locks, move |tx| submit_in(tx, sub.clone()).boxed()).await
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
        metric: s.metric,
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
