//! The task market's rows in `SQLite`: reading and writing `tasks`, `claims`, `submissions`
//! and `credits` rows. No rule lives here: the market engine decides, `tasks` maps its
//! [`crate::orchestrator::store::MarketTx`] calls onto these functions.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::to_sql_int;
use crate::domain::{Amount, JobId, SubmissionId, TaskId, WorkerId};
use crate::orchestrator::store::rows::{
    self, CREDIT_COLUMNS, SUBMISSION_COLUMNS, TASK_COLUMNS, corrupt,
};
use crate::orchestrator::store::settlement::CREDITS_WITH_BATCH;
use crate::orchestrator::store::{ClaimEnd, StoreError, SubmissionRow, TaskRow};
use crate::wire::Credit;

pub use crate::orchestrator::store::rows::{reward_key, to_json};

/// A task row through the shared decoder.
pub fn row_to_task(row: &Row<'_>) -> Result<TaskRow, StoreError> {
    rows::task(row)
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
         pass_threshold, input, status, attempts, created_ms, updated_ms, client_key_sha256, \
         min_vram_mib, family, metric) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
         ?12, ?13, ?14, ?15, ?16, ?17, ?17, ?18, ?19, ?20, ?21)",
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
        t.min_vram_mib.map(to_sql_int),
        t.family,
        t.metric
            .as_ref()
            .map(|m| to_json("metric", m))
            .transpose()?,
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
    let Some(mut sub) = rows.next()?.map(rows::submission).transpose()? else {
        return Ok(None);
    };
    sub.credit = load_credit(conn, id)?;
    Ok(Some(sub))
}

pub fn load_credit(conn: &Connection, id: &SubmissionId) -> Result<Option<Credit>, StoreError> {
    let sql =
        format!("SELECT {CREDIT_COLUMNS} FROM {CREDITS_WITH_BATCH} WHERE c.submission_id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![id.as_str()])?;
    rows.next()?.map(rows::credit).transpose()
}

/// A worker's credits, newest first.
pub fn load_credits(
    conn: &Connection,
    worker: &WorkerId,
    limit: usize,
) -> Result<Vec<Credit>, StoreError> {
    let sql = format!(
        "SELECT {CREDIT_COLUMNS} FROM {CREDITS_WITH_BATCH} WHERE c.worker_id = ?1 \
         ORDER BY c.created_ms DESC, c.seq DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![
        worker.as_str(),
        i64::try_from(limit).unwrap_or(i64::MAX)
    ])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(rows::credit(row)?);
    }
    Ok(out)
}

/// Writes a credit (once per submission or gateway job).
pub fn insert_credit(conn: &Connection, c: &Credit, created_ms: u64) -> Result<(), StoreError> {
    let unpaid = rows::unpaid_text(c.unpaid)?;
    conn.prepare_cached(
        // `seq`: one past the largest, on the single writer, so it follows commit order.
        "INSERT INTO credits (submission_id, task_id, worker_id, wallet, gross, fee, net, asset, \
         unpaid, created_ms, receipt_id, receipt_hash, job_id, seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
         (SELECT coalesce(max(seq), 0) + 1 FROM credits))",
    )?
    .execute(params![
        c.submission_id.as_ref().map(SubmissionId::as_str),
        c.task_id.as_ref().map(TaskId::as_str),
        c.worker_id.as_str(),
        c.wallet.checksummed(),
        c.gross.to_string(),
        c.fee.to_string(),
        c.net.to_string(),
        c.asset,
        unpaid,
        to_sql_int(created_ms),
        c.receipt_id.as_str(),
        c.receipt_hash.to_string(),
        c.job_id.as_ref().map(JobId::as_str),
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
        .map(|c| Amount::parse(&c).map_err(|e| corrupt("rewards_pending", e)))
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
