//! [`SettlementStore`] on PostgreSQL. A close takes an exclusive lock on
//! `settlement_batches` for its transaction, so closes from any number of replicas run one
//! at a time; its one `UPDATE … RETURNING` moves exactly the credits committed before it (a
//! credit committing meanwhile is not seen and stays pending for the next batch).

use deadpool_postgres::GenericClient;
use futures::future::BoxFuture;
use futures::{FutureExt as _, TryStreamExt as _, pin_mut};

use super::{PgStore, int, pg_err};
use crate::domain::{Amount, WalletAddress};
use crate::orchestrator::store::StoreError;
use crate::orchestrator::store::rows::corrupt;
use crate::orchestrator::store::settlement::{
    self, BATCH_COLUMNS, BatchRow, BatchTerms, Closed, CreditTotals, MarkedPaid, PaidPerWorker,
    RewardScope, Sealer, SettlementStore,
};

async fn load_batch(
    c: &impl GenericClient,
    id: u64,
    lock: bool,
) -> Result<Option<BatchRow>, StoreError> {
    let sql = format!(
        "SELECT {BATCH_COLUMNS} FROM settlement_batches WHERE batch_id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let stmt = c.prepare_cached(&sql).await.map_err(pg_err)?;
    c.query_opt(&stmt, &[&int(id)])
        .await
        .map_err(pg_err)?
        .map(|r| settlement::batch_row(&r))
        .transpose()
}

async fn close(
    c: &impl GenericClient,
    terms: BatchTerms,
    seal: Sealer,
) -> Result<Option<Closed>, StoreError> {
    c.batch_execute("LOCK TABLE settlement_batches IN EXCLUSIVE MODE")
        .await
        .map_err(pg_err)?;
    let sql =
        format!("SELECT {BATCH_COLUMNS} FROM settlement_batches ORDER BY batch_id DESC LIMIT 1");
    let newest = c
        .query_opt(&sql, &[])
        .await
        .map_err(pg_err)?
        .map(|r| settlement::batch_row(&r))
        .transpose()?;
    if let Some(b) = newest.as_ref() {
        if b.terms.watermark_ms == terms.watermark_ms {
            return Ok(Some(Closed::Existing(b.clone())));
        }
        if b.terms.watermark_ms > terms.watermark_ms {
            return Ok(Some(Closed::Behind(b.clone())));
        }
    }
    let batch_id = newest.map_or(1, |b| b.batch_id + 1);
    let stmt = c
        .prepare(
            "UPDATE credits SET status = 'batched', batch_id = $1 \
             WHERE status = 'pending' AND created_ms < $2 RETURNING wallet, net, created_ms",
        )
        .await
        .map_err(pg_err)?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&int(batch_id), &int(terms.watermark_ms)];
    let rows = c
        .query_raw(&stmt, params.iter().copied())
        .await
        .map_err(pg_err)?;
    pin_mut!(rows);
    let mut moved = Vec::new();
    while let Some(row) = rows.try_next().await.map_err(pg_err)? {
        moved.push(settlement::moved_row(&row)?);
    }
    // `None`: nothing payable; the caller rolls the move back.
    let Some(sealed) = seal(&moved) else {
        return Ok(None);
    };
    let row = BatchRow {
        batch_id,
        terms,
        period_start_ms: sealed.period_start_ms,
        total: sealed.total,
        root: sealed.root,
        credits: moved.len() as u64,
        leaves: sealed.leaves.len() as u64,
        tx_hash: None,
        paid_ms: None,
    };
    let t = &row.terms;
    c.execute(
        "INSERT INTO settlement_batches (batch_id, watermark_ms, period_start_ms, asset, token, \
         chain_id, verifying_contract, domain_name, domain_version, total, root, credits, \
         leaves, closed_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        &[
            &int(batch_id),
            &int(t.watermark_ms),
            &int(row.period_start_ms),
            &t.asset,
            &t.token,
            &int(t.chain_id),
            &t.verifying_contract,
            &t.domain_name,
            &t.domain_version,
            &row.total.to_string(),
            &row.root,
            &int(row.credits),
            &int(row.leaves),
            &int(t.closed_ms),
        ],
    )
    .await
    .map_err(pg_err)?;
    let positions: Vec<i64> = (0..sealed.leaves.len()).map(|p| int(p as u64)).collect();
    let wallets: Vec<String> = sealed.leaves.iter().map(|(w, _)| w.checksummed()).collect();
    let amounts: Vec<String> = sealed.leaves.iter().map(|(_, a)| a.to_string()).collect();
    c.execute(
        "INSERT INTO batch_leaves (batch_id, position, wallet, amount) \
         SELECT $1, p, w, a FROM unnest($2::bigint[], $3::text[], $4::text[]) AS l(p, w, a)",
        &[&int(batch_id), &positions, &wallets, &amounts],
    )
    .await
    .map_err(pg_err)?;
    Ok(Some(Closed::New(row)))
}

async fn mark_paid(
    c: &impl GenericClient,
    id: u64,
    tx_hash: &str,
    now_ms: u64,
) -> Result<MarkedPaid, StoreError> {
    let Some(batch) = load_batch(c, id, true).await? else {
        return Ok(MarkedPaid::NotFound);
    };
    if batch.tx_hash.is_some() {
        return Ok(MarkedPaid::AlreadyPaid(batch));
    }
    let other = c
        .query_opt(
            "SELECT batch_id FROM settlement_batches WHERE tx_hash = $1",
            &[&tx_hash],
        )
        .await
        .map_err(pg_err)?;
    if let Some(other) = other {
        let other: i64 = other.get(0);
        return Ok(MarkedPaid::TxHashUsed {
            batch_id: u64::try_from(other).map_err(|e| corrupt("batch id", e))?,
        });
    }
    c.execute(
        "UPDATE settlement_batches SET tx_hash = $2, paid_ms = $3 WHERE batch_id = $1",
        &[&int(id), &tx_hash, &int(now_ms)],
    )
    .await
    .map_err(pg_err)?;
    c.execute(
        "UPDATE credits SET status = 'paid' WHERE batch_id = $1",
        &[&int(id)],
    )
    .await
    .map_err(pg_err)?;
    let mut per = PaidPerWorker::default();
    for row in c
        .query(
            "SELECT worker_id, net FROM credits WHERE batch_id = $1",
            &[&int(id)],
        )
        .await
        .map_err(pg_err)?
    {
        per.add(
            row.try_get(0).map_err(pg_err)?,
            row.try_get(1).map_err(pg_err)?,
        )?;
    }
    let workers: Vec<&String> = per.0.keys().collect();
    let pending = c
        .query(
            "SELECT worker_id, rewards_pending FROM workers WHERE worker_id = ANY($1) \
             ORDER BY worker_id FOR UPDATE",
            &[&workers],
        )
        .await
        .map_err(pg_err)?;
    let mut ids = Vec::with_capacity(pending.len());
    let mut left = Vec::with_capacity(pending.len());
    for row in &pending {
        let worker: String = row.try_get(0).map_err(pg_err)?;
        let Some(paid) = per.0.get(&worker) else {
            continue;
        };
        let now: String = row.try_get(1).map_err(pg_err)?;
        left.push(PaidPerWorker::left(&now, *paid)?.to_string());
        ids.push(worker);
    }
    c.execute(
        "UPDATE workers w SET rewards_pending = u.left FROM unnest($1::text[], $2::text[]) \
         AS u(id, left) WHERE w.worker_id = u.id",
        &[&ids, &left],
    )
    .await
    .map_err(pg_err)?;
    load_batch(c, id, false)
        .await?
        .map(MarkedPaid::Paid)
        .ok_or_else(|| corrupt("batch", "vanished while marked paid"))
}

impl SettlementStore for PgStore {
    fn close_batch(
        &self,
        terms: BatchTerms,
        seal: Sealer,
    ) -> BoxFuture<'_, Result<Closed, StoreError>> {
        async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_err)?;
            match close(&tx, terms, seal).await? {
                Some(Closed::New(row)) => {
                    tx.commit().await.map_err(pg_err)?;
                    Ok(Closed::New(row))
                }
                // Dropped unfinished: rolled back (the lock with it).
                Some(other) => Ok(other),
                None => Ok(Closed::Nothing),
            }
        }
        .boxed()
    }

    fn batches(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<BatchRow>, StoreError>> {
        async move {
            let client = self.client().await?;
            let sql = format!(
                "SELECT {BATCH_COLUMNS} FROM settlement_batches WHERE batch_id < $1 \
                 ORDER BY batch_id DESC LIMIT $2"
            );
            let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
            let rows = client
                .query(&stmt, &[&before.map_or(i64::MAX, int), &int(limit as u64)])
                .await
                .map_err(pg_err)?;
            rows.iter().map(settlement::batch_row).collect()
        }
        .boxed()
    }

    fn batch(&self, id: u64) -> BoxFuture<'_, Result<Option<BatchRow>, StoreError>> {
        async move {
            let client = self.client().await?;
            load_batch(&client, id, false).await
        }
        .boxed()
    }

    fn batch_leaves(
        &self,
        id: u64,
    ) -> BoxFuture<'_, Result<Vec<(WalletAddress, Amount)>, StoreError>> {
        async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT wallet, amount FROM batch_leaves WHERE batch_id = $1 \
                     ORDER BY position",
                )
                .await
                .map_err(pg_err)?;
            let rows = client.query(&stmt, &[&int(id)]).await.map_err(pg_err)?;
            rows.iter().map(settlement::leaf_row).collect()
        }
        .boxed()
    }

    fn mark_paid(
        &self,
        id: u64,
        tx_hash: String,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<MarkedPaid, StoreError>> {
        async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_err)?;
            let out = mark_paid(&tx, id, &tx_hash, now_ms).await?;
            if matches!(out, MarkedPaid::Paid(_)) {
                tx.commit().await.map_err(pg_err)?;
            }
            Ok(out)
        }
        .boxed()
    }

    fn reward_totals(&self, scope: RewardScope) -> BoxFuture<'_, Result<CreditTotals, StoreError>> {
        async move {
            let client = self.client().await?;
            let (sql, key) = match &scope {
                RewardScope::Worker(w) => (
                    "SELECT status, batch_id, net, wallet FROM credits WHERE worker_id = $1",
                    w.as_str().to_owned(),
                ),
                RewardScope::Wallet(w) => (
                    "SELECT status, batch_id, net, wallet FROM credits WHERE wallet = $1",
                    w.checksummed(),
                ),
            };
            let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
            let rows = client.query(&stmt, &[&key]).await.map_err(pg_err)?;
            let mut totals = CreditTotals::default();
            for row in &rows {
                let status: String = row.try_get(0).map_err(pg_err)?;
                let batch: Option<i64> = row.try_get(1).map_err(pg_err)?;
                let net: String = row.try_get(2).map_err(pg_err)?;
                let wallet: String = row.try_get(3).map_err(pg_err)?;
                totals.add(&status, batch, &wallet, &net)?;
            }
            Ok(totals.finish())
        }
        .boxed()
    }
}
