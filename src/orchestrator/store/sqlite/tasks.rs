//! [`TaskStore`] for `SQLite`: reads on the reader connection, and [`TaskStore::transact`] on
//! the single writer, where the market engine's body runs against [`SqliteTx`], this
//! backend's [`MarketTx`] (plain row reads and writes in `tasks_rows`, `tasks_list` and
//! `jobs`). The writer runs one closure at a time inside its group-commit transaction, so a
//! market transaction is serializable by construction; its calls complete synchronously, so
//! the body is driven to completion on the writer thread.

use futures::FutureExt as _;
use futures::future::{BoxFuture, ready};
use rusqlite::{Connection, OptionalExtension as _, params};

use super::jobs::insert_receipt;
use super::tasks_rows::{self, load_submission, load_task, to_json};
use super::{SqliteStore, tasks_list, to_sql_int};
use crate::domain::{
    Amount, HashedReceipt, MetricValue, Runtime, SubmissionId, TaskId, WalletAddress, WorkerId,
};
use crate::orchestrator::store::{
    ClaimEnd, DueTasks, EvaluationRecord, GroupBody, GroupLocks, MarketTx, ResolutionRecord,
    StoreError, SubmissionInsert, SubmissionRow, TaskFilter, TaskRow, TaskStore, TxBody, TxFuture,
};
use crate::wire::Credit;

fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: reason.to_string(),
    }
}

/// One market transaction on the writer's connection.
pub struct SqliteTx<'c> {
    conn: &'c mut Connection,
}

/// A finished result as a [`TxFuture`].
fn done<'a, T: Send + 'a>(r: Result<T, StoreError>) -> TxFuture<'a, T> {
    ready(r).boxed()
}

/// Ids (as text) the query returns for `now_ms` and `limit`.
fn due_ids(
    conn: &Connection,
    sql: &str,
    now_ms: u64,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(
        params![to_sql_int(now_ms), i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| r.get::<_, String>(0),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn live_claim_of(
    conn: &Connection,
    worker: &WorkerId,
    except: &TaskId,
    now_ms: u64,
) -> Result<Option<TaskId>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached(
            "SELECT task_id FROM tasks WHERE claimed_by = ?1 AND status = 'claimed' \
             AND claim_expiry_ms > ?2 AND task_id <> ?3 LIMIT 1",
        )?
        .query_row(
            params![worker.as_str(), to_sql_int(now_ms), except.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    id.map(|s| TaskId::parse(&s).map_err(|e| corrupt("task id", e)))
        .transpose()
}

fn insert_submission(conn: &Connection, s: &SubmissionInsert) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO submissions (submission_id, task_id, worker_id, output, output_hash, usage, \
         duration_ms, claimed_ms, submitted_ms, evaluation_deadline_ms, metric) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        s.submission_id.as_str(),
        s.task_id.as_str(),
        s.worker_id.as_str(),
        s.output,
        s.output_hash.to_string(),
        s.usage.map(|u| to_json("usage", &u)).transpose()?,
        s.duration_ms.map(to_sql_int),
        to_sql_int(s.claimed_ms),
        to_sql_int(s.submitted_ms),
        to_sql_int(s.evaluation_deadline_ms),
        s.metric.as_ref().map(MetricValue::as_str),
    ])?;
    Ok(())
}

fn record_evaluation(conn: &Connection, e: &EvaluationRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE submissions SET evaluation = ?2, attestation_hash = ?3, evaluated_ms = ?4, \
         auto_evaluated = ?5, dispute_deadline_ms = ?6, receipt_id = ?7, confirmed_metric = ?8 \
         WHERE submission_id = ?1",
    )?
    .execute(params![
        e.submission_id.as_str(),
        to_json("evaluation", &e.evaluation)?,
        e.attestation_hash.to_string(),
        to_sql_int(e.evaluated_ms),
        e.auto,
        e.dispute_deadline_ms.map(to_sql_int),
        e.receipt_id.as_str(),
        e.evaluation.metric.as_ref().map(MetricValue::as_str),
    ])?;
    Ok(())
}

fn record_resolution(conn: &Connection, r: &ResolutionRecord) -> Result<(), StoreError> {
    if let Some(receipt) = &r.receipt_id {
        conn.prepare_cached("UPDATE submissions SET receipt_id = ?2 WHERE submission_id = ?1")?
            .execute(params![r.submission_id.as_str(), receipt.as_str()])?;
    }
    conn.prepare_cached(
        "UPDATE submissions SET resolution = ?2, resolution_note = ?3, resolved_ms = ?4 \
         WHERE submission_id = ?1",
    )?
    .execute(params![
        r.submission_id.as_str(),
        r.resolution.as_str(),
        r.note,
        to_sql_int(r.resolved_ms)
    ])?;
    Ok(())
}

fn payee(
    conn: &Connection,
    worker: &WorkerId,
) -> Result<Option<(WalletAddress, Runtime)>, StoreError> {
    let found: Option<(String, String)> = conn
        .prepare_cached("SELECT wallet, runtime FROM workers WHERE worker_id = ?1")?
        .query_row(params![worker.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    found
        .map(|(wallet, runtime)| {
            Ok((
                WalletAddress::parse(&wallet).map_err(|e| corrupt("wallet", e))?,
                runtime.parse().map_err(|e| corrupt("runtime", e))?,
            ))
        })
        .transpose()
}

impl MarketTx for SqliteTx<'_> {
    fn task<'a>(&'a mut self, id: &'a TaskId) -> TxFuture<'a, Option<TaskRow>> {
        done(load_task(self.conn, id))
    }

    fn write_task_state<'a>(&'a mut self, t: &'a TaskRow, now_ms: u64) -> TxFuture<'a, ()> {
        done(tasks_rows::write_state(self.conn, t, now_ms))
    }

    fn open_claim<'a>(&'a mut self, t: &'a TaskRow) -> TxFuture<'a, ()> {
        done(tasks_rows::open_claim(self.conn, t))
    }

    fn close_claim<'a>(
        &'a mut self,
        task: &'a TaskId,
        end: ClaimEnd,
        now_ms: u64,
    ) -> TxFuture<'a, ()> {
        done(tasks_rows::close_claim(self.conn, task, end, now_ms))
    }

    fn last_claim_end<'a>(
        &'a mut self,
        task: &'a TaskId,
        worker: &'a WorkerId,
    ) -> TxFuture<'a, Option<ClaimEnd>> {
        done(tasks_rows::last_claim_end(self.conn, task, worker))
    }

    fn live_claim_of<'a>(
        &'a mut self,
        worker: &'a WorkerId,
        except: &'a TaskId,
        now_ms: u64,
    ) -> TxFuture<'a, Option<TaskId>> {
        done(live_claim_of(self.conn, worker, except, now_ms))
    }

    fn submission<'a>(&'a mut self, id: &'a SubmissionId) -> TxFuture<'a, Option<SubmissionRow>> {
        done(load_submission(self.conn, id))
    }

    fn insert_submission<'a>(&'a mut self, s: &'a SubmissionInsert) -> TxFuture<'a, ()> {
        done(insert_submission(self.conn, s))
    }

    fn record_evaluation<'a>(&'a mut self, e: &'a EvaluationRecord) -> TxFuture<'a, ()> {
        done(record_evaluation(self.conn, e))
    }

    fn record_dispute<'a>(
        &'a mut self,
        id: &'a SubmissionId,
        reason: &'a str,
        now_ms: u64,
    ) -> TxFuture<'a, ()> {
        let result = self
            .conn
            .prepare_cached(
                "UPDATE submissions SET dispute_reason = ?2, disputed_ms = ?3 \
                 WHERE submission_id = ?1",
            )
            .and_then(|mut stmt| stmt.execute(params![id.as_str(), reason, to_sql_int(now_ms)]))
            .map(|_| ())
            .map_err(StoreError::from);
        done(result)
    }

    fn record_resolution<'a>(&'a mut self, r: &'a ResolutionRecord) -> TxFuture<'a, ()> {
        done(record_resolution(self.conn, r))
    }

    fn payee<'a>(
        &'a mut self,
        worker: &'a WorkerId,
    ) -> TxFuture<'a, Option<(WalletAddress, Runtime)>> {
        done(payee(self.conn, worker))
    }

    fn insert_receipt<'a>(&'a mut self, receipt: &'a HashedReceipt) -> TxFuture<'a, ()> {
        done(insert_receipt(self.conn, receipt))
    }

    fn insert_credit<'a>(&'a mut self, credit: &'a Credit, now_ms: u64) -> TxFuture<'a, ()> {
        done(tasks_rows::insert_credit(self.conn, credit, now_ms))
    }

    fn pending_rewards<'a>(&'a mut self, worker: &'a WorkerId) -> TxFuture<'a, Option<Amount>> {
        done(tasks_rows::pending_rewards(self.conn, worker))
    }

    fn set_pending_rewards<'a>(
        &'a mut self,
        worker: &'a WorkerId,
        total: Amount,
    ) -> TxFuture<'a, ()> {
        done(tasks_rows::set_pending_rewards(self.conn, worker, total))
    }

    fn due_tasks(&mut self, due: DueTasks, now_ms: u64, limit: usize) -> TxFuture<'_, Vec<TaskId>> {
        let sql = match due {
            DueTasks::Deadline => {
                "SELECT task_id FROM tasks WHERE status IN ('open', 'claimed') \
                 AND deadline_ms <= ?1 LIMIT ?2"
            }
            DueTasks::Lease => {
                "SELECT task_id FROM tasks WHERE status = 'claimed' AND claim_expiry_ms <= ?1 \
                 LIMIT ?2"
            }
        };
        let ids = due_ids(self.conn, sql, now_ms, limit).and_then(|ids| {
            ids.iter()
                .map(|s| TaskId::parse(s).map_err(|e| corrupt("task id", e)))
                .collect()
        });
        done(ids)
    }

    fn due_evaluations(&mut self, now_ms: u64, limit: usize) -> TxFuture<'_, Vec<SubmissionId>> {
        let sql = "SELECT submission_id FROM submissions WHERE evaluated_ms IS NULL \
                   AND evaluation_deadline_ms <= ?1 LIMIT ?2";
        let ids = due_ids(self.conn, sql, now_ms, limit).and_then(|ids| {
            ids.iter()
                .map(|s| SubmissionId::parse(s).map_err(|e| corrupt("submission id", e)))
                .collect()
        });
        done(ids)
    }
}

impl TaskStore for SqliteStore {
    fn insert_task(&self, task: TaskRow) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn| tasks_rows::insert_task(conn, &task))
    }

    fn task(&self, id: TaskId) -> BoxFuture<'_, Result<Option<TaskRow>, StoreError>> {
        self.read(move |conn| load_task(conn, &id))
    }

    fn list_tasks(&self, filter: TaskFilter) -> BoxFuture<'_, Result<Vec<TaskRow>, StoreError>> {
        self.read(move |conn| tasks_list::list(conn, &filter))
    }

    fn submission(
        &self,
        id: SubmissionId,
    ) -> BoxFuture<'_, Result<Option<SubmissionRow>, StoreError>> {
        self.read(move |conn| load_submission(conn, &id))
    }

    fn credits(
        &self,
        worker: WorkerId,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Credit>, StoreError>> {
        self.read(move |conn| tasks_rows::load_credits(conn, &worker, limit))
    }

    fn transact(&self, body: TxBody) -> BoxFuture<'_, Result<(), StoreError>> {
        // The writer runs the closure inside its transaction (rolled back on `Err`); every
        // `SqliteTx` call is ready at once, so `block_on` returns without ever parking the
        // writer thread.
        self.write_once(move |conn| {
            let mut tx = SqliteTx { conn };
            futures::executor::block_on(body(&mut tx))
        })
    }

    fn transact_grouped(
        &self,
        _locks: GroupLocks,
        mut body: GroupBody,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        // The writer already groups every write; a body that may run again lets its batch go
        // without savepoints (`writer`).
        self.write(move |conn| {
            let mut tx = SqliteTx { conn };
            futures::executor::block_on(body(&mut tx))
        })
    }
}
