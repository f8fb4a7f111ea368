//! The engine's settling half: an evaluation (status, the sealed `task_settlement`
//! receipt, and for a pass the credit after anti-cheat and the worker's `rewards_pending`), a
//! dispute, its resolution, and the sweeper's pass over passed deadlines, lapsed leases and
//! evaluator timeouts. Each is one store transaction through [`MarketTx`].

use futures::FutureExt as _;

use super::common::{
    DisputeArgs, EvaluateArgs, Outcome, Refusal, ResolveArgs, SweepReport, TaskError, apply,
    corrupt, transact,
};
use crate::domain::{Amount, Evaluation, ReceiptHash, ReceiptId, Runtime, TaskEvent, TaskStatus};
use crate::orchestrator::market::anti_cheat::{self, Evidence};
use crate::orchestrator::market::settle::{self, ReceiptFacts, SettlePolicy, Split};
use crate::orchestrator::store::{
    DueTasks, EvaluationRecord, MarketTx, ResolutionRecord, StoreError, SubmissionRow, TaskRow,
    TaskStore, secs,
};
use crate::wire::Credit;

async fn reload(tx: &mut dyn MarketTx, sub: &SubmissionRow) -> Result<SubmissionRow, StoreError> {
    tx.submission(&sub.submission_id)
        .await?
        .ok_or_else(|| corrupt("submission", "vanished in its transaction"))
}

async fn task_of(tx: &mut dyn MarketTx, sub: &SubmissionRow) -> Result<TaskRow, StoreError> {
    tx.task(&sub.task_id)
        .await?
        .ok_or_else(|| corrupt("submission", "its task is not stored"))
}

/// Seals the settlement receipt and, when `passes`, writes the credit (after anti-cheat) and
/// adds its net to the worker's pending rewards (checked: an overflow is refused as corrupt
/// data, never wrapped). Returns the receipt's id.
async fn settle_submission(
    tx: &mut dyn MarketTx,
    t: &TaskRow,
    sub: &SubmissionRow,
    passes: bool,
    attestation: ReceiptHash,
    now_ms: u64,
    policy: &SettlePolicy,
) -> Result<ReceiptId, StoreError> {
    let (wallet, runtime) = tx
        .payee(&sub.worker_id)
        .await?
        .ok_or_else(|| corrupt("submission", "its worker is not registered"))?;
    let elapsed_ms = sub.submitted_ms.saturating_sub(sub.claimed_ms);
    let unpaid = passes
        .then(|| {
            anti_cheat::unpaid(&Evidence {
                runtime,
                output_format: sub.output_format,
                output: &sub.output,
                description: &t.description,
                input: t.input.as_ref(),
                usage: sub.usage,
                elapsed_ms,
                max_tokens_per_s: policy.max_tokens_per_s,
            })
        })
        .flatten();
    let split = if passes {
        settle::split(t.reward, policy.protocol_fee_bps, unpaid)
    } else {
        Split {
            gross: Amount::ZERO,
            fee: Amount::ZERO,
            net: Amount::ZERO,
        }
    };
    let receipt = settle::receipt(ReceiptFacts {
        issued_at: secs(now_ms),
        worker_id: sub.worker_id.clone(),
        wallet,
        model: t.input.as_ref().map(|i| i.model.clone()),
        task_id: t.task_id.clone(),
        submission_id: sub.submission_id.clone(),
        output_hash: sub.output_hash,
        usage: sub.usage,
        duration_ms: elapsed_ms,
        simulated: runtime == Runtime::Echo,
        reward: split.net,
        asset: t.asset.clone(),
        attestation_hash: attestation,
    })
    .map_err(|e| corrupt("receipt", e))?;
    tx.insert_receipt(&receipt).await?;
    let receipt_id = receipt.receipt.receipt_id.clone();
    if passes {
        let credit = Credit {
            submission_id: Some(sub.submission_id.clone()),
            task_id: Some(t.task_id.clone()),
            job_id: None,
            worker_id: sub.worker_id.clone(),
            wallet,
            gross: split.gross,
            fee: split.fee,
            net: split.net,
            asset: t.asset.clone(),
            asset_decimals: None,
            unpaid,
            status: "pending".into(),
            created_at: secs(now_ms),
            receipt_id: receipt_id.clone(),
            receipt_hash: receipt.receipt_hash,
            batch_id: None,
        };
        tx.insert_credit(&credit, now_ms).await?;
        if !split.net.is_zero() {
            let pending = tx
                .pending_rewards(&sub.worker_id)
                .await?
                .ok_or_else(|| corrupt("credit", "the credited worker is not registered"))?;
            let total = pending
                .checked_add(split.net)
                .ok_or_else(|| corrupt("rewards_pending", "overflow"))?;
            tx.set_pending_rewards(&sub.worker_id, total).await?;
        }
    }
    Ok(receipt_id)
}

/// Applies `evaluation` to a submitted task: pass or reject through `transition`, settle,
/// record. Refused with `AlreadyEvaluated` if the task is no longer `submitted`. Returns
/// whether it passed.
async fn apply_evaluation(
    tx: &mut dyn MarketTx,
    sub: &SubmissionRow,
    evaluation: &Evaluation,
    auto: bool,
    now_ms: u64,
    policy: &SettlePolicy,
) -> Outcome<bool> {
    if sub.evaluated_ms.is_some() {
        return Ok(Err(Refusal::AlreadyEvaluated));
    }
    let mut t = task_of(tx, sub).await?;
    let passes = evaluation.passes(t.pass_threshold);
    let event = if passes {
        TaskEvent::Pass
    } else {
        TaskEvent::Reject
    };
    if apply(tx, &mut t, event, now_ms).await?.is_err() {
        return Ok(Err(Refusal::AlreadyEvaluated));
    }
    let attestation = evaluation
        .attestation_hash()
        .map_err(|e| corrupt("evaluation", e))?;
    let receipt_id = settle_submission(tx, &t, sub, passes, attestation, now_ms, policy).await?;
    let dispute_deadline_ms =
        (!passes).then(|| now_ms.saturating_add(policy.dispute_window_s.saturating_mul(1000)));
    tx.record_evaluation(&EvaluationRecord {
        submission_id: sub.submission_id.clone(),
        evaluation: evaluation.clone(),
        attestation_hash: attestation,
        evaluated_ms: now_ms,
        auto,
        dispute_deadline_ms,
        receipt_id,
    })
    .await?;
    Ok(Ok(passes))
}

/// Evaluates a submitted output and settles it, in one transaction.
pub async fn evaluate(store: &dyn TaskStore, a: EvaluateArgs) -> Result<SubmissionRow, TaskError> {
    let outcome = transact(store, move |tx| {
        async move {
            let Some(sub) = tx.submission(&a.submission_id).await? else {
                return Ok(Err(Refusal::SubmissionNotFound));
            };
            if a.evaluation.metric.is_some() && task_of(tx, &sub).await?.metric.is_none() {
                return Ok(Err(Refusal::NoMetric));
            }
            if let Err(refusal) =
                apply_evaluation(tx, &sub, &a.evaluation, a.auto, a.now_ms, &a.policy).await?
            {
                return Ok(Err(refusal));
            }
            reload(tx, &sub).await.map(Ok)
        }
        .boxed()
    })
    .await?;
    outcome.map_err(TaskError::Refused)
}

/// Disputes a rejection within its window (once, by the worker who submitted it).
pub async fn dispute(store: &dyn TaskStore, a: DisputeArgs) -> Result<SubmissionRow, TaskError> {
    let outcome = transact(store, move |tx| dispute_in(tx, a).boxed()).await?;
    outcome.map_err(TaskError::Refused)
}

async fn dispute_in(tx: &mut dyn MarketTx, a: DisputeArgs) -> Outcome<SubmissionRow> {
    let Some(sub) = tx.submission(&a.submission_id).await? else {
        return Ok(Err(Refusal::SubmissionNotFound));
    };
    if sub.worker_id != a.worker_id {
        return Ok(Err(Refusal::NotDisputable(
            "only the worker who submitted it may dispute it",
        )));
    }
    if sub.dispute.is_some() {
        return Ok(Err(Refusal::NotDisputable("it was already disputed once")));
    }
    if sub.status != TaskStatus::Rejected {
        return Ok(Err(Refusal::NotDisputable(
            "only a rejected submission can be disputed",
        )));
    }
    if sub.dispute_deadline_ms.is_none_or(|d| a.now_ms >= d) {
        return Ok(Err(Refusal::DisputeWindowClosed));
    }
    let mut t = task_of(tx, &sub).await?;
    if apply(tx, &mut t, TaskEvent::Dispute, a.now_ms)
        .await?
        .is_err()
    {
        return Ok(Err(Refusal::NotDisputable(
            "only a rejected submission can be disputed",
        )));
    }
    tx.record_dispute(&sub.submission_id, &a.reason, a.now_ms)
        .await?;
    reload(tx, &sub).await.map(Ok)
}

/// Resolves a dispute (for the worker: credited, with a new settlement receipt).
pub async fn resolve(store: &dyn TaskStore, a: ResolveArgs) -> Result<SubmissionRow, TaskError> {
    let outcome = transact(store, move |tx| resolve_in(tx, a).boxed()).await?;
    outcome.map_err(TaskError::Refused)
}

async fn resolve_in(tx: &mut dyn MarketTx, a: ResolveArgs) -> Outcome<SubmissionRow> {
    let Some(sub) = tx.submission(&a.submission_id).await? else {
        return Ok(Err(Refusal::SubmissionNotFound));
    };
    if sub.status != TaskStatus::Disputed {
        return Ok(Err(Refusal::NotDisputed));
    }
    let mut t = task_of(tx, &sub).await?;
    let event = if a.for_worker {
        TaskEvent::ResolveForWorker
    } else {
        TaskEvent::ResolveAgainstWorker
    };
    if apply(tx, &mut t, event, a.now_ms).await?.is_err() {
        return Ok(Err(Refusal::NotDisputed));
    }
    let receipt_id = if a.for_worker {
        let attestation = sub
            .attestation_hash
            .ok_or_else(|| corrupt("submission", "disputed without an evaluation"))?;
        Some(settle_submission(tx, &t, &sub, true, attestation, a.now_ms, &a.policy).await?)
    } else {
        None
    };
    tx.record_resolution(&ResolutionRecord {
        submission_id: sub.submission_id.clone(),
        resolution: t.status,
        note: a.note.clone(),
        resolved_ms: a.now_ms,
        receipt_id,
    })
    .await?;
    reload(tx, &sub).await.map(Ok)
}

/// One pass of the sweeper, in one transaction: deadlines first (so a lapsed claim past its
/// deadline expires rather than reopening), then lapsed leases, then evaluator timeouts; at
/// most `limit` of each, each through `transition`.
pub async fn sweep(
    store: &dyn TaskStore,
    now_ms: u64,
    policy: SettlePolicy,
    limit: usize,
) -> Result<SweepReport, StoreError> {
    transact(store, move |tx| sweep_in(tx, now_ms, policy, limit).boxed()).await
}

async fn sweep_in(
    tx: &mut dyn MarketTx,
    now_ms: u64,
    policy: SettlePolicy,
    limit: usize,
) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    for id in tx.due_tasks(DueTasks::Deadline, now_ms, limit).await? {
        if let Some(mut t) = tx.task(&id).await?
            && apply(tx, &mut t, TaskEvent::Deadline, now_ms)
                .await?
                .is_ok()
        {
            report.expired += 1;
        }
    }
    for id in tx.due_tasks(DueTasks::Lease, now_ms, limit).await? {
        if let Some(mut t) = tx.task(&id).await?
            && apply(tx, &mut t, TaskEvent::LeaseLapsed, now_ms)
                .await?
                .is_ok()
        {
            if t.status == TaskStatus::Abandoned {
                report.abandoned += 1;
            } else {
                report.reopened += 1;
            }
        }
    }
    for id in tx.due_evaluations(now_ms, limit).await? {
        let Some(sub) = tx.submission(&id).await? else {
            continue;
        };
        let threshold = task_of(tx, &sub).await?.pass_threshold;
        let evaluation = settle::timeout_evaluation(policy.evaluator_timeout_policy, threshold);
        match apply_evaluation(tx, &sub, &evaluation, true, now_ms, &policy).await? {
            Ok(true) => {
                report.auto_completed += 1;
                if let Some(c) = tx.submission(&id).await?.and_then(|s| s.credit) {
                    report.credited = report
                        .credited
                        .checked_add(c.net)
                        .unwrap_or(report.credited);
                }
            }
            Ok(false) => report.auto_rejected += 1,
            Err(refusal) => {
                tracing::warn!(submission_id = %id, ?refusal, "an unevaluated submission's task is not submitted");
            }
        }
    }
    Ok(report)
}
