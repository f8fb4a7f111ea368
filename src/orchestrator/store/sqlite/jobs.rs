//! The `jobs` and `receipts` tables: a finished job, its receipt and its worker's counter are
//! written in one transaction, once per `job_id`. The statements of that path run once per
//! gateway job, so they come from the connection's statement cache (parsed once).

use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};

use super::keys::SQL_ADDABLE;
use super::{SqliteStore, to_sql_int};
use crate::domain::{Amount, HashedReceipt, JobId, ReceiptHash, ReceiptId, WorkerId};
use crate::orchestrator::store::rows::{corrupt, receipt_row};
use crate::orchestrator::store::{
    JobOutcome, JobRecord, JobStatus, JobStore, ListedReceipt, ReceiptQuery, Recorded, StoreError,
    utc_day,
};
use crate::wire::Credit;

fn corrupt_status() -> StoreError {
    StoreError::Corrupt {
        what: "job status",
        reason: "unknown status".into(),
    }
}

fn status_of(tx: &Connection, id: &str) -> Result<Option<JobStatus>, StoreError> {
    let status: Option<String> = tx
        .prepare_cached("SELECT status FROM jobs WHERE job_id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?;
    status
        .map(|s| JobStatus::parse(&s).ok_or_else(corrupt_status))
        .transpose()
}

pub(super) fn insert_receipt(tx: &Connection, receipt: &HashedReceipt) -> Result<(), StoreError> {
    let body = serde_json::to_string(receipt).map_err(|e| StoreError::Corrupt {
        what: "receipt",
        reason: e.to_string(),
    })?;
    let r = &receipt.receipt;
    tx.prepare_cached(
        "INSERT INTO receipts (receipt_id, receipt_hash, kind, worker_id, job_id, issued_at, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        r.receipt_id.as_str(),
        receipt.receipt_hash.to_string(),
        r.kind.as_str(),
        r.worker_id.as_str(),
        r.job_id.as_ref().map(JobId::as_str),
        to_sql_int(r.issued_at),
        body
    ])?;
    Ok(())
}

/// Writes a paying job's credit, and counts the job completed with its net added to the
/// worker's `rewards_pending`. Once per paid job, so the common case is one statement: below
/// [`SQL_ADDABLE`] both amounts and their sum fit SQLite's 64-bit integers and are added in
/// SQL; otherwise the decimal string is read and written back (the single writer holds it).
fn credit_worker(tx: &Connection, credit: &Credit, finished_at: u64) -> Result<(), StoreError> {
    super::tasks_rows::insert_credit(tx, credit, finished_at.saturating_mul(1000))?;
    let worker = credit.worker_id.as_str();
    if let Ok(net) = i64::try_from(credit.net.atomic())
        && credit.net.atomic() < SQL_ADDABLE
    {
        let n = tx
            .prepare_cached(
                "UPDATE workers SET jobs_completed = jobs_completed + 1, rewards_pending = \
                 CAST(CAST(rewards_pending AS INTEGER) + ?2 AS TEXT) \
                 WHERE worker_id = ?1 AND length(rewards_pending) <= 18 \
                 AND rewards_pending NOT GLOB '*[^0-9]*'",
            )?
            .execute(params![worker, net])?;
        if n == 1 {
            return Ok(());
        }
    }
    let pending = super::tasks_rows::pending_rewards(tx, &credit.worker_id)?
        .ok_or_else(|| corrupt("credit", "the credited worker is not registered"))?;
    let total = pending
        .checked_add(credit.net)
        .ok_or_else(|| corrupt("rewards_pending", "the sum overflows"))?;
    tx.prepare_cached(
        "UPDATE workers SET jobs_completed = jobs_completed + 1, rewards_pending = ?2 \
         WHERE worker_id = ?1",
    )?
    .execute(params![worker, total.to_string()])?;
    Ok(())
}

impl JobStore for SqliteStore {
    fn record_job(&self, job: JobRecord) -> BoxFuture<'_, Result<Recorded, StoreError>> {
        // The writer runs this closure atomically (its own savepoint, or the whole
        // transaction): no savepoint of its own.
        self.write(move |tx| {
            if let Some(status) = status_of(tx, job.job_id.as_str())? {
                return Ok(Recorded::Already(status));
            }
            let served = job.outcome.served();
            let (error_code, receipt_id, counter) = match &job.outcome {
                JobOutcome::Completed(receipt) => {
                    insert_receipt(tx, receipt)?;
                    if let (Some(key), Some((used, charged))) =
                        (&job.client_key, job.outcome.billed())
                    {
                        super::keys::add_usage(tx, key, utc_day(job.finished_at), used, charged)?;
                    }
                    let counter = if let Some(credit) = job.outcome.credit(job.finished_at)? {
                        credit_worker(tx, &credit, job.finished_at)?;
                        None
                    } else {
                        Some("UPDATE workers SET jobs_completed = jobs_completed + 1 WHERE worker_id = ?1")
                    };
                    (
                        None,
                        Some(receipt.receipt.receipt_id.as_str().to_owned()),
                        counter,
                    )
                }
                JobOutcome::Failed(code) => (
                    Some(code.as_str()),
                    None,
                    Some("UPDATE workers SET jobs_failed = jobs_failed + 1 WHERE worker_id = ?1"),
                ),
                JobOutcome::Cancelled => (None, None, None),
            };
            tx.prepare_cached(
                "INSERT INTO jobs (job_id, worker_id, model, status, error_code, receipt_id, \
                 started_at, finished_at, prompt_tokens, completion_tokens, ttft_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                job.job_id.as_str(),
                job.worker_id.as_str(),
                job.model,
                job.outcome.status().as_str(),
                error_code,
                receipt_id,
                to_sql_int(job.started_at),
                to_sql_int(job.finished_at),
                served.map(|u| to_sql_int(u.prompt_tokens)),
                served.map(|u| to_sql_int(u.completion_tokens)),
                job.ttft_ms.map(to_sql_int),
            ])?;
            if let Some(sql) = counter {
                tx.prepare_cached(sql)?
                    .execute(params![job.worker_id.as_str()])?;
            }
            if let (Some(key), Some(used)) = (&job.client_key, job.partial_usage) {
                super::keys::add_usage(tx, key, utc_day(job.finished_at), used, Amount::ZERO)?;
            }
            Ok(Recorded::New)
        })
    }

    fn job_status(&self, id: JobId) -> BoxFuture<'_, Result<Option<JobStatus>, StoreError>> {
        self.read(move |conn| {
            let status: Option<String> = conn
                .query_row(
                    "SELECT status FROM jobs WHERE job_id = ?1",
                    params![id.as_str()],
                    |r| r.get(0),
                )
                .optional()?;
            status
                .map(|s| JobStatus::parse(&s).ok_or_else(corrupt_status))
                .transpose()
        })
    }

    fn receipts(&self, q: ReceiptQuery) -> BoxFuture<'_, Result<Vec<ListedReceipt>, StoreError>> {
        self.read(move |conn| {
            let (after_t, after_id) = q.after.as_ref().map_or((-1, String::new()), |(t, id)| {
                (to_sql_int(*t), id.as_str().to_owned())
            });
            let mut stmt = conn.prepare_cached(
                "SELECT issued_at, receipt_id, body FROM receipts \
                 WHERE issued_at >= ?1 AND (?2 IS NULL OR worker_id = ?2) \
                 AND (issued_at > ?3 OR (issued_at = ?3 AND receipt_id > ?4)) \
                 ORDER BY issued_at, receipt_id LIMIT ?5",
            )?;
            let mut rows = stmt.query(params![
                to_sql_int(q.since),
                q.worker.as_ref().map(WorkerId::as_str),
                after_t,
                after_id,
                i64::try_from(q.limit).unwrap_or(i64::MAX)
            ])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(receipt_row(row)?);
            }
            Ok(out)
        })
    }

    fn receipt(&self, id: ReceiptId) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT body FROM receipts WHERE receipt_id = ?1",
                    params![id.as_str()],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    fn receipt_by_hash(
        &self,
        hash: ReceiptHash,
    ) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT body FROM receipts WHERE receipt_hash = ?1",
                    params![hash.to_string()],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }
}
