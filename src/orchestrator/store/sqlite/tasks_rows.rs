//! The task market's rows in `SQLite`: reading and writing `tasks`, `claims`, `submissions`
//! and `credits` rows. No rule lives here: the market engine decides, `tasks` maps its
//! [`crate::orchestrator::store::MarketTx`] calls onto these functions.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{from_sql_int, to_sql_int};
use crate::domain::{
    Amount, OutputHash, ReceiptHash, ReceiptId, SubmissionId, TaskId, TaskStatus, WalletAddress,
    WorkerId,
};
use crate::orchestrator::store::{ClaimEnd, KeySha256, StoreError, SubmissionRow, TaskRow};
use crate::wire::{Credit, Dispute, Unpaid};

pub const TASK_COLUMNS: &str = "task_id, client, description, criteria, required_capabilities, \
     reward, asset, deadline_ms, output_format, claim_ttl_s, evaluator, pass_threshold, input, \
     status, attempts, created_ms, claimed_by, claimed_ms, claim_expiry_ms, submission_id, \
     client_key_sha256";

/// The reward as a 40-digit, zero-padded decimal: TEXT order is numeric order.
pub fn reward_key(a: Amount) -> String {
    format!("{:040}", a.atomic())
}

pub fn to_json<T: Serialize>(what: &'static str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

fn from_json<T: DeserializeOwned>(what: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

fn parse<T, E: std::fmt::Display>(what: &'static str, r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| corrupt(what, e))
}

fn opt_ms(row: &Row<'_>, i: usize, what: &'static str) -> Result<Option<u64>, StoreError> {
    row.get::<_, Option<i64>>(i)?
        .map(|v| from_sql_int(v, what))
        .transpose()
}

fn ms(row: &Row<'_>, i: usize, what: &'static str) -> Result<u64, StoreError> {
    from_sql_int(row.get(i)?, what)
}

pub fn row_to_task(row: &Row<'_>) -> Result<TaskRow, StoreError> {
    let text = |i: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(i)?) };
    let input: Option<String> = row.get(12)?;
    let claimed_by: Option<String> = row.get(16)?;
    let submission: Option<String> = row.get(19)?;
    let client_key: Option<Vec<u8>> = row.get(20)?;
    Ok(TaskRow {
        task_id: parse("task id", TaskId::parse(&text(0)?))?,
        client: text(1)?,
        description: text(2)?,
        criteria: from_json("criteria", &text(3)?)?,
        required_capabilities: from_json("capabilities", &text(4)?)?,
        reward: parse("reward", Amount::parse(&text(5)?))?,
        asset: text(6)?,
        deadline_ms: ms(row, 7, "deadline")?,
        output_format: parse("output format", text(8)?.parse())?,
        claim_ttl_s: ms(row, 9, "claim_ttl_s")?,
        evaluator: text(10)?,
        pass_threshold: parse("pass threshold", u8::try_from(row.get::<_, i64>(11)?))?,
        input: input.map(|s| from_json("input", &s)).transpose()?,
        status: parse("task status", text(13)?.parse())?,
        attempts: parse("attempts", u32::try_from(row.get::<_, i64>(14)?))?,
        created_ms: ms(row, 15, "created")?,
        claimed_by: claimed_by
            .map(|s| parse("worker id", WorkerId::parse(&s)))
            .transpose()?,
        claimed_ms: opt_ms(row, 17, "claimed")?,
        claim_expiry_ms: opt_ms(row, 18, "claim expiry")?,
        submission_id: submission
            .map(|s| parse("submission id", SubmissionId::parse(&s)))
            .transpose()?,
        client_key: client_key
            .map(|k| {
                <[u8; 32]>::try_from(k.as_slice())
                    .map(KeySha256)
                    .map_err(|e| corrupt("client key hash", e))
            })
            .transpose()?,
    })
}

pub fn load_task(conn: &Connection, id: &TaskId) -> Result<Option<TaskRow>, StoreError> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![id.as_str()])?;
    rows.next()?.map(row_to_task).transpose()
}

pub fn insert_task(conn: &Connection, t: &TaskRow) -> Result<(), StoreError> {
    let input = t.input.as_ref().map(|i| to_json("input", i)).transpose()?;
    conn.prepare_cached(
        "INSERT INTO tasks (task_id, client, description, criteria, required_capabilities, \
         reward, reward_key, asset, deadline_ms, output_format, claim_ttl_s, evaluator, \
         pass_threshold, input, status, attempts, created_ms, updated_ms, client_key_sha256) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17, \
         ?18)",
    )?
    .execute(params![
        t.task_id.as_str(),
        t.client,
        t.description,
        to_json("criteria", &t.criteria)?,
        to_json("capabilities", &t.required_capabilities)?,
        t.reward.to_string(),
        reward_key(t.reward),
        t.asset,
        to_sql_int(t.deadline_ms),
        t.output_format.as_str(),
        to_sql_int(t.claim_ttl_s),
        t.evaluator,
        i64::from(t.pass_threshold),
        input,
        t.status.as_str(),
        i64::from(t.attempts),
        to_sql_int(t.created_ms),
        t.client_key.as_ref().map(|k| k.0.to_vec()),
    ])?;
    Ok(())
}

/// Writes the task's mutable state (status, attempts, claim, submission).
pub fn write_state(conn: &Connection, t: &TaskRow, now_ms: u64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE tasks SET status = ?2, attempts = ?3, claimed_by = ?4, claimed_ms = ?5, \
         claim_expiry_ms = ?6, submission_id = ?7, updated_ms = ?8 WHERE task_id = ?1",
    )?
    .execute(params![
        t.task_id.as_str(),
        t.status.as_str(),
        i64::from(t.attempts),
        t.claimed_by.as_ref().map(WorkerId::as_str),
        t.claimed_ms.map(to_sql_int),
        t.claim_expiry_ms.map(to_sql_int),
        t.submission_id.as_ref().map(SubmissionId::as_str),
        to_sql_int(now_ms),
    ])?;
    Ok(())
}

/// Records a new claim in the history.
pub fn open_claim(conn: &Connection, t: &TaskRow) -> Result<(), StoreError> {
    let (Some(worker), Some(at), Some(expiry)) = (&t.claimed_by, t.claimed_ms, t.claim_expiry_ms)
    else {
        return Err(corrupt("claim", "a claimed task without its holder"));
    };
    conn.prepare_cached(
        "INSERT INTO claims (task_id, worker_id, attempt, claimed_ms, expiry_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        t.task_id.as_str(),
        worker.as_str(),
        i64::from(t.attempts),
        to_sql_int(at),
        to_sql_int(expiry)
    ])?;
    Ok(())
}

/// Ends the task's open claim in the history, if one is open.
pub fn close_claim(
    conn: &Connection,
    task: &TaskId,
    end: ClaimEnd,
    now_ms: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE claims SET ended_ms = ?2, outcome = ?3 WHERE claim_id = \
         (SELECT max(claim_id) FROM claims WHERE task_id = ?1 AND ended_ms IS NULL)",
    )?
    .execute(params![task.as_str(), to_sql_int(now_ms), end.as_str()])?;
    Ok(())
}

/// How `worker`'s latest claim on `task` ended (`None`: never claimed, or still open).
pub fn last_claim_end(
    conn: &Connection,
    task: &TaskId,
    worker: &WorkerId,
) -> Result<Option<ClaimEnd>, StoreError> {
    let outcome = conn
        .prepare_cached(
            "SELECT outcome FROM claims WHERE task_id = ?1 AND worker_id = ?2 \
             ORDER BY claim_id DESC LIMIT 1",
        )?
        .query_row(params![task.as_str(), worker.as_str()], |r| {
            r.get::<_, Option<String>>(0)
        })
        .optional()?
        .flatten();
    outcome
        .map(|o| ClaimEnd::parse(&o).ok_or_else(|| corrupt("claim outcome", o)))
        .transpose()
}

const SUBMISSION_COLUMNS: &str = "s.submission_id, s.task_id, s.worker_id, t.status, \
     t.output_format, s.output, s.output_hash, s.usage, s.duration_ms, s.claimed_ms, \
     s.submitted_ms, s.evaluation_deadline_ms, s.evaluation, s.attestation_hash, \
     s.evaluated_ms, s.auto_evaluated, s.dispute_deadline_ms, s.dispute_reason, s.disputed_ms, \
     s.resolution, s.resolution_note, s.resolved_ms, s.receipt_id, r.receipt_hash";

fn row_to_submission(row: &Row<'_>) -> Result<SubmissionRow, StoreError> {
    let text = |i: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(i)?) };
    let opt_text = |i: usize| -> Result<Option<String>, StoreError> { Ok(row.get(i)?) };
    let dispute = match opt_text(17)? {
        Some(reason) => Some(Dispute {
            reason,
            raised_at: opt_ms(row, 18, "disputed")?.map_or(0, crate::orchestrator::store::secs),
            resolution: opt_text(19)?
                .map(|s| parse("resolution", s.parse::<TaskStatus>()))
                .transpose()?,
            resolution_note: opt_text(20)?,
            resolved_at: opt_ms(row, 21, "resolved")?.map(crate::orchestrator::store::secs),
        }),
        None => None,
    };
    Ok(SubmissionRow {
        submission_id: parse("submission id", SubmissionId::parse(&text(0)?))?,
        task_id: parse("task id", TaskId::parse(&text(1)?))?,
        worker_id: parse("worker id", WorkerId::parse(&text(2)?))?,
        status: parse("task status", text(3)?.parse())?,
        output_format: parse("output format", text(4)?.parse())?,
        output: text(5)?,
        output_hash: parse("output hash", OutputHash::parse(&text(6)?))?,
        usage: opt_text(7)?.map(|u| from_json("usage", &u)).transpose()?,
        duration_ms: opt_ms(row, 8, "duration")?,
        claimed_ms: ms(row, 9, "claimed")?,
        submitted_ms: ms(row, 10, "submitted")?,
        evaluation_deadline_ms: ms(row, 11, "evaluation deadline")?,
        evaluation: opt_text(12)?
            .map(|e| from_json("evaluation", &e))
            .transpose()?,
        attestation_hash: opt_text(13)?
            .map(|h| parse("attestation hash", ReceiptHash::parse(&h)))
            .transpose()?,
        evaluated_ms: opt_ms(row, 14, "evaluated")?,
        auto_evaluated: row.get(15)?,
        dispute_deadline_ms: opt_ms(row, 16, "dispute deadline")?,
        dispute,
        credit: None,
        receipt_id: opt_text(22)?
            .map(|r| parse("receipt id", ReceiptId::parse(&r)))
            .transpose()?,
        receipt_hash: opt_text(23)?
            .map(|h| parse("receipt hash", ReceiptHash::parse(&h)))
            .transpose()?,
    })
}

/// A submission with its task's status and its credit, if any.
pub fn load_submission(
    conn: &Connection,
    id: &SubmissionId,
) -> Result<Option<SubmissionRow>, StoreError> {
    let sql = format!(
        "SELECT {SUBMISSION_COLUMNS} FROM submissions s JOIN tasks t ON t.task_id = s.task_id \
         LEFT JOIN receipts r ON r.receipt_id = s.receipt_id WHERE s.submission_id = ?1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![id.as_str()])?;
    let Some(mut sub) = rows.next()?.map(row_to_submission).transpose()? else {
        return Ok(None);
    };
    sub.credit = load_credit(conn, id)?;
    Ok(Some(sub))
}

const CREDIT_COLUMNS: &str = "submission_id, task_id, worker_id, wallet, gross, fee, net, asset, \
     unpaid, status, created_ms, receipt_id, receipt_hash";

fn row_to_credit(row: &Row<'_>) -> Result<Credit, StoreError> {
    let text = |i: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(i)?) };
    let amount =
        |i: usize| -> Result<Amount, StoreError> { parse("amount", Amount::parse(&text(i)?)) };
    let unpaid: Option<String> = row.get(8)?;
    Ok(Credit {
        submission_id: parse("submission id", SubmissionId::parse(&text(0)?))?,
        task_id: parse("task id", TaskId::parse(&text(1)?))?,
        worker_id: parse("worker id", WorkerId::parse(&text(2)?))?,
        wallet: parse("wallet", WalletAddress::parse(&text(3)?))?,
        gross: amount(4)?,
        fee: amount(5)?,
        net: amount(6)?,
        asset: text(7)?,
        asset_decimals: None,
        unpaid: unpaid
            .map(|u| from_json::<Unpaid>("unpaid", &format!("\"{u}\"")))
            .transpose()?,
        status: text(9)?,
        created_at: crate::orchestrator::store::secs(ms(row, 10, "credited")?),
        receipt_id: parse("receipt id", ReceiptId::parse(&text(11)?))?,
        receipt_hash: parse("receipt hash", ReceiptHash::parse(&text(12)?))?,
    })
}

pub fn load_credit(conn: &Connection, id: &SubmissionId) -> Result<Option<Credit>, StoreError> {
    let sql = format!("SELECT {CREDIT_COLUMNS} FROM credits WHERE submission_id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![id.as_str()])?;
    rows.next()?.map(row_to_credit).transpose()
}

/// A worker's credits, newest first.
pub fn load_credits(
    conn: &Connection,
    worker: &WorkerId,
    limit: usize,
) -> Result<Vec<Credit>, StoreError> {
    let sql = format!(
        "SELECT {CREDIT_COLUMNS} FROM credits WHERE worker_id = ?1 \
         ORDER BY created_ms DESC, submission_id DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        worker.as_str(),
        i64::try_from(limit).unwrap_or(i64::MAX)
    ])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(row_to_credit(row)?);
    }
    Ok(out)
}

/// Writes a credit (once per submission).
pub fn insert_credit(conn: &Connection, c: &Credit, created_ms: u64) -> Result<(), StoreError> {
    let unpaid = c
        .unpaid
        .map(|u| {
            serde_json::to_value(u)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .ok_or_else(|| corrupt("unpaid", "not a string"))
        })
        .transpose()?;
    conn.prepare_cached(
        "INSERT INTO credits (submission_id, task_id, worker_id, wallet, gross, fee, net, asset, \
         unpaid, status, created_ms, receipt_id, receipt_hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        c.submission_id.as_str(),
        c.task_id.as_str(),
        c.worker_id.as_str(),
        c.wallet.checksummed(),
        c.gross.to_string(),
        c.fee.to_string(),
        c.net.to_string(),
        c.asset,
        unpaid,
        c.status,
        to_sql_int(created_ms),
        c.receipt_id.as_str(),
        c.receipt_hash.to_string(),
    ])?;
    Ok(())
}

/// The worker's `rewards_pending` (`None`: not registered).
pub fn pending_rewards(conn: &Connection, worker: &WorkerId) -> Result<Option<Amount>, StoreError> {
    let current: Option<String> = conn
        .prepare_cached("SELECT rewards_pending FROM workers WHERE worker_id = ?1")?
        .query_row(params![worker.as_str()], |r| r.get(0))
        .optional()?;
    current
        .map(|c| parse("rewards_pending", Amount::parse(&c)))
        .transpose()
}

/// Sets the worker's `rewards_pending` (a decimal string).
pub fn set_pending_rewards(
    conn: &Connection,
    worker: &WorkerId,
    total: Amount,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE workers SET rewards_pending = ?2 WHERE worker_id = ?1")?
        .execute(params![worker.as_str(), total.to_string()])?;
    Ok(())
}
