//! [`SettlementStore`] on `SQLite`. A close is one closure on the single writer, so closes and
//! credits are serialised by construction: a credit committed before the close is in it, one
//! committed after waits for the next batch.

use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::{SqliteStore, to_sql_int};
use crate::domain::{Amount, WalletAddress};
use crate::orchestrator::store::StoreError;
use crate::orchestrator::store::rows::corrupt;
use crate::orchestrator::store::settlement::{
    self, BATCH_COLUMNS, BatchRow, BatchTerms, Closed, CreditTotals, MarkedPaid, PaidPerWorker,
    RewardScope, Sealer, SettlementStore,
};

fn latest(conn: &Connection) -> Result<Option<BatchRow>, StoreError> {
    let sql =
        format!("SELECT {BATCH_COLUMNS} FROM settlement_batches ORDER BY batch_id DESC LIMIT 1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([], |r| Ok(settlement::batch_row(r)))
        .optional()?
        .transpose()?)
}

fn load_batch(conn: &Connection, id: u64) -> Result<Option<BatchRow>, StoreError> {
    let sql = format!("SELECT {BATCH_COLUMNS} FROM settlement_batches WHERE batch_id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![to_sql_int(id)], |r| Ok(settlement::batch_row(r)))
        .optional()?
        .transpose()?)
}

fn close(conn: &Connection, terms: BatchTerms, seal: Sealer) -> Result<Closed, StoreError> {
    let newest = latest(conn)?;
    if let Some(b) = newest.as_ref() {
        if b.terms.watermark_ms == terms.watermark_ms {
            return Ok(Closed::Existing(b.clone()));
        }
        if b.terms.watermark_ms > terms.watermark_ms {
            return Ok(Closed::Behind(b.clone()));
        }
    }
    let batch_id = newest.map_or(1, |b| b.batch_id + 1);
    let mut moved = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "UPDATE credits SET status = 'batched', batch_id = ?1 \
             WHERE status = 'pending' AND created_ms < ?2 RETURNING wallet, net, created_ms",
        )?;
        let mut rows = stmt.query(params![
            to_sql_int(batch_id),
            to_sql_int(terms.watermark_ms)
        ])?;
        while let Some(row) = rows.next()? {
            moved.push(settlement::moved_row(row)?);
        }
    }
    let Some(sealed) = seal(&moved) else {
        // Undo the move: the writer's savepoint would too, but an `Ok` must leave nothing.
        conn.prepare_cached(
            "UPDATE credits SET status = 'pending', batch_id = NULL WHERE batch_id = ?1",
        )?
        .execute(params![to_sql_int(batch_id)])?;
        return Ok(Closed::Nothing);
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
    conn.prepare_cached(
        "INSERT INTO settlement_batches (batch_id, watermark_ms, period_start_ms, asset, token, \
         chain_id, verifying_contract, domain_name, domain_version, total, root, credits, \
         leaves, closed_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        to_sql_int(batch_id),
        to_sql_int(t.watermark_ms),
        to_sql_int(row.period_start_ms),
        t.asset,
        t.token,
        to_sql_int(t.chain_id),
        t.verifying_contract,
        t.domain_name,
        t.domain_version,
        row.total.to_string(),
        row.root,
        to_sql_int(row.credits),
        to_sql_int(row.leaves),
        to_sql_int(t.closed_ms),
    ])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO batch_leaves (batch_id, position, wallet, amount) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (position, (wallet, amount)) in sealed.leaves.iter().enumerate() {
        insert.execute(params![
            to_sql_int(batch_id),
            to_sql_int(position as u64),
            wallet.checksummed(),
            amount.to_string()
        ])?;
    }
    Ok(Closed::New(row))
}

fn mark_paid(
    conn: &Connection,
    id: u64,
    tx_hash: &str,
    now_ms: u64,
) -> Result<MarkedPaid, StoreError> {
    let Some(batch) = load_batch(conn, id)? else {
        return Ok(MarkedPaid::NotFound);
    };
    if batch.tx_hash.is_some() {
        return Ok(MarkedPaid::AlreadyPaid(batch));
    }
    let other: Option<i64> = conn
        .prepare_cached("SELECT batch_id FROM settlement_batches WHERE tx_hash = ?1")?
        .query_row(params![tx_hash], |r| r.get(0))
        .optional()?;
    if let Some(other) = other {
        return Ok(MarkedPaid::TxHashUsed {
            batch_id: u64::try_from(other).map_err(|e| corrupt("batch id", e))?,
        });
    }
    conn.prepare_cached(
        "UPDATE settlement_batches SET tx_hash = ?2, paid_ms = ?3 WHERE batch_id = ?1",
    )?
    .execute(params![to_sql_int(id), tx_hash, to_sql_int(now_ms)])?;
    conn.prepare_cached("UPDATE credits SET status = 'paid' WHERE batch_id = ?1")?
        .execute(params![to_sql_int(id)])?;
    let mut per = PaidPerWorker::default();
    {
        let mut stmt =
            conn.prepare_cached("SELECT worker_id, net FROM credits WHERE batch_id = ?1")?;
        let mut rows = stmt.query(params![to_sql_int(id)])?;
        while let Some(row) = rows.next()? {
            per.add(row.get(0)?, &row.get::<_, String>(1)?)?;
        }
    }
    let mut read =
        conn.prepare_cached("SELECT rewards_pending FROM workers WHERE worker_id = ?1")?;
    let mut write =
        conn.prepare_cached("UPDATE workers SET rewards_pending = ?2 WHERE worker_id = ?1")?;
    for (worker, paid) in per.0 {
        let pending: Option<String> = read.query_row(params![worker], |r| r.get(0)).optional()?;
        if let Some(pending) = pending {
            let left = PaidPerWorker::left(&pending, paid)?;
            write.execute(params![worker, left.to_string()])?;
        }
    }
    load_batch(conn, id)?
        .map(MarkedPaid::Paid)
        .ok_or_else(|| corrupt("batch", "vanished while marked paid"))
}

impl SettlementStore for SqliteStore {
    fn close_batch(
        &self,
        terms: BatchTerms,
        seal: Sealer,
    ) -> BoxFuture<'_, Result<Closed, StoreError>> {
        self.write(move |conn| close(conn, terms, seal))
    }

    fn batches(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<BatchRow>, StoreError>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {BATCH_COLUMNS} FROM settlement_batches WHERE batch_id < ?1 \
                 ORDER BY batch_id DESC LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![
                before.map_or(i64::MAX, to_sql_int),
                to_sql_int(limit as u64)
            ])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(settlement::batch_row(row)?);
            }
            Ok(out)
        })
    }

    fn batch(&self, id: u64) -> BoxFuture<'_, Result<Option<BatchRow>, StoreError>> {
        self.read(move |conn| load_batch(conn, id))
    }

    fn batch_leaves(
        &self,
        id: u64,
    ) -> BoxFuture<'_, Result<Vec<(WalletAddress, Amount)>, StoreError>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT wallet, amount FROM batch_leaves WHERE batch_id = ?1 ORDER BY position",
            )?;
            let mut rows = stmt.query(params![to_sql_int(id)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(settlement::leaf_row(row)?);
            }
            Ok(out)
        })
    }

    fn mark_paid(
        &self,
        id: u64,
        tx_hash: String,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<MarkedPaid, StoreError>> {
        self.write(move |conn| mark_paid(conn, id, &tx_hash, now_ms))
    }

    fn reward_totals(&self, scope: RewardScope) -> BoxFuture<'_, Result<CreditTotals, StoreError>> {
        self.read(move |conn| {
            let (sql, key) = match &scope {
                RewardScope::Worker(w) => (
                    "SELECT status, batch_id, net, wallet FROM credits WHERE worker_id = ?1",
                    w.as_str().to_owned(),
                ),
                RewardScope::Wallet(w) => (
                    "SELECT status, batch_id, net, wallet FROM credits WHERE wallet = ?1",
                    w.checksummed(),
                ),
            };
            let mut stmt = conn.prepare_cached(sql)?;
            let mut rows = stmt.query(params![key])?;
            let mut totals = CreditTotals::default();
            while let Some(row) = rows.next()? {
                let status: String = row.get(0)?;
                let batch: Option<i64> = row.get(1)?;
                let net: String = row.get(2)?;
                let wallet: String = row.get(3)?;
                totals.add(&status, batch, &wallet, &net)?;
            }
            Ok(totals.finish())
        })
    }
}
