//! Finished gateway jobs and receipts on PostgreSQL. A job is recorded at most once: a second
//! record of the same id (a retry, or another replica) answers with the stored status.

use deadpool_postgres::GenericClient;
use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::pipeline::{Pipelined, Write, params};
use super::{PgStore, int, pg_err};
use crate::domain::{Amount, HashedReceipt, JobId, ReceiptHash, ReceiptId};
use crate::orchestrator::store::rows::{corrupt, receipt_row, unpaid_text};
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

const STATUS_OF: &str = "SELECT status FROM jobs WHERE job_id = $1";

/// The status in a [`STATUS_OF`] row, if there is one.
fn status_in(row: Option<tokio_postgres::Row>) -> Result<Option<JobStatus>, StoreError> {
    row.map(|row| JobStatus::parse(row.get(0)).ok_or_else(corrupt_status))
        .transpose()
}

async fn status_of(client: &impl GenericClient, id: &str) -> Result<Option<JobStatus>, StoreError> {
    let stmt = client.prepare_cached(STATUS_OF).await.map_err(pg_err)?;
    status_in(client.query_opt(&stmt, &[&id]).await.map_err(pg_err)?)
}

/// Inserts a sealed receipt (also used by the market's settlements).
pub(super) fn receipt_write(receipt: &HashedReceipt) -> Result<Write, StoreError> {
    let body = serde_json::to_string(receipt).map_err(|e| StoreError::Corrupt {
        what: "receipt",
        reason: e.to_string(),
    })?;
    let r = &receipt.receipt;
    Ok(Write::new(
        "INSERT INTO receipts (receipt_id, receipt_hash, kind, worker_id, job_id, issued_at, \
         body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![
            r.receipt_id.as_str().to_owned(),
            receipt.receipt_hash.to_string(),
            r.kind.as_str(),
            r.worker_id.as_str().to_owned(),
            r.job_id.as_ref().map(|j| j.as_str().to_owned()),
            int(r.issued_at),
            body,
        ],
    ))
}

/// Writes a credit, once per submission or gateway job (also used by the market's
/// settlements). `seq` comes from its sequence (see store/postgres/settlement.rs).
pub(super) fn credit_write(c: &Credit, created_ms: u64) -> Result<Write, StoreError> {
    Ok(Write::new(
        "INSERT INTO credits (submission_id, task_id, worker_id, wallet, gross, fee, net, \
         asset, unpaid, created_ms, receipt_id, receipt_hash, job_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        params![
            c.submission_id.as_ref().map(|s| s.as_str().to_owned()),
            c.task_id.as_ref().map(|t| t.as_str().to_owned()),
            c.worker_id.as_str().to_owned(),
            c.wallet.checksummed(),
            c.gross.to_string(),
            c.fee.to_string(),
            c.net.to_string(),
            c.asset.clone(),
            unpaid_text(c.unpaid)?,
            int(created_ms),
            c.receipt_id.as_str().to_owned(),
            c.receipt_hash.to_string(),
            c.job_id.as_ref().map(|j| j.as_str().to_owned()),
        ],
    ))
}

impl PgStore {
    /// Records a job in one pipelined transaction: `BEGIN` with the check for an earlier
    /// record, then every write with `COMMIT` (a paying job's worker update comes back first,
    /// so its new total is checked before the commit).
    async fn record_new_job(&self, job: &JobRecord) -> Result<Recorded, StoreError> {
        let mut tx = Pipelined::new(self.client().await?);
        let earlier = tx.query_opt(STATUS_OF, &[&job.job_id.as_str()]).await?;
        if let Some(status) = status_in(earlier)? {
            return Ok(Recorded::Already(status));
        }
        let served = job.outcome.served();
        let day = utc_day(job.finished_at);
        let mut credit_net = None;
        let (error_code, receipt_id, counter) = match &job.outcome {
            JobOutcome::Completed(receipt) => {
                tx.push(receipt_write(receipt)?);
                if let (Some(key), Some((used, charged))) = (&job.client_key, job.outcome.billed())
                {
                    tx.push(super::keys::usage_write(key, day, used, charged));
                }
                let counter = match job.outcome.credit(job.finished_at)? {
                    // The worker's row is locked last, as the market's settlements do.
                    Some(credit) => {
                        let created_ms = job.finished_at.saturating_mul(1000);
                        tx.push(credit_write(&credit, created_ms)?);
                        credit_net = Some(credit.net);
                        "UPDATE workers SET jobs_completed = jobs_completed + 1, \
                         rewards_pending = (rewards_pending::numeric + ($2::text)::numeric)::text \
                         WHERE worker_id = $1 RETURNING rewards_pending"
                    }
                    None => {
                        "UPDATE workers SET jobs_completed = jobs_completed + 1 \
                         WHERE worker_id = $1"
                    }
                };
                (
                    None,
                    Some(receipt.receipt.receipt_id.as_str().to_owned()),
                    Some(counter),
                )
            }
            JobOutcome::Failed(code) => (
                Some(code.as_str()),
                None,
                Some("UPDATE workers SET jobs_failed = jobs_failed + 1 WHERE worker_id = $1"),
            ),
            JobOutcome::Cancelled => (None, None, None),
        };
        tx.queue(
            "INSERT INTO jobs (job_id, worker_id, model, status, error_code, receipt_id, \
             started_at, finished_at, prompt_tokens, completion_tokens, ttft_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            params![
                job.job_id.as_str().to_owned(),
                job.worker_id.as_str().to_owned(),
                job.model.clone(),
                job.outcome.status().as_str(),
                error_code,
                receipt_id,
                int(job.started_at),
                int(job.finished_at),
                served.map(|u| int(u.prompt_tokens)),
                served.map(|u| int(u.completion_tokens)),
                job.ttft_ms.map(int),
            ],
        );
        if let (Some(key), Some(used)) = (&job.client_key, job.partial_usage) {
            tx.push(super::keys::usage_write(key, day, used, Amount::ZERO));
        }
        match (counter, credit_net) {
            (Some(sql), Some(net)) => {
                // Exactly the credited worker's row, and a total that is still an amount.
                let row = tx
                    .query_opt(sql, &[&job.worker_id.as_str(), &net.to_string()])
                    .await?
                    .ok_or_else(|| corrupt("credit", "the credited worker is not registered"))?;
                Amount::parse(row.get::<_, &str>(0)).map_err(|e| corrupt("rewards_pending", e))?;
            }
            (Some(sql), None) => {
                tx.queue(sql, params![job.worker_id.as_str().to_owned()]);
            }
            (None, _) => {}
        }
        tx.commit().await?;
        Ok(Recorded::New)
    }

    async fn body_where(&self, sql: &str, key: &str) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        Ok(client
            .query_opt(&stmt, &[&key])
            .await
            .map_err(pg_err)?
            .map(|row| row.get(0)))
    }
}

impl JobStore for PgStore {
    fn record_job(&self, job: JobRecord) -> BoxFuture<'_, Result<Recorded, StoreError>> {
        async move {
            match self.record_new_job(&job).await {
                // Recorded concurrently (another replica): the stored one stands.
                Err(StoreError::Conflict) => {
                    let client = self.client().await?;
                    match status_of(&client, job.job_id.as_str()).await? {
                        Some(status) => Ok(Recorded::Already(status)),
                        None => Err(StoreError::Conflict),
                    }
                }
                other => other,
            }
        }
        .boxed()
    }

    fn job_status(&self, id: JobId) -> BoxFuture<'_, Result<Option<JobStatus>, StoreError>> {
        async move { status_of(&self.client().await?, id.as_str()).await }.boxed()
    }

    fn receipts(&self, q: ReceiptQuery) -> BoxFuture<'_, Result<Vec<ListedReceipt>, StoreError>> {
        async move {
            let client = self.client().await?;
            let (after_t, after_id) = q.after.as_ref().map_or((-1, String::new()), |(t, id)| {
                (int(*t), id.as_str().to_owned())
            });
            let worker = q.worker.as_ref().map(|w| w.as_str().to_owned());
            let stmt = client
                .prepare_cached(
                    "SELECT issued_at, receipt_id, body FROM receipts \
                     WHERE issued_at >= $1 AND ($2::text IS NULL OR worker_id = $2) \
                     AND (issued_at > $3 OR (issued_at = $3 AND receipt_id > $4)) \
                     ORDER BY issued_at, receipt_id LIMIT $5",
                )
                .await
                .map_err(pg_err)?;
            client
                .query(
                    &stmt,
                    &[
                        &int(q.since),
                        &worker,
                        &after_t,
                        &after_id,
                        &i64::try_from(q.limit).unwrap_or(i64::MAX),
                    ],
                )
                .await
                .map_err(pg_err)?
                .iter()
                .map(receipt_row)
                .collect()
        }
        .boxed()
    }

    fn receipt(&self, id: ReceiptId) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        async move {
            self.body_where(
                "SELECT body FROM receipts WHERE receipt_id = $1",
                id.as_str(),
            )
            .await
        }
        .boxed()
    }

    fn receipt_by_hash(
        &self,
        hash: ReceiptHash,
    ) -> BoxFuture<'_, Result<Option<String>, StoreError>> {
        async move {
            self.body_where(
                "SELECT body FROM receipts WHERE receipt_hash = $1",
                &hash.to_string(),
            )
            .await
        }
        .boxed()
    }
}
