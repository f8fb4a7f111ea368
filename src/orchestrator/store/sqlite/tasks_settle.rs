//! Settling submissions in `SQLite`, each in one transaction: an evaluation (status, credit,
//! the worker's `rewards_pending`, the sealed `task_settlement` receipt), a dispute, its
//! resolution, and the sweeper's pass over lapsed leases, passed deadlines and evaluator
//! timeouts.

use rusqlite::{Connection, OptionalExtension, params};

use super::jobs::insert_receipt;
use super::tasks::Outcome;
use super::tasks_rows::{add_pending, apply, insert_credit, load_submission, load_task, to_json};
use super::to_sql_int;
use crate::domain::{
    Amount, Evaluation, ReceiptHash, ReceiptId, Runtime, SubmissionId, TaskEvent, TaskId,
    TaskStatus, WalletAddress,
};
use crate::orchestrator::market::anti_cheat::{self, Evidence};
use crate::orchestrator::market::settle::{self, ReceiptFacts, SettlePolicy, Split};
use crate::orchestrator::store::{
    DisputeArgs, EvaluateArgs, Refusal, ResolveArgs, StoreError, SubmissionRow, SweepReport,
    TaskRow, secs,
};
use crate::wire::Credit;

fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: reason.to_string(),
    }
}

fn reload(conn: &Connection, id: &SubmissionId) -> Result<SubmissionRow, StoreError> {
    load_submission(conn, id)?.ok_or_else(|| corrupt("submission", "vanished in its transaction"))
}

fn task_of(conn: &Connection, sub: &SubmissionRow) -> Result<TaskRow, StoreError> {
    load_task(conn, &sub.task_id)?.ok_or_else(|| corrupt("submission", "its task is not stored"))
}

/// The worker's wallet and runtime now.
fn worker_facts(
    conn: &Connection,
    sub: &SubmissionRow,
) -> Result<(WalletAddress, Runtime), StoreError> {
    let (wallet, runtime): (String, String) = conn
        .prepare_cached("SELECT wallet, runtime FROM workers WHERE worker_id = ?1")?
        .query_row(params![sub.worker_id.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?
        .ok_or_else(|| corrupt("submission", "its worker is not registered"))?;
    Ok((
        WalletAddress::parse(&wallet).map_err(|e| corrupt("wallet", e))?,
        runtime.parse().map_err(|e| corrupt("runtime", e))?,
    ))
}

/// Seals the settlement receipt and, when `passes`, writes the credit (after anti-cheat) and
/// adds its net to the worker's pending rewards. Returns the receipt's id.
fn settle_submission(
    conn: &Connection,
    t: &TaskRow,
    sub: &SubmissionRow,
    passes: bool,
    attestation: ReceiptHash,
    now_ms: u64,
    policy: &SettlePolicy,
) -> Result<ReceiptId, StoreError> {
    let (wallet, runtime) = worker_facts(conn, sub)?;
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
    insert_receipt(conn, &receipt)?;
    let receipt_id = receipt.receipt.receipt_id.clone();
    if passes {
        let credit = Credit {
            submission_id: sub.submission_id.clone(),
            task_id: t.task_id.clone(),
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
        };
        insert_credit(conn, &credit, now_ms)?;
        add_pending(conn, &sub.worker_id, split.net)?;
    }
    Ok(receipt_id)
}

/// Applies `evaluation` to a submitted task: pass or reject through `transition`, settle,
/// record. Refused with `AlreadyEvaluated` if the task is no longer `submitted`.
fn apply_evaluation(
    conn: &Connection,
    sub: &SubmissionRow,
    evaluation: &Evaluation,
    auto: bool,
    now_ms: u64,
    policy: &SettlePolicy,
) -> Outcome<bool> {
    if sub.evaluated_ms.is_some() {
        return Ok(Err(Refusal::AlreadyEvaluated));
    }
    let mut t = task_of(conn, sub)?;
    let passes = evaluation.passes(t.pass_threshold);
    let event = if passes {
        TaskEvent::Pass
    } else {
        TaskEvent::Reject
    };
    if apply(conn, &mut t, event, now_ms)?.is_err() {
        return Ok(Err(Refusal::AlreadyEvaluated));
    }
    let attestation = evaluation
        .attestation_hash()
        .map_err(|e| corrupt("evaluation", e))?;
    let receipt_id = settle_submission(conn, &t, sub, passes, attestation, now_ms, policy)?;
    let dispute_deadline =
        (!passes).then(|| now_ms.saturating_add(policy.dispute_window_s.saturating_mul(1000)));
    conn.prepare_cached(
        "UPDATE submissions SET evaluation = ?2, attestation_hash = ?3, evaluated_ms = ?4, \
         auto_evaluated = ?5, dispute_deadline_ms = ?6, receipt_id = ?7 WHERE submission_id = ?1",
    )?
    .execute(params![
        sub.submission_id.as_str(),
        to_json("evaluation", evaluation)?,
        attestation.to_string(),
        to_sql_int(now_ms),
        auto,
        dispute_deadline.map(to_sql_int),
        receipt_id.as_str(),
    ])?;
    Ok(Ok(passes))
}

pub fn evaluate(conn: &mut Connection, a: &EvaluateArgs) -> Outcome<SubmissionRow> {
    let tx = conn.savepoint()?;
    let Some(sub) = load_submission(&tx, &a.submission_id)? else {
        return Ok(Err(Refusal::SubmissionNotFound));
    };
    if let Err(refusal) = apply_evaluation(&tx, &sub, &a.evaluation, a.auto, a.now_ms, &a.policy)? {
        return Ok(Err(refusal));
    }
    let sub = reload(&tx, &a.submission_id)?;
    tx.commit()?;
    Ok(Ok(sub))
}

pub fn dispute(conn: &mut Connection, a: &DisputeArgs) -> Outcome<SubmissionRow> {
    let tx = conn.savepoint()?;
    let Some(sub) = load_submission(&tx, &a.submission_id)? else {
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
    let mut t = task_of(&tx, &sub)?;
    if apply(&tx, &mut t, TaskEvent::Dispute, a.now_ms)?.is_err() {
        return Ok(Err(Refusal::NotDisputable(
            "only a rejected submission can be disputed",
        )));
    }
    tx.prepare_cached(
        "UPDATE submissions SET dispute_reason = ?2, disputed_ms = ?3 WHERE submission_id = ?1",
    )?
    .execute(params![
        sub.submission_id.as_str(),
        a.reason,
        to_sql_int(a.now_ms)
    ])?;
    let sub = reload(&tx, &a.submission_id)?;
    tx.commit()?;
    Ok(Ok(sub))
}

pub fn resolve(conn: &mut Connection, a: &ResolveArgs) -> Outcome<SubmissionRow> {
    let tx = conn.savepoint()?;
    let Some(sub) = load_submission(&tx, &a.submission_id)? else {
        return Ok(Err(Refusal::SubmissionNotFound));
    };
    if sub.status != TaskStatus::Disputed {
        return Ok(Err(Refusal::NotDisputed));
    }
    let mut t = task_of(&tx, &sub)?;
    let event = if a.for_worker {
        TaskEvent::ResolveForWorker
    } else {
        TaskEvent::ResolveAgainstWorker
    };
    if apply(&tx, &mut t, event, a.now_ms)?.is_err() {
        return Ok(Err(Refusal::NotDisputed));
    }
    if a.for_worker {
        let attestation = sub
            .attestation_hash
            .ok_or_else(|| corrupt("submission", "disputed without an evaluation"))?;
        let receipt_id = settle_submission(&tx, &t, &sub, true, attestation, a.now_ms, &a.policy)?;
        tx.prepare_cached("UPDATE submissions SET receipt_id = ?2 WHERE submission_id = ?1")?
            .execute(params![sub.submission_id.as_str(), receipt_id.as_str()])?;
    }
    tx.prepare_cached(
        "UPDATE submissions SET resolution = ?2, resolution_note = ?3, resolved_ms = ?4 \
         WHERE submission_id = ?1",
    )?
    .execute(params![
        sub.submission_id.as_str(),
        t.status.as_str(),
        a.note,
        to_sql_int(a.now_ms)
    ])?;
    let sub = reload(&tx, &a.submission_id)?;
    tx.commit()?;
    Ok(Ok(sub))
}

/// Ids (as text) the query returns for `now_ms` and `limit`.
fn due(conn: &Connection, sql: &str, now_ms: u64, limit: usize) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(
        params![to_sql_int(now_ms), i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| r.get::<_, String>(0),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn parse_task_id(s: &str) -> Result<TaskId, StoreError> {
    TaskId::parse(s).map_err(|e| corrupt("task id", e))
}

/// One pass of the sweeper: deadlines first (so a lapsed claim past its deadline expires
/// rather than reopening), then lapsed leases, then evaluator timeouts; at most `limit` each.
pub fn sweep(
    conn: &mut Connection,
    now_ms: u64,
    policy: SettlePolicy,
    limit: usize,
) -> Result<SweepReport, StoreError> {
    let tx = conn.savepoint()?;
    let mut report = SweepReport::default();
    let sql = "SELECT task_id FROM tasks WHERE status IN ('open', 'claimed') \
               AND deadline_ms <= ?1 LIMIT ?2";
    for id in due(&tx, sql, now_ms, limit)? {
        if let Some(mut t) = load_task(&tx, &parse_task_id(&id)?)?
            && apply(&tx, &mut t, TaskEvent::Deadline, now_ms)?.is_ok()
        {
            report.expired += 1;
        }
    }
    let sql = "SELECT task_id FROM tasks WHERE status = 'claimed' AND claim_expiry_ms <= ?1 \
               LIMIT ?2";
    for id in due(&tx, sql, now_ms, limit)? {
        if let Some(mut t) = load_task(&tx, &parse_task_id(&id)?)?
            && apply(&tx, &mut t, TaskEvent::LeaseLapsed, now_ms)?.is_ok()
        {
            if t.status == TaskStatus::Abandoned {
                report.abandoned += 1;
            } else {
                report.reopened += 1;
            }
        }
    }
    let sql = "SELECT submission_id FROM submissions WHERE evaluated_ms IS NULL \
               AND evaluation_deadline_ms <= ?1 LIMIT ?2";
    for id in due(&tx, sql, now_ms, limit)? {
        let id = SubmissionId::parse(&id).map_err(|e| corrupt("submission id", e))?;
        let Some(sub) = load_submission(&tx, &id)? else {
            continue;
        };
        let threshold = task_of(&tx, &sub)?.pass_threshold;
        let evaluation = settle::timeout_evaluation(policy.evaluator_timeout_policy, threshold);
        match apply_evaluation(&tx, &sub, &evaluation, true, now_ms, &policy)? {
            Ok(true) => report.auto_completed += 1,
            Ok(false) => report.auto_rejected += 1,
            Err(refusal) => {
                tracing::warn!(submission_id = %id, ?refusal, "an unevaluated submission's task is not submitted");
            }
        }
    }
    tx.commit()?;
    Ok(report)
}
