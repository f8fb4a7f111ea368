//! Embedded schema migrations, applied in order on open; `PRAGMA user_version` records how many
//! have run. Append new migrations; never edit one that has shipped.

use std::path::Path;

use rusqlite::Connection;

use crate::orchestrator::store::StoreError;

/// Migration `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: workers and keys
    "CREATE TABLE workers (
        worker_id        TEXT PRIMARY KEY NOT NULL,
        wallet           TEXT NOT NULL,
        runtime          TEXT NOT NULL,
        models           TEXT NOT NULL,
        token_sha256     BLOB NOT NULL CHECK (length(token_sha256) = 32),
        hardware         TEXT,
        version          TEXT NOT NULL,
        multi_task       INTEGER NOT NULL DEFAULT 0,
        registered_at    INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        last_seen        INTEGER,
        connected_since  INTEGER,
        jobs_completed   INTEGER NOT NULL DEFAULT 0,
        jobs_failed      INTEGER NOT NULL DEFAULT 0,
        rewards_pending  TEXT NOT NULL DEFAULT '0'
    ) STRICT;
    CREATE TABLE keys (
        key_sha256  BLOB PRIMARY KEY NOT NULL CHECK (length(key_sha256) = 32),
        role        TEXT NOT NULL CHECK (role IN ('admin', 'client', 'evaluator')),
        label       TEXT,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    ) STRICT;",
    // 2: finished gateway jobs and receipts; workers found by token hash (worker channel auth)
    "CREATE TABLE jobs (
        job_id       TEXT PRIMARY KEY NOT NULL,
        worker_id    TEXT NOT NULL,
        model        TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'cancelled')),
        error_code   TEXT,
        receipt_id   TEXT,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX jobs_by_worker ON jobs (worker_id, finished_at);
    CREATE TABLE receipts (
        receipt_id    TEXT PRIMARY KEY NOT NULL,
        receipt_hash  TEXT NOT NULL UNIQUE,
        kind          TEXT NOT NULL,
        worker_id     TEXT NOT NULL,
        job_id        TEXT UNIQUE,
        issued_at     INTEGER NOT NULL,
        body          TEXT NOT NULL
    ) STRICT;
    CREATE INDEX receipts_by_worker ON receipts (worker_id, issued_at);
    CREATE INDEX workers_by_token ON workers (token_sha256);",
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Applies the pending migrations, each in its own transaction with its version bump.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > latest() {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: current,
            supported: latest(),
        });
    }
    for (version, sql) in (1_i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "database migrated");
    }
    Ok(())
}
