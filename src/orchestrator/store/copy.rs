//! `basis orchestrator copy`: moves a single-node deployment's `SQLite` file into an empty
//! PostgreSQL database, in one PostgreSQL transaction that commits only after the copy is
//! verified: every table's row count, and the ledger (each worker's `rewards_pending`, and
//! the sum of its credits' net amounts) read back from the target equal the source's.
//!
//! Both schemas hold the same tables and columns (store/postgres/migrations.rs mirrors
//! store/sqlite/migrations.rs), so each row is copied column by column, its value converted to
//! the target column's type (`INTEGER` → `BIGINT`, `INTEGER` 0/1 → `BOOLEAN`, `BLOB` →
//! `BYTEA`). A target that already holds any row is refused: nothing is merged.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use tokio_postgres::types::ToSql;

use super::postgres::{DatabaseUrl, PgStore};
use super::{SqliteStore, StoreError};
use crate::domain::Amount;

/// The tables, parents first.
pub const TABLES: [&str; 14] = [
    "workers",
    "presence_log",
    "agent_links",
    "keys",
    "key_usage",
    "jobs",
    "receipts",
    "tasks",
    "claims",
    "submissions",
    "credits",
    "settlement_batches",
    "batch_leaves",
    "batch_nodes",
];

/// Why nothing was copied.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the target database already holds data ({table}: {rows} rows); copy only into an empty \
         database"
    )]
    TargetNotEmpty { table: &'static str, rows: i64 },
    #[error("the copy does not match its source ({0}); nothing was committed")]
    Mismatch(String),
    #[error("column {table}.{column} has a type the copy does not know ({data_type})")]
    UnknownType {
        table: &'static str,
        column: String,
        data_type: String,
    },
}

/// What was copied: each table's row count, and the ledger's total pending rewards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub rows: Vec<(&'static str, u64)>,
    pub pending_total: Amount,
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(sqlite_err)`
fn sqlite_err(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("SQLite: {e}"))
}

fn pg(e: tokio_postgres::Error) -> StoreError {
    super::postgres::pg_err(e)
}

/// The ledger as both sides must agree on it: per worker, pending rewards and the sum of its
/// credits' net amounts.
type Ledger = BTreeMap<String, (Amount, Amount)>;

fn add(a: Amount, text: &str, what: &str) -> Result<Amount, CopyError> {
    let v = Amount::parse(text).map_err(|e| CopyError::Mismatch(format!("{what}: {e}")))?;
    a.checked_add(v)
        .ok_or_else(|| CopyError::Mismatch(format!("{what}: overflow")))
}

fn sqlite_ledger(conn: &Connection) -> Result<Ledger, CopyError> {
    let mut ledger = Ledger::new();
    let mut stmt = conn
        .prepare("SELECT worker_id, rewards_pending FROM workers")
        .map_err(sqlite_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(sqlite_err)?;
    for row in rows {
        let (id, pending) = row.map_err(sqlite_err)?;
        ledger.insert(
            id,
            (
                add(Amount::ZERO, &pending, "rewards_pending")?,
                Amount::ZERO,
            ),
        );
    }
    let mut stmt = conn
        .prepare("SELECT worker_id, net FROM credits")
        .map_err(sqlite_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(sqlite_err)?;
    for row in rows {
        let (id, net) = row.map_err(sqlite_err)?;
        let entry = ledger.entry(id).or_insert((Amount::ZERO, Amount::ZERO));
        entry.1 = add(entry.1, &net, "credit")?;
    }
    Ok(ledger)
}

async fn pg_ledger(tx: &tokio_postgres::Transaction<'_>) -> Result<Ledger, CopyError> {
    let mut ledger = Ledger::new();
    for row in tx
        .query("SELECT worker_id, rewards_pending FROM workers", &[])
        .await
        .map_err(pg)?
    {
        let pending: String = row.get(1);
        ledger.insert(
            row.get(0),
            (
                add(Amount::ZERO, &pending, "rewards_pending")?,
                Amount::ZERO,
            ),
        );
    }
    for row in tx
        .query("SELECT worker_id, net FROM credits", &[])
        .await
        .map_err(pg)?
    {
        let net: String = row.get(1);
        let entry = ledger
            .entry(row.get(0))
            .or_insert((Amount::ZERO, Amount::ZERO));
        entry.1 = add(entry.1, &net, "credit")?;
    }
    Ok(ledger)
}

/// One `SQLite` value as a parameter for a target column of `data_type`.
fn param(
    table: &'static str,
    column: &str,
    data_type: &str,
    value: Value,
) -> Result<Box<dyn ToSql + Sync + Send>, CopyError> {
    let bad = |what: &str| {
        CopyError::Mismatch(format!(
            "{table}.{column}: a {what} cannot go into {data_type}"
        ))
    };
    Ok(match (data_type, value) {
        ("bigint", Value::Integer(i)) => Box::new(i),
        ("bigint", Value::Null) => Box::new(None::<i64>),
        ("integer", Value::Integer(i)) => {
            Box::new(i32::try_from(i).map_err(|_| bad("large integer"))?)
        }
        ("integer", Value::Null) => Box::new(None::<i32>),
        ("boolean", Value::Integer(i)) => Box::new(i != 0),
        ("boolean", Value::Null) => Box::new(None::<bool>),
        ("text", Value::Text(s)) => Box::new(s),
        ("text", Value::Null) => Box::new(None::<String>),
        ("bytea", Value::Blob(b)) => Box::new(b),
        ("bytea", Value::Null) => Box::new(None::<Vec<u8>>),
        ("bigint" | "integer" | "boolean" | "text" | "bytea", _) => return Err(bad("value")),
        (other, _) => {
            return Err(CopyError::UnknownType {
                table,
                column: column.to_owned(),
                data_type: other.to_owned(),
            });
        }
    })
}

/// Copies `table`'s rows; returns how many.
async fn copy_table(
    source: &Connection,
    tx: &tokio_postgres::Transaction<'_>,
    table: &'static str,
) -> Result<u64, CopyError> {
    let columns: Vec<(String, String)> = tx
        .query(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let list = names.join(", ");
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {table} ({list}) VALUES ({})",
            placeholders.join(", ")
        ))
        .await
        .map_err(pg)?;
    let mut stmt = source
        .prepare(&format!("SELECT {list} FROM {table}"))
        .map_err(sqlite_err)?;
    let mut rows = stmt.query([]).map_err(sqlite_err)?;
    let mut copied = 0u64;
    while let Some(row) = rows.next().map_err(sqlite_err)? {
        let mut params = Vec::with_capacity(columns.len());
        for (i, (name, data_type)) in columns.iter().enumerate() {
            let value: Value = row.get(i).map_err(sqlite_err)?;
            params.push(param(table, name, data_type, value)?);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        tx.execute(&insert, &refs).await.map_err(pg)?;
        copied += 1;
    }
    Ok(copied)
}

/// Copies the `SQLite` database at `from` into the empty PostgreSQL database `to` (see the
/// module doc).
pub async fn sqlite_to_postgres(from: &Path, to: &DatabaseUrl) -> Result<CopyReport, CopyError> {
    // Opening migrates the source to this build's schema, the one the target gets too.
    let path = from.to_path_buf();
    tokio::task::spawn_blocking(move || SqliteStore::open(&path).map(drop))
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
    let source =
        Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sqlite_err)?;
    let target = PgStore::connect(to.expose(), 1).await?;
    let mut client = target.client().await?;
    let tx = client.transaction().await.map_err(pg)?;
    for table in TABLES {
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .map_err(pg)?
            .get(0);
        if rows > 0 {
            return Err(CopyError::TargetNotEmpty { table, rows });
        }
    }
    let mut report = Vec::new();
    for table in TABLES {
        let copied = copy_table(&source, &tx, table).await?;
        let source_rows: i64 = source
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(sqlite_err)?;
        let target_rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .map_err(pg)?
            .get(0);
        if i64::try_from(copied).ok() != Some(source_rows) || target_rows != source_rows {
            return Err(CopyError::Mismatch(format!(
                "{table}: {source_rows} rows in the source, {target_rows} in the target"
            )));
        }
        report.push((table, copied));
    }
    // Claims keep their ids; the sequence continues after the largest.
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('claims', 'claim_id'), \
         COALESCE((SELECT max(claim_id) FROM claims), 0) + 1, false)",
        &[],
    )
    .await
    .map_err(pg)?;
    // So do credits' `seq`s (their commit order, which settlement batches refer to).
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('credits', 'seq'), \
         COALESCE((SELECT max(seq) FROM credits), 0) + 1, false)",
        &[],
    )
    .await
    .map_err(pg)?;
    let expected = sqlite_ledger(&source)?;
    let copied = pg_ledger(&tx).await?;
    if expected != copied {
        return Err(CopyError::Mismatch("the ledger's totals differ".into()));
    }
    let pending_total = expected
        .values()
        .try_fold(Amount::ZERO, |sum, (pending, _)| sum.checked_add(*pending))
        .ok_or_else(|| CopyError::Mismatch("pending rewards overflow".into()))?;
    tx.commit().await.map_err(pg)?;
    Ok(CopyReport {
        rows: report,
        pending_total,
    })
}
