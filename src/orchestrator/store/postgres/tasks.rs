//! [`TaskStore`] on PostgreSQL, and [`PgTx`], its [`MarketTx`]: one pooled connection inside
//! `BEGIN … COMMIT` (read committed) where every read the engine decides on locks its row.
//! A task is read `FOR UPDATE`; a claim also locks the claiming worker's row before it looks
//! for the worker's other live claim; pending rewards are read `FOR UPDATE`. So concurrent
//! market transactions on any replica serialize per task and per worker, exactly as the
//! single `SQLite` writer serializes them all, and nothing is decided on a stale read. Locks
//! are always taken task first, then worker, and due rows in id order (a grouped batch takes
//! all its tasks, then all its workers, each in id order: `group`), so two transactions
//! never wait on each other in a circle. A task row once locked is kept in the transaction
//! (`PgTx::locked`): reading it again, as the next change of a batch does, needs no query.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::bulk::Value;
use super::jobs::{credit_write, receipt_write};
use super::pipeline::{Pipelined, params};
use super::{PgStore, int, pg_err, tasks_list};
use crate::domain::{
    Amount, HashedReceipt, MetricValue, Runtime, SubmissionId, TaskId, WalletAddress, WorkerId,
};
use crate::orchestrator::store::rows::{
    self, CREDIT_COLUMNS, SUBMISSION_COLUMNS, TASK_COLUMNS, corrupt, reward_key, to_json,
};
use crate::orchestrator::store::settlement::CREDITS_WITH_BATCH;
use crate::orchestrator::store::{
    ClaimEnd, DueTasks, EvaluationRecord, GroupBody, GroupLocks, MarketTx, ResolutionRecord,
    StoreError, SubmissionInsert, SubmissionRow, TaskFilter, TaskRow, TaskStore, TxBody, TxFuture,
};
use crate::wire::Credit;

/// One market transaction, pipelined (see [`Pipelined`]): reads go out with what was written
/// before them, and the last writes with `COMMIT`.
pub struct PgTx {
    pub(super) tx: Pipelined,
    /// Whether the body wrote anything. One that only read (a refused claim, say) is rolled
    /// back rather than committed: its row locks gave it a transaction id, and a commit
    /// would wait for a WAL flush that records nothing.
    pub(super) wrote: bool,
    /// The task rows this transaction holds locked (read `FOR UPDATE`), as it last wrote
    /// them: nobody else can change one before the transaction ends, so reading one again
    /// (the next change to it in a group, see `group`) needs no query.
    locked: HashMap<TaskId, TaskRow>,
}

fn task_sql(lock: bool) -> String {
    format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    )
}

async fn load_task(c: &impl GenericClient, id: &TaskId) -> Result<Option<TaskRow>, StoreError> {
    let stmt = c.prepare_cached(&task_sql(false)).await.map_err(pg_err)?;
    c.query_opt(&stmt, &[&id.as_str()])
        .await
        .map_err(pg_err)?
        .map(|row| rows::task(&row))
        .transpose()
}

async fn load_credit(c: &impl GenericClient, id: &str) -> Result<Option<Credit>, StoreError> {
    let sql =
        format!("SELECT {CREDIT_COLUMNS} FROM {CREDITS_WITH_BATCH} WHERE c.submission_id = $1");
    let stmt = c.prepare_cached(&sql).await.map_err(pg_err)?;
    c.query_opt(&stmt, &[&id])
        .await
        .map_err(pg_err)?
        .map(|row| rows::credit(&row))
        .transpose()
}

/// A submission with its task's status and its credit, if any.
async fn load_submission(
    c: &impl GenericClient,
    id: &SubmissionId,
) -> Result<Option<SubmissionRow>, StoreError> {
    let sql = format!(
        "SELECT {SUBMISSION_COLUMNS} FROM submissions s JOIN tasks t ON t.task_id = s.task_id \
         LEFT JOIN receipts r ON r.receipt_id = s.receipt_id WHERE s.submission_id = $1"
    );
    let stmt = c.prepare_cached(&sql).await.map_err(pg_err)?;
    let Some(row) = c.query_opt(&stmt, &[&id.as_str()]).await.map_err(pg_err)? else {
        return Ok(None);
    };
    let mut sub = rows::submission(&row)?;
    sub.credit = load_credit(c, id.as_str()).await?;
    Ok(Some(sub))
}

/// Runs `sql` with `params`, expecting no rows back.
async fn exec(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<(), StoreError> {
    let stmt = c.prepare_cached(sql).await.map_err(pg_err)?;
    c.execute(&stmt, params).await.map_err(pg_err)?;
    Ok(())
}

impl PgTx {
    pub(super) fn new(client: deadpool_postgres::Object) -> Self {
        Self {
            tx: Pipelined::new(client),
            wrote: false,
            locked: HashMap::new(),
        }
    }

    /// Locks `tasks` (and reads them), then `workers`, each set in id order, so that two
    /// transactions locking sets this way never wait on each other in a circle. The
    /// workers' lock is sent with the next statement.
    pub(super) async fn lock_up_front(
        &mut self,
        tasks: Vec<&str>,
        workers: Vec<String>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = ANY($1) ORDER BY task_id FOR UPDATE"
        );
        for row in self.tx.query(&sql, &[&tasks]).await? {
            let t = rows::task(&row)?;
            self.locked.insert(t.task_id.clone(), t);
        }
        if !workers.is_empty() {
            self.tx.queue(
                "SELECT 1 FROM workers WHERE worker_id = ANY($1) ORDER BY worker_id FOR UPDATE",
                params![workers],
            );
        }
        Ok(())
    }

    fn write_state(&mut self, t: &TaskRow, now_ms: u64) -> Result<(), StoreError> {
        self.wrote = true;
        self.locked.insert(t.task_id.clone(), t.clone());
        let text = |s: Option<&str>| Value::Text(s.map(str::to_owned));
        self.tx.queue_row(
            "UPDATE tasks SET status = v.status, attempts = v.attempts, \
             claimed_by = v.claimed_by, claimed_ms = v.claimed_ms, \
             claim_expiry_ms = v.claim_expiry_ms, submission_id = v.submission_id, \
             updated_ms = v.updated_ms \
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], \
             $6::bigint[], $7::text[], $8::bigint[]) AS v(task_id, status, attempts, \
             claimed_by, claimed_ms, claim_expiry_ms, submission_id, updated_ms) \
             WHERE tasks.task_id = v.task_id",
            Some(t.task_id.as_str().to_owned()),
            vec![
                text(Some(t.task_id.as_str())),
                text(Some(t.status.as_str())),
                Value::Int(Some(i64::from(t.attempts))),
                text(t.claimed_by.as_ref().map(WorkerId::as_str)),
                Value::Int(t.claimed_ms.map(int)),
                Value::Int(t.claim_expiry_ms.map(int)),
                text(t.submission_id.as_ref().map(SubmissionId::as_str)),
                Value::Int(Some(int(now_ms))),
            ],
        )
    }

    fn open_claim(&mut self, t: &TaskRow) -> Result<(), StoreError> {
        let (Some(worker), Some(at), Some(expiry)) =
            (&t.claimed_by, t.claimed_ms, t.claim_expiry_ms)
        else {
            return Err(corrupt("claim", "a claimed task without its holder"));
        };
        self.wrote = true;
        self.tx.queue_row(
            "INSERT INTO claims (task_id, worker_id, attempt, claimed_ms, expiry_ms) \
             SELECT task_id, worker_id, attempt, claimed_ms, expiry_ms \
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) \
             WITH ORDINALITY AS v(task_id, worker_id, attempt, claimed_ms, expiry_ms, n) \
             ORDER BY n",
            None,
            vec![
                Value::Text(Some(t.task_id.as_str().to_owned())),
                Value::Text(Some(worker.as_str().to_owned())),
                Value::Int(Some(i64::from(t.attempts))),
                Value::Int(Some(int(at))),
                Value::Int(Some(int(expiry))),
            ],
        )
    }

    /// Sends what is queued; the connection, for a statement of the caller's own.
    async fn writer(&mut self) -> Result<&deadpool_postgres::Object, StoreError> {
        self.wrote = true;
        self.tx.flushed().await
    }

    async fn last_claim_end(
        &mut self,
        task: &TaskId,
        worker: &WorkerId,
    ) -> Result<Option<ClaimEnd>, StoreError> {
        let outcome: Option<String> = self
            .tx
            .query_opt(
                "SELECT outcome FROM claims WHERE task_id = $1 AND worker_id = $2 \
                 ORDER BY claim_id DESC LIMIT 1",
                &[&task.as_str(), &worker.as_str()],
            )
            .await?
            .and_then(|row| row.get(0));
        outcome
            .map(|o| ClaimEnd::parse(&o).ok_or_else(|| corrupt("claim outcome", o)))
            .transpose()
    }

    async fn live_claim_of(
        &mut self,
        worker: &WorkerId,
        except: &TaskId,
        now_ms: u64,
    ) -> Result<Option<TaskId>, StoreError> {
        // The worker's row first: its claims serialize, so two concurrent claims by one
        // worker cannot both see no other claim.
        self.tx
            .query(
                "SELECT 1 FROM workers WHERE worker_id = $1 FOR UPDATE",
                &[&worker.as_str()],
            )
            .await?;
        let id: Option<String> = self
            .tx
            .query_opt(
                "SELECT task_id FROM tasks WHERE claimed_by = $1 AND status = 'claimed' \
                 AND claim_expiry_ms > $2 AND task_id <> $3 LIMIT 1",
                &[&worker.as_str(), &int(now_ms), &except.as_str()],
            )
            .await?
            .map(|row| row.get(0));
        id.map(|s| TaskId::parse(&s).map_err(|e| corrupt("task id", e)))
            .transpose()
    }

    async fn insert_submission(&mut self, s: &SubmissionInsert) -> Result<(), StoreError> {
        exec(
            self.writer().await?,
            "INSERT INTO submissions (submission_id, task_id, worker_id, output, output_hash, \
             usage, duration_ms, claimed_ms, submitted_ms, evaluation_deadline_ms, metric) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &s.submission_id.as_str(),
                &s.task_id.as_str(),
                &s.worker_id.as_str(),
                &s.output,
                &s.output_hash.to_string(),
                &s.usage.map(|u| to_json("usage", &u)).transpose()?,
                &s.duration_ms.map(int),
                &int(s.claimed_ms),
                &int(s.submitted_ms),
                &int(s.evaluation_deadline_ms),
                &s.metric.as_ref().map(MetricValue::as_str),
            ],
        )
        .await
    }

    async fn record_evaluation(&mut self, e: &EvaluationRecord) -> Result<(), StoreError> {
        exec(
            self.writer().await?,
            "UPDATE submissions SET evaluation = $2, attestation_hash = $3, evaluated_ms = $4, \
             auto_evaluated = $5, dispute_deadline_ms = $6, receipt_id = $7, \
             confirmed_metric = $8 WHERE submission_id = $1",
            &[
                &e.submission_id.as_str(),
                &to_json("evaluation", &e.evaluation)?,
                &e.attestation_hash.to_string(),
                &int(e.evaluated_ms),
                &e.auto,
                &e.dispute_deadline_ms.map(int),
                &e.receipt_id.as_str(),
                &e.evaluation.metric.as_ref().map(MetricValue::as_str),
            ],
        )
        .await
    }

    async fn record_resolution(&mut self, r: &ResolutionRecord) -> Result<(), StoreError> {
        exec(
            self.writer().await?,
            "UPDATE submissions SET resolution = $2, resolution_note = $3, resolved_ms = $4, \
             receipt_id = COALESCE($5, receipt_id) WHERE submission_id = $1",
            &[
                &r.submission_id.as_str(),
                &r.resolution.as_str(),
                &r.note,
                &int(r.resolved_ms),
                &r.receipt_id.as_ref().map(|id| id.as_str().to_owned()),
            ],
        )
        .await
    }

    async fn payee(
        &mut self,
        worker: &WorkerId,
    ) -> Result<Option<(WalletAddress, Runtime)>, StoreError> {
        let Some(row) = self
            .tx
            .query_opt(
                "SELECT wallet, runtime FROM workers WHERE worker_id = $1",
                &[&worker.as_str()],
            )
            .await?
        else {
            return Ok(None);
        };
        let (wallet, runtime): (String, String) = (row.get(0), row.get(1));
        Ok(Some((
            WalletAddress::parse(&wallet).map_err(|e| corrupt("wallet", e))?,
            runtime.parse().map_err(|e| corrupt("runtime", e))?,
        )))
    }

    fn insert_credit(&mut self, c: &Credit, created_ms: u64) -> Result<(), StoreError> {
        self.wrote = true;
        self.tx.push(credit_write(c, created_ms)?);
        Ok(())
    }

    async fn pending_rewards(&mut self, worker: &WorkerId) -> Result<Option<Amount>, StoreError> {
        let current: Option<String> = self
            .tx
            .query_opt(
                "SELECT rewards_pending FROM workers WHERE worker_id = $1 FOR UPDATE",
                &[&worker.as_str()],
            )
            .await?
            .map(|row| row.get(0));
        current
            .map(|c| Amount::parse(&c).map_err(|e| corrupt("rewards_pending", e)))
            .transpose()
    }

    async fn due_ids(
        &mut self,
        sql: &str,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .tx
            .query(sql, &[&int(now_ms), &limit])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect())
    }
}

impl MarketTx for PgTx {
    fn task<'a>(&'a mut self, id: &'a TaskId) -> TxFuture<'a, Option<TaskRow>> {
        async move {
            if let Some(t) = self.locked.get(id) {
                return Ok(Some(t.clone()));
            }
            let Some(row) = self.tx.query_opt(&task_sql(true), &[&id.as_str()]).await? else {
                return Ok(None);
            };
            let t = rows::task(&row)?;
            self.locked.insert(t.task_id.clone(), t.clone());
            Ok(Some(t))
        }
        .boxed()
    }

    fn write_task_state<'a>(&'a mut self, t: &'a TaskRow, now_ms: u64) -> TxFuture<'a, ()> {
        futures::future::ready(self.write_state(t, now_ms)).boxed()
    }

    fn open_claim<'a>(&'a mut self, t: &'a TaskRow) -> TxFuture<'a, ()> {
        futures::future::ready(PgTx::open_claim(self, t)).boxed()
    }

    fn close_claim<'a>(
        &'a mut self,
        task: &'a TaskId,
        end: ClaimEnd,
        now_ms: u64,
    ) -> TxFuture<'a, ()> {
        self.wrote = true;
        self.tx.queue(
            "UPDATE claims SET ended_ms = $2, outcome = $3 WHERE claim_id = \
             (SELECT max(claim_id) FROM claims WHERE task_id = $1 AND ended_ms IS NULL)",
            params![task.as_str().to_owned(), int(now_ms), end.as_str()],
        );
        futures::future::ready(Ok(())).boxed()
    }

    fn last_claim_end<'a>(
        &'a mut self,
        task: &'a TaskId,
        worker: &'a WorkerId,
    ) -> TxFuture<'a, Option<ClaimEnd>> {
        PgTx::last_claim_end(self, task, worker).boxed()
    }

    fn live_claim_of<'a>(
        &'a mut self,
        worker: &'a WorkerId,
        except: &'a TaskId,
        now_ms: u64,
    ) -> TxFuture<'a, Option<TaskId>> {
        PgTx::live_claim_of(self, worker, except, now_ms).boxed()
    }

    fn submission<'a>(&'a mut self, id: &'a SubmissionId) -> TxFuture<'a, Option<SubmissionRow>> {
        async move { load_submission(self.tx.flushed().await?, id).await }.boxed()
    }

    fn insert_submission<'a>(&'a mut self, s: &'a SubmissionInsert) -> TxFuture<'a, ()> {
        PgTx::insert_submission(self, s).boxed()
    }

    fn record_evaluation<'a>(&'a mut self, e: &'a EvaluationRecord) -> TxFuture<'a, ()> {
        PgTx::record_evaluation(self, e).boxed()
    }

    fn record_dispute<'a>(
        &'a mut self,
        id: &'a SubmissionId,
        reason: &'a str,
        now_ms: u64,
    ) -> TxFuture<'a, ()> {
        async move {
            exec(
                self.writer().await?,
                "UPDATE submissions SET dispute_reason = $2, disputed_ms = $3 \
                 WHERE submission_id = $1",
                &[&id.as_str(), &reason, &int(now_ms)],
            )
            .await
        }
        .boxed()
    }

    fn record_resolution<'a>(&'a mut self, r: &'a ResolutionRecord) -> TxFuture<'a, ()> {
        PgTx::record_resolution(self, r).boxed()
    }

    fn payee<'a>(
        &'a mut self,
        worker: &'a WorkerId,
    ) -> TxFuture<'a, Option<(WalletAddress, Runtime)>> {
        PgTx::payee(self, worker).boxed()
    }

    fn insert_receipt<'a>(&'a mut self, receipt: &'a HashedReceipt) -> TxFuture<'a, ()> {
        let queued = receipt_write(receipt).map(|write| {
            self.wrote = true;
            self.tx.push(write);
        });
        futures::future::ready(queued).boxed()
    }

    fn insert_credit<'a>(&'a mut self, credit: &'a Credit, now_ms: u64) -> TxFuture<'a, ()> {
        futures::future::ready(PgTx::insert_credit(self, credit, now_ms)).boxed()
    }

    fn pending_rewards<'a>(&'a mut self, worker: &'a WorkerId) -> TxFuture<'a, Option<Amount>> {
        PgTx::pending_rewards(self, worker).boxed()
    }

    fn set_pending_rewards<'a>(
        &'a mut self,
        worker: &'a WorkerId,
        total: Amount,
    ) -> TxFuture<'a, ()> {
        async move {
            exec(
                self.writer().await?,
                "UPDATE workers SET rewards_pending = $2 WHERE worker_id = $1",
                &[&worker.as_str(), &total.to_string()],
            )
            .await
        }
        .boxed()
    }

    fn due_tasks(&mut self, due: DueTasks, now_ms: u64, limit: usize) -> TxFuture<'_, Vec<TaskId>> {
        let sql = match due {
            DueTasks::Deadline => {
                "SELECT task_id FROM tasks WHERE status IN ('open', 'claimed') \
                 AND deadline_ms <= $1 ORDER BY task_id LIMIT $2"
            }
            DueTasks::Lease => {
                "SELECT task_id FROM tasks WHERE status = 'claimed' AND claim_expiry_ms <= $1 \
                 ORDER BY task_id LIMIT $2"
            }
        };
        async move {
            self.due_ids(sql, now_ms, limit)
                .await?
                .iter()
                .map(|s| TaskId::parse(s).map_err(|e| corrupt("task id", e)))
                .collect()
        }
        .boxed()
    }

    fn due_evaluations(&mut self, now_ms: u64, limit: usize) -> TxFuture<'_, Vec<SubmissionId>> {
        async move {
            self.due_ids(
                "SELECT submission_id FROM submissions WHERE evaluated_ms IS NULL \
                 AND evaluation_deadline_ms <= $1 ORDER BY submission_id LIMIT $2",
                now_ms,
                limit,
            )
            .await?
            .iter()
            .map(|s| SubmissionId::parse(s).map_err(|e| corrupt("submission id", e)))
            .collect()
        }
        .boxed()
    }
}

impl TaskStore for PgStore {
    fn insert_task(&self, t: TaskRow) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let input = t.input.as_ref().map(|i| to_json("input", i)).transpose()?;
            let client = self.client().await?;
            exec(
                &client,
                "INSERT INTO tasks (task_id, client, description, criteria, \
                 required_capabilities, reward, reward_key, asset, deadline_ms, output_format, \
                 claim_ttl_s, evaluator, pass_threshold, input, status, attempts, created_ms, \
                 updated_ms, client_key_sha256, min_vram_mib, family, metric) VALUES ($1, $2, $3, \
                 $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19, \
                 $20, $21)",
                &[
                    &t.task_id.as_str(),
                    &t.client,
                    &t.description,
                    &to_json("criteria", &t.criteria)?,
                    &to_json("capabilities", &t.required_capabilities)?,
                    &t.reward.to_string(),
                    &reward_key(t.reward),
                    &t.asset,
                    &int(t.deadline_ms),
                    &t.output_format.as_str(),
                    &int(t.claim_ttl_s),
                    &t.evaluator,
                    &i64::from(t.pass_threshold),
                    &input,
                    &t.status.as_str(),
                    &i64::from(t.attempts),
                    &int(t.created_ms),
                    &t.client_key.as_ref().map(|k| k.0.to_vec()),
                    &t.min_vram_mib.map(int),
                    &t.family,
                    &t.metric
                        .as_ref()
                        .map(|m| to_json("metric", m))
                        .transpose()?,
                ],
            )
            .await
        }
        .boxed()
    }

    fn task(&self, id: TaskId) -> BoxFuture<'_, Result<Option<TaskRow>, StoreError>> {
        async move { load_task(&self.client().await?, &id).await }.boxed()
    }

    fn list_tasks(&self, filter: TaskFilter) -> BoxFuture<'_, Result<Vec<TaskRow>, StoreError>> {
        async move { tasks_list::list(&self.client().await?, &filter).await }.boxed()
    }

    fn submission(
        &self,
        id: SubmissionId,
    ) -> BoxFuture<'_, Result<Option<SubmissionRow>, StoreError>> {
        async move { load_submission(&self.client().await?, &id).await }.boxed()
    }

    fn credits(
        &self,
        worker: WorkerId,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Credit>, StoreError>> {
        async move {
            let client = self.client().await?;
            let sql = format!(
                "SELECT {CREDIT_COLUMNS} FROM {CREDITS_WITH_BATCH} WHERE c.worker_id = $1 \
                 ORDER BY c.created_ms DESC, c.seq DESC LIMIT $2"
            );
            let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            client
                .query(&stmt, &[&worker.as_str(), &limit])
                .await
                .map_err(pg_err)?
                .iter()
                .map(rows::credit)
                .collect()
        }
        .boxed()
    }

    fn transact(&self, body: TxBody) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let mut market = PgTx::new(self.client().await?);
            // An `Err` drops the transaction unfinished: it is rolled back. So is a body that
            // wrote nothing (the rollback is sent without waiting for its answer).
            body(&mut market).await?;
            if market.wrote {
                market.tx.commit().await
            } else {
                drop(market);
                Ok(())
            }
        }
        .boxed()
    }

    fn transact_grouped(
        &self,
        locks: GroupLocks,
        body: GroupBody,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.group.transact(locks, body).boxed()
    }
}
