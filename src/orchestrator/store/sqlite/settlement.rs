//! [`SettlementStore`] on `SQLite`. A close or a payment is one closure on the single writer,
//! so closes and credits are serialised by construction: a credit's `seq` is one past the
//! largest when it is written, a close covers every `seq` up to the largest it sees, and a
//! credit written after it waits for the next batch. A close reads its credits and writes the
//! batch, its leaves and its tree's nodes; no credit row changes.

use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension as _, params};

use super::{SqliteStore, to_sql_int};
use crate::domain::WalletAddress;
use crate::orchestrator::store::StoreError;
use crate::orchestrator::store::rows::corrupt;
use crate::orchestrator::store::settlement::{
    self, BATCH_COLUMNS, BatchRow, BatchTerms, CREDITS_OF_BATCH, CREDITS_WITH_BATCH, Closed,
    CreditTotals, LeafRow, MarkedPaid, NextBatch, PREVIOUS_OF_ASSET, PaidPerWorker, RewardScope,
    Sealer, SettlementStore, StoredProof,
};

fn latest(conn: &Connection) -> Result<Option<BatchRow>, StoreError> {
    let sql =
        format!("SELECT {BATCH_COLUMNS} FROM settlement_batches ORDER BY batch_id DESC LIMIT 1");
    conn.prepare_cached(&sql)?
        .query_row([], |r| Ok(settlement::batch_row(r)))
        .optional()?
        .transpose()
}

fn load_batch(conn: &Connection, id: u64) -> Result<Option<BatchRow>, StoreError> {
    let sql = format!("SELECT {BATCH_COLUMNS} FROM settlement_batches WHERE batch_id = ?1");
    conn.prepare_cached(&sql)?
        .query_row(params![to_sql_int(id)], |r| Ok(settlement::batch_row(r)))
        .optional()?
        .transpose()
}

/// The watermark and `max_seq` of `asset`'s newest batch before `id` (0, 0: none).
fn previous(conn: &Connection, asset: &str, id: u64) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(conn
        .prepare_cached(PREVIOUS_OF_ASSET)?
        .query_row(params![asset, to_sql_int(id)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

/// Calls `each` with every credit batch `id` (of `asset`, covering up to `max_seq` before
/// `watermark_ms`) holds.
fn each_covered(
    conn: &Connection,
    id: u64,
    asset: &str,
    max_seq: u64,
    watermark_ms: u64,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let (before_ms, before_seq) = previous(conn, asset, id)?.unwrap_or((0, 0));
    let mut stmt = conn.prepare_cached(CREDITS_OF_BATCH)?;
    let mut rows = stmt.query(params![
        asset,
        to_sql_int(max_seq),
        to_sql_int(watermark_ms),
        before_ms,
        before_seq
    ])?;
    while let Some(row) = rows.next()? {
        each(row)?;
    }
    Ok(())
}

fn close(conn: &Connection, terms: BatchTerms, seal: Sealer) -> Result<Closed, StoreError> {
    let newest = latest(conn)?;
    let batch_id = match settlement::next_batch(newest, &terms) {
        NextBatch::Id(id) => id,
        NextBatch::None(closed) => return Ok(closed),
    };
    let max_seq: i64 = conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM credits")?
        .query_row([], |r| r.get(0))?;
    let max_seq = u64::try_from(max_seq).map_err(|e| corrupt("credit seq", e))?;
    let mut covered = Vec::new();
    each_covered(
        conn,
        batch_id,
        &terms.asset,
        max_seq,
        terms.watermark_ms,
        |row| {
            covered.push(settlement::covered_row(row)?);
            Ok(())
        },
    )?;
    let before = previous(conn, &terms.asset, batch_id)?
        .map(|(ms, _)| u64::try_from(ms).map_err(|e| corrupt("watermark", e)))
        .transpose()?;
    let Some(sealed) = seal(&covered, before)? else {
        return Ok(Closed::Nothing);
    };
    let row = BatchRow::sealed(batch_id, terms, max_seq, covered.len() as u64, &sealed);
    let t = &row.terms;
    conn.prepare_cached(
        "INSERT INTO settlement_batches (batch_id, watermark_ms, period_start_ms, asset, token, \
         chain_id, verifying_contract, domain_name, domain_version, total, root, credits, \
         leaves, closed_ms, max_seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
        to_sql_int(max_seq),
    ])?;
    let mut leaf = conn.prepare_cached(
        "INSERT INTO batch_leaves (batch_id, position, wallet, amount, node) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (position, (wallet, amount, node)) in sealed.leaves.iter().enumerate() {
        leaf.execute(params![
            to_sql_int(batch_id),
            to_sql_int(position as u64),
            wallet.checksummed(),
            amount.to_string(),
            to_sql_int(*node)
        ])?;
    }
    let mut node =
        conn.prepare_cached("INSERT INTO batch_nodes (batch_id, node, hash) VALUES (?1, ?2, ?3)")?;
    for (i, hash) in sealed.nodes.iter().enumerate() {
        node.execute(params![
            to_sql_int(batch_id),
            to_sql_int(i as u64),
            hash.as_slice()
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
    let mut per = PaidPerWorker::default();
    each_covered(
        conn,
        id,
        &batch.terms.asset,
        batch.max_seq,
        batch.terms.watermark_ms,
        |row| per.add(row.get(3)?, &row.get::<_, String>(1)?),
    )?;
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

fn leaf_proof(
    conn: &Connection,
    id: u64,
    wallet: &WalletAddress,
) -> Result<Option<StoredProof>, StoreError> {
    let leaf: Option<(String, i64)> = conn
        .prepare_cached(
            "SELECT amount, node FROM batch_leaves WHERE batch_id = ?1 AND wallet = ?2",
        )?
        .query_row(params![to_sql_int(id), wallet.checksummed()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((amount, node)) = leaf else {
        return Ok(None);
    };
    let node = u64::try_from(node).map_err(|e| corrupt("leaf node", e))?;
    let wanted = crate::domain::proof_nodes(usize::try_from(node).map_err(|e| corrupt("node", e))?);
    let mut stmt =
        conn.prepare_cached("SELECT hash FROM batch_nodes WHERE batch_id = ?1 AND node = ?2")?;
    let mut rows = Vec::with_capacity(wanted.len());
    for i in wanted {
        let hash: Vec<u8> =
            stmt.query_row(params![to_sql_int(id), to_sql_int(i as u64)], |r| r.get(0))?;
        rows.push((i as u64, hash));
    }
    let proof = settlement::assemble_proof(node, &rows)?;
    let amount = crate::domain::Amount::parse(&amount).map_err(|e| corrupt("leaf amount", e))?;
    Ok(Some((amount, proof)))
}

impl SettlementStore for SqliteStore {
    fn close_batch(
        &self,
        terms: BatchTerms,
        seal: Sealer,
    ) -> BoxFuture<'_, Result<Closed, StoreError>> {
        self.write_once(move |conn| close(conn, terms, seal))
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
        after: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<LeafRow>, StoreError>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT position, wallet, amount FROM batch_leaves WHERE batch_id = ?1 \
                 AND position > ?2 ORDER BY position LIMIT ?3",
            )?;
            let mut rows = stmt.query(params![
                to_sql_int(id),
                after.map_or(-1, to_sql_int),
                to_sql_int(limit as u64)
            ])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(settlement::leaf_row(row)?);
            }
            Ok(out)
        })
    }

    fn leaf_proof(
        &self,
        id: u64,
        wallet: WalletAddress,
    ) -> BoxFuture<'_, Result<Option<StoredProof>, StoreError>> {
        self.read(move |conn| leaf_proof(conn, id, &wallet))
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
            let (column, key) = match &scope {
                RewardScope::Worker(w) => ("c.worker_id", w.as_str().to_owned()),
                RewardScope::Wallet(w) => ("c.wallet", w.checksummed()),
            };
            let sql = format!(
                "SELECT b.batch_id, b.tx_hash IS NOT NULL, c.wallet, c.net \
                 FROM {CREDITS_WITH_BATCH} WHERE {column} = ?1"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![key])?;
            let mut totals = CreditTotals::default();
            while let Some(row) = rows.next()? {
                let batch: Option<i64> = row.get(0)?;
                let paid: Option<bool> = row.get(1)?;
                let wallet: String = row.get(2)?;
                let net: String = row.get(3)?;
                totals.add(batch, paid.unwrap_or(false), &wallet, &net)?;
            }
            Ok(totals.finish())
        })
    }
}
