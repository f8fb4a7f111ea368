//! [`SettlementStore`] on PostgreSQL. A close takes an exclusive lock on
//! `settlement_batches` (closes from any number of replicas run one at a time) and a SHARE
//! lock on `credits`: it waits for every transaction writing a credit to finish and holds off
//! new ones until it commits, so every `seq` up to the largest it reads is committed and no
//! later credit can take a smaller one. A close reads its credits (streamed) and writes the
//! batch, its leaves and its tree's nodes; no credit row changes.

use alloy_primitives::B256;
use futures::future::BoxFuture;
use futures::{FutureExt as _, TryStreamExt as _, pin_mut};
use tokio_postgres::types::ToSql;

use super::{PgStore, int, pg_err};
use crate::domain::{Amount, WalletAddress};
use crate::orchestrator::store::StoreError;
use crate::orchestrator::store::rows::corrupt;
use crate::orchestrator::store::settlement::{
    self, BATCH_COLUMNS, BatchRow, BatchTerms, CREDITS_OF_BATCH, CREDITS_WITH_BATCH, Closed,
    CreditTotals, LeafRow, MarkedPaid, NextBatch, PREVIOUS_OF_ASSET, PaidPerWorker, RewardScope,
    Sealed, Sealer, SettlementStore, StoredProof, pg,
};

type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// A deadlock (40P01) or serialization failure (40001): the transaction was rolled back and
/// may be run again.
fn aborted_for_a_retry(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend(why)
        if why.starts_with("PostgreSQL 40P01") || why.starts_with("PostgreSQL 40001"))
}

fn uint(v: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|e| corrupt(what, e))
}

async fn load_batch(
    c: &impl deadpool_postgres::GenericClient,
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

async fn previous(tx: &Tx<'_>, asset: &str, id: u64) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(tx
        .query_opt(&pg(PREVIOUS_OF_ASSET), &[&asset, &int(id)])
        .await
        .map_err(pg_err)?
        .map(|r| (r.get(0), r.get(1))))
}

/// Calls `each` with every credit batch `id` holds (see [`CREDITS_OF_BATCH`]), streamed.
async fn each_covered(
    tx: &Tx<'_>,
    id: u64,
    asset: &str,
    max_seq: u64,
    watermark_ms: u64,
    mut each: impl FnMut(&tokio_postgres::Row) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let (before_ms, before_seq) = previous(tx, asset, id).await?.unwrap_or((0, 0));
    let stmt = tx.prepare(&pg(CREDITS_OF_BATCH)).await.map_err(pg_err)?;
    let params: [&(dyn ToSql + Sync); 5] = [
        &asset,
        &int(max_seq),
        &int(watermark_ms),
        &before_ms,
        &before_seq,
    ];
    let rows = tx
        .query_raw(&stmt, params.iter().copied())
        .await
        .map_err(pg_err)?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await.map_err(pg_err)? {
        each(&row)?;
    }
    Ok(())
}

async fn close(tx: &Tx<'_>, terms: BatchTerms, seal: Sealer) -> Result<Closed, StoreError> {
    tx.batch_execute(
        "LOCK TABLE settlement_batches IN EXCLUSIVE MODE; LOCK TABLE credits IN SHARE MODE",
    )
    .await
    .map_err(pg_err)?;
    let sql =
        format!("SELECT {BATCH_COLUMNS} FROM settlement_batches ORDER BY batch_id DESC LIMIT 1");
    let newest = tx
        .query_opt(&sql, &[])
        .await
        .map_err(pg_err)?
        .map(|r| settlement::batch_row(&r))
        .transpose()?;
    let batch_id = match settlement::next_batch(newest, &terms) {
        NextBatch::Id(id) => id,
        NextBatch::None(closed) => return Ok(closed),
    };
    let max_seq: i64 = tx
        .query_one("SELECT coalesce(max(seq), 0)::bigint FROM credits", &[])
        .await
        .map_err(pg_err)?
        .get(0);
    let max_seq = uint(max_seq, "credit seq")?;
    let mut covered = Vec::new();
    each_covered(
        tx,
        batch_id,
        &terms.asset,
        max_seq,
        terms.watermark_ms,
        |row| {
            covered.push(settlement::covered_row(row)?);
            Ok(())
        },
    )
    .await?;
    let before = previous(tx, &terms.asset, batch_id)
        .await?
        .map(|(ms, _)| uint(ms, "watermark"))
        .transpose()?;
    // Adding up and hashing a large batch is CPU work: off the async threads.
    let sealed =
        tokio::task::spawn_blocking(move || seal(&covered, before).map(|s| (s, covered.len())))
            .await
            .map_err(|e| StoreError::Backend(format!("sealing a batch: {e}")))??;
    let (Some(sealed), count) = sealed else {
        return Ok(Closed::Nothing);
    };
    let row = BatchRow::sealed(batch_id, terms, max_seq, count as u64, &sealed);
    write_batch(tx, &row, &sealed).await?;
    Ok(Closed::New(row))
}

/// Writes a new batch's row, its leaves and its tree's nodes.
async fn write_batch(tx: &Tx<'_>, row: &BatchRow, sealed: &Sealed) -> Result<(), StoreError> {
    let t = &row.terms;
    tx.execute(
        "INSERT INTO settlement_batches (batch_id, watermark_ms, period_start_ms, asset, token, \
         chain_id, verifying_contract, domain_name, domain_version, total, root, credits, \
         leaves, closed_ms, max_seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        &[
            &int(row.batch_id),
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
            &int(row.max_seq),
        ],
    )
    .await
    .map_err(pg_err)?;
    let positions: Vec<i64> = (0..sealed.leaves.len()).map(|p| int(p as u64)).collect();
    let wallets: Vec<String> = sealed.leaves.iter().map(|l| l.0.checksummed()).collect();
    let amounts: Vec<String> = sealed.leaves.iter().map(|l| l.1.to_string()).collect();
    let nodes: Vec<i64> = sealed.leaves.iter().map(|l| int(l.2)).collect();
    tx.execute(
        "INSERT INTO batch_leaves (batch_id, position, wallet, amount, node) \
         SELECT $1, p, w, a, n FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[]) \
         AS l(p, w, a, n)",
        &[&int(row.batch_id), &positions, &wallets, &amounts, &nodes],
    )
    .await
    .map_err(pg_err)?;
    let hashes: Vec<&[u8]> = sealed.nodes.iter().map(B256::as_slice).collect();
    tx.execute(
        "INSERT INTO batch_nodes (batch_id, node, hash) \
         SELECT $1, n - 1, h FROM unnest($2::bytea[]) WITH ORDINALITY AS t(h, n)",
        &[&int(row.batch_id), &hashes],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

async fn mark_paid(
    tx: &Tx<'_>,
    id: u64,
    tx_hash: &str,
    now_ms: u64,
) -> Result<MarkedPaid, StoreError> {
    let Some(batch) = load_batch(tx, id, true).await? else {
        return Ok(MarkedPaid::NotFound);
    };
    if batch.tx_hash.is_some() {
        return Ok(MarkedPaid::AlreadyPaid(batch));
    }
    let other = tx
        .query_opt(
            "SELECT batch_id FROM settlement_batches WHERE tx_hash = $1",
            &[&tx_hash],
        )
        .await
        .map_err(pg_err)?;
    if let Some(other) = other {
        return Ok(MarkedPaid::TxHashUsed {
            batch_id: uint(other.get(0), "batch id")?,
        });
    }
    tx.execute(
        "UPDATE settlement_batches SET tx_hash = $2, paid_ms = $3 WHERE batch_id = $1",
        &[&int(id), &tx_hash, &int(now_ms)],
    )
    .await
    .map_err(pg_err)?;
    let mut per = PaidPerWorker::default();
    each_covered(
        tx,
        id,
        &batch.terms.asset,
        batch.max_seq,
        batch.terms.watermark_ms,
        |row| {
            per.add(
                row.try_get(3).map_err(pg_err)?,
                row.try_get(1).map_err(pg_err)?,
            )
        },
    )
    .await?;
    let workers: Vec<&String> = per.0.keys().collect();
    let pending = tx
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
    tx.execute(
        "UPDATE workers w SET rewards_pending = u.owed FROM unnest($1::text[], $2::text[]) \
         AS u(id, owed) WHERE w.worker_id = u.id",
        &[&ids, &left],
    )
    .await
    .map_err(pg_err)?;
    load_batch(tx, id, false)
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
            let closed = close(&tx, terms, seal).await?;
            if matches!(closed, Closed::New(_)) {
                tx.commit().await.map_err(pg_err)?;
            }
            // Otherwise dropped unfinished: rolled back, the locks with it.
            Ok(closed)
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
        after: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<LeafRow>, StoreError>> {
        async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT position, wallet, amount FROM batch_leaves WHERE batch_id = $1 \
                     AND position > $2 ORDER BY position LIMIT $3",
                )
                .await
                .map_err(pg_err)?;
            let rows = client
                .query(
                    &stmt,
                    &[&int(id), &after.map_or(-1, int), &int(limit as u64)],
                )
                .await
                .map_err(pg_err)?;
            rows.iter().map(settlement::leaf_row).collect()
        }
        .boxed()
    }

    fn leaf_proof(
        &self,
        id: u64,
        wallet: WalletAddress,
    ) -> BoxFuture<'_, Result<Option<StoredProof>, StoreError>> {
        async move {
            let client = self.client().await?;
            let leaf = client
                .query_opt(
                    "SELECT amount, node FROM batch_leaves WHERE batch_id = $1 AND wallet = $2",
                    &[&int(id), &wallet.checksummed()],
                )
                .await
                .map_err(pg_err)?;
            let Some(leaf) = leaf else {
                return Ok(None);
            };
            let amount: String = leaf.try_get(0).map_err(pg_err)?;
            let node = uint(leaf.try_get(1).map_err(pg_err)?, "leaf node")?;
            let wanted: Vec<i64> = crate::domain::proof_nodes(
                usize::try_from(node).map_err(|e| corrupt("leaf node", e))?,
            )
            .into_iter()
            .map(|i| int(i as u64))
            .collect();
            let rows = client
                .query(
                    "SELECT node, hash FROM batch_nodes WHERE batch_id = $1 AND node = ANY($2)",
                    &[&int(id), &wanted],
                )
                .await
                .map_err(pg_err)?;
            let rows = rows
                .iter()
                .map(|r| {
                    Ok((
                        uint(r.try_get(0).map_err(pg_err)?, "node")?,
                        r.try_get(1).map_err(pg_err)?,
                    ))
                })
                .collect::<Result<Vec<(u64, Vec<u8>)>, StoreError>>()?;
            let proof = settlement::assemble_proof(node, &rows)?;
            let amount = Amount::parse(&amount).map_err(|e| corrupt("leaf amount", e))?;
            Ok(Some((amount, proof)))
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
            // It locks every paid worker's row; the sweeper's auto-evaluations lock theirs in
            // submission order, so the two can deadlock. PostgreSQL then aborts one: the whole
            // payment rolled back, it is simply tried again.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut client = self.client().await?;
                let tx = client.transaction().await.map_err(pg_err)?;
                let out = match mark_paid(&tx, id, &tx_hash, now_ms).await {
                    Ok(out) => out,
                    Err(e) if attempt < 3 && aborted_for_a_retry(&e) => continue,
                    Err(e) => return Err(e),
                };
                if matches!(out, MarkedPaid::Paid(_)) {
                    tx.commit().await.map_err(pg_err)?;
                }
                return Ok(out);
            }
        }
        .boxed()
    }

    fn reward_totals(&self, scope: RewardScope) -> BoxFuture<'_, Result<CreditTotals, StoreError>> {
        async move {
            let client = self.client().await?;
            let (column, key) = match &scope {
                RewardScope::Worker(w) => ("c.worker_id", w.as_str().to_owned()),
                RewardScope::Wallet(w) => ("c.wallet", w.checksummed()),
            };
            let sql = format!(
                "SELECT b.batch_id, b.tx_hash IS NOT NULL, c.wallet, c.net \
                 FROM {CREDITS_WITH_BATCH} WHERE {column} = $1"
            );
            let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
            let params: [&(dyn ToSql + Sync); 1] = [&key];
            let rows = client
                .query_raw(&stmt, params.iter().copied())
                .await
                .map_err(pg_err)?;
            pin_mut!(rows);
            let mut totals = CreditTotals::default();
            while let Some(row) = rows.try_next().await.map_err(pg_err)? {
                let batch: Option<i64> = row.try_get(0).map_err(pg_err)?;
                let paid: Option<bool> = row.try_get(1).map_err(pg_err)?;
                let wallet: String = row.try_get(2).map_err(pg_err)?;
                let net: String = row.try_get(3).map_err(pg_err)?;
                totals.add(batch, paid.unwrap_or(false), &wallet, &net)?;
            }
            Ok(totals.finish())
        }
        .boxed()
    }
}
