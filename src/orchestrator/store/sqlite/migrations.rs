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
    // 3: the task market. Times in unix milliseconds. `reward_key` is the reward zero-padded to
    // 40 digits, so TEXT order is numeric order; the listing index serves `WHERE status = ?
    // ORDER BY reward_key DESC, task_id` and its cursor, and carries the deadline and the
    // capabilities so the filters skip rows without reading the table.
    "CREATE TABLE tasks (
        task_id                TEXT PRIMARY KEY NOT NULL,
        client                 TEXT NOT NULL,
        description            TEXT NOT NULL,
        criteria               TEXT NOT NULL,
        required_capabilities  TEXT NOT NULL,
        reward                 TEXT NOT NULL,
        reward_key             TEXT NOT NULL CHECK (length(reward_key) = 40),
        asset                  TEXT NOT NULL,
        deadline_ms            INTEGER NOT NULL,
        output_format          TEXT NOT NULL,
        claim_ttl_s            INTEGER NOT NULL,
        evaluator              TEXT NOT NULL,
        pass_threshold         INTEGER NOT NULL,
        input                  TEXT,
        status                 TEXT NOT NULL CHECK (status IN ('open', 'claimed', 'submitted',
                                 'completed', 'rejected', 'disputed', 'abandoned', 'expired')),
        attempts               INTEGER NOT NULL DEFAULT 0,
        created_ms             INTEGER NOT NULL,
        updated_ms             INTEGER NOT NULL,
        claimed_by             TEXT,
        claimed_ms             INTEGER,
        claim_expiry_ms        INTEGER,
        submission_id          TEXT
    ) STRICT;
    CREATE INDEX tasks_listing ON tasks (status, reward_key DESC, task_id, deadline_ms,
        required_capabilities);
    CREATE INDEX tasks_by_holder ON tasks (claimed_by, status);
    CREATE INDEX tasks_leases ON tasks (claim_expiry_ms) WHERE status = 'claimed';
    CREATE INDEX tasks_deadlines ON tasks (deadline_ms) WHERE status IN ('open', 'claimed');
    CREATE TABLE claims (
        claim_id    INTEGER PRIMARY KEY,
        task_id     TEXT NOT NULL,
        worker_id   TEXT NOT NULL,
        attempt     INTEGER NOT NULL,
        claimed_ms  INTEGER NOT NULL,
        expiry_ms   INTEGER NOT NULL,
        ended_ms    INTEGER,
        outcome     TEXT CHECK (outcome IN ('released', 'lapsed', 'submitted', 'expired'))
    ) STRICT;
    CREATE INDEX claims_by_task ON claims (task_id, worker_id);
    CREATE TABLE submissions (
        submission_id           TEXT PRIMARY KEY NOT NULL,
        task_id                 TEXT NOT NULL UNIQUE,
        worker_id               TEXT NOT NULL,
        output                  TEXT NOT NULL,
        output_hash             TEXT NOT NULL,
        usage                   TEXT,
        duration_ms             INTEGER,
        claimed_ms              INTEGER NOT NULL,
        submitted_ms            INTEGER NOT NULL,
        evaluation_deadline_ms  INTEGER NOT NULL,
        evaluation              TEXT,
        attestation_hash        TEXT,
        evaluated_ms            INTEGER,
        auto_evaluated          INTEGER NOT NULL DEFAULT 0,
        dispute_deadline_ms     INTEGER,
        dispute_reason          TEXT,
        disputed_ms             INTEGER,
        resolution              TEXT,
        resolution_note         TEXT,
        resolved_ms             INTEGER,
        receipt_id              TEXT
    ) STRICT;
    CREATE INDEX submissions_unevaluated ON submissions (evaluation_deadline_ms)
        WHERE evaluated_ms IS NULL;
    CREATE TABLE credits (
        submission_id  TEXT PRIMARY KEY NOT NULL,
        task_id        TEXT NOT NULL,
        worker_id      TEXT NOT NULL,
        wallet         TEXT NOT NULL,
        gross          TEXT NOT NULL,
        fee            TEXT NOT NULL,
        net            TEXT NOT NULL,
        asset          TEXT NOT NULL,
        unpaid         TEXT,
        status         TEXT NOT NULL DEFAULT 'pending',
        created_ms     INTEGER NOT NULL,
        receipt_id     TEXT NOT NULL,
        receipt_hash   TEXT NOT NULL
    ) STRICT;
    CREATE INDEX credits_by_worker ON credits (worker_id, created_ms);",
    // 4: who posted a task, as the sha256 of the key sent with it (NULL: none), so the
    // poster can read its submissions.
    "ALTER TABLE tasks ADD COLUMN client_key_sha256 BLOB
        CHECK (client_key_sha256 IS NULL OR length(client_key_sha256) = 32);",
    // 5: the replica holding a worker's connection. Always NULL here (an SQLite file belongs
    // to one orchestrator); kept so both backends have the same columns, as `copy` needs.
    "ALTER TABLE workers ADD COLUMN replica_id TEXT;",
    // 6: quotas per client key and what each key used per UTC day; a worker's free-form
    // labels; the VRAM a task needs.
    "ALTER TABLE keys ADD COLUMN requests_per_minute INTEGER;
    ALTER TABLE keys ADD COLUMN tokens_per_day INTEGER;
    CREATE TABLE key_usage (
        key_sha256         BLOB NOT NULL CHECK (length(key_sha256) = 32),
        day                INTEGER NOT NULL,
        requests           INTEGER NOT NULL DEFAULT 0,
        prompt_tokens      INTEGER NOT NULL DEFAULT 0,
        completion_tokens  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (key_sha256, day)
    ) STRICT;
    ALTER TABLE workers ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN min_vram_mib INTEGER;",
    // 7: receipts in issue order, for the hash-chained export.
    "CREATE INDEX receipts_by_time ON receipts (issued_at, receipt_id);",
    // 8: what the leaderboard ranks by (docs/DISCOVERY.md, "The leaderboard"): each
    // connection's span (closed at the last heartbeat), a finished job's tokens and time to
    // first token, a task's family and metric and the metric a submission reported and its
    // evaluator confirmed; a worker's ERC-8004 agent ids.
    "CREATE TABLE presence_log (
        worker_id        TEXT NOT NULL,
        connected_at     INTEGER NOT NULL,
        disconnected_at  INTEGER,
        PRIMARY KEY (worker_id, connected_at)
    ) STRICT;
    CREATE INDEX presence_by_end ON presence_log (disconnected_at);
    CREATE TABLE agent_links (
        worker_id       TEXT NOT NULL,
        agent_registry  TEXT NOT NULL,
        agent_id        INTEGER NOT NULL,
        linked_at       INTEGER NOT NULL,
        PRIMARY KEY (worker_id, agent_registry)
    ) STRICT;
    ALTER TABLE jobs ADD COLUMN prompt_tokens INTEGER;
    ALTER TABLE jobs ADD COLUMN completion_tokens INTEGER;
    ALTER TABLE jobs ADD COLUMN ttft_ms INTEGER;
    CREATE INDEX jobs_by_time ON jobs (finished_at, worker_id);
    ALTER TABLE tasks ADD COLUMN family TEXT;
    ALTER TABLE tasks ADD COLUMN metric TEXT;
    ALTER TABLE submissions ADD COLUMN metric TEXT;
    ALTER TABLE submissions ADD COLUMN confirmed_metric TEXT;
    CREATE INDEX submissions_by_decision ON submissions (evaluated_ms);
    CREATE INDEX tasks_by_family ON tasks (family) WHERE family IS NOT NULL;",
    // 9: settlement (docs/SETTLEMENT.md, "Batches"): closed batches with the EIP-712 domain
    // they were closed under and the highest credit `seq` they cover, one leaf per wallet,
    // each batch's Merkle tree, and each credit's `seq` (its commit order; its state follows
    // from the batches, see store/settlement.rs). `seq` is nullable only because ALTER TABLE
    // cannot add a NOT NULL column without a default; `insert_credit` is the one writer of
    // credits and always sets it.
    "CREATE TABLE settlement_batches (
        batch_id            INTEGER PRIMARY KEY NOT NULL,
        watermark_ms        INTEGER NOT NULL UNIQUE,
        period_start_ms     INTEGER NOT NULL,
        asset               TEXT NOT NULL,
        token               TEXT NOT NULL,
        chain_id            INTEGER NOT NULL,
        verifying_contract  TEXT NOT NULL,
        domain_name         TEXT NOT NULL,
        domain_version      TEXT NOT NULL,
        total               TEXT NOT NULL,
        root                TEXT NOT NULL,
        credits             INTEGER NOT NULL,
        leaves              INTEGER NOT NULL,
        closed_ms           INTEGER NOT NULL,
        tx_hash             TEXT UNIQUE,
        paid_ms             INTEGER,
        max_seq             INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX batches_by_asset ON settlement_batches (asset, watermark_ms, max_seq);
    CREATE TABLE batch_leaves (
        batch_id  INTEGER NOT NULL,
        position  INTEGER NOT NULL,
        wallet    TEXT NOT NULL,
        amount    TEXT NOT NULL,
        node      INTEGER NOT NULL,
        PRIMARY KEY (batch_id, position)
    ) STRICT;
    CREATE UNIQUE INDEX batch_leaves_by_wallet ON batch_leaves (batch_id, wallet);
    CREATE TABLE batch_nodes (
        batch_id  INTEGER NOT NULL,
        node      INTEGER NOT NULL,
        hash      BLOB NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (batch_id, node)
    ) STRICT, WITHOUT ROWID;
    ALTER TABLE credits ADD COLUMN seq INTEGER;
    UPDATE credits SET seq = rowid;
    CREATE UNIQUE INDEX credits_by_seq ON credits (seq);
    CREATE INDEX credits_by_time ON credits (created_ms);
    CREATE INDEX credits_by_wallet ON credits (wallet);
    ALTER TABLE credits DROP COLUMN status;",
    // 10: metered inference (docs/SETTLEMENT.md, "Metered inference"): a credit comes from a
    // task submission or from a gateway job, exactly one (SQLite cannot relax NOT NULL in
    // place, so the table is rebuilt with every row and `seq` kept). A credit is written per
    // paid gateway job, so it touches as few b-trees as it can: `seq` is the rowid, and each
    // source's uniqueness is a partial index holding only that source's credits. And what
    // each client key was charged per UTC day, a decimal string of atomic units.
    "CREATE TABLE credits_v10 (
        submission_id  TEXT,
        task_id        TEXT,
        worker_id      TEXT NOT NULL,
        wallet         TEXT NOT NULL,
        gross          TEXT NOT NULL,
        fee            TEXT NOT NULL,
        net            TEXT NOT NULL,
        asset          TEXT NOT NULL,
        unpaid         TEXT,
        created_ms     INTEGER NOT NULL,
        receipt_id     TEXT NOT NULL,
        receipt_hash   TEXT NOT NULL,
        seq            INTEGER PRIMARY KEY NOT NULL,
        job_id         TEXT,
        CHECK ((submission_id IS NULL) <> (job_id IS NULL)),
        CHECK ((submission_id IS NULL) = (task_id IS NULL))
    ) STRICT;
    INSERT INTO credits_v10 (submission_id, task_id, worker_id, wallet, gross, fee, net, asset,
        unpaid, created_ms, receipt_id, receipt_hash, seq)
        SELECT submission_id, task_id, worker_id, wallet, gross, fee, net, asset, unpaid,
        created_ms, receipt_id, receipt_hash, seq FROM credits;
    DROP TABLE credits;
    ALTER TABLE credits_v10 RENAME TO credits;
    CREATE UNIQUE INDEX credits_by_submission ON credits (submission_id)
        WHERE submission_id IS NOT NULL;
    CREATE UNIQUE INDEX credits_by_job ON credits (job_id) WHERE job_id IS NOT NULL;
    CREATE INDEX credits_by_worker ON credits (worker_id, created_ms);
    CREATE INDEX credits_by_time ON credits (created_ms);
    CREATE INDEX credits_by_wallet ON credits (wallet);
    ALTER TABLE key_usage ADD COLUMN amount TEXT NOT NULL DEFAULT '0';",
    // 11: device keys (docs/SECURITY.md, "Signed requests"): a worker's Ed25519 public key
    // (NULL while a legacy worker still uses a token), when an admin revoked it, and the nonces
    // of its signed requests, remembered until their signatures expire.
    "ALTER TABLE workers ADD COLUMN public_key BLOB
        CHECK (public_key IS NULL OR length(public_key) = 32);
    ALTER TABLE workers ADD COLUMN revoked_at INTEGER;
    CREATE TABLE signature_nonces (
        worker_id   TEXT NOT NULL,
        nonce       TEXT NOT NULL,
        expires_ms  INTEGER NOT NULL,
        PRIMARY KEY (worker_id, nonce)
    ) STRICT, WITHOUT ROWID;",
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Migration 10 rebuilds `credits`: a version-9 database keeps every credit, with its
    /// `seq`, and from then on a credit comes from a submission or a job, exactly one.
    #[test]
    fn version_9_credits_survive_the_rebuild() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (version, sql) in (1_i64..).zip(&MIGRATIONS[..9]) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", version).unwrap();
        }
        conn.execute(
            "INSERT INTO credits (submission_id, task_id, worker_id, wallet, gross, fee, net, \
             asset, created_ms, receipt_id, receipt_hash, seq) \
             VALUES ('sub-1', 'task-1', 'gpu-1', '0xA', '10', '0', '10', 'USDC', 5, 'r', 'h', 7)",
            [],
        )
        .unwrap();
        migrate(&mut conn, Path::new(":memory:")).unwrap();
        let (sub, seq, job): (String, i64, Option<String>) = conn
            .query_row("SELECT submission_id, seq, job_id FROM credits", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((sub.as_str(), seq, job), ("sub-1", 7, None));
        let insert = |sub: Option<&str>, task: Option<&str>, job: Option<&str>, seq: i64| {
            conn.execute(
                "INSERT INTO credits (submission_id, task_id, job_id, worker_id, wallet, gross, \
                 fee, net, asset, created_ms, receipt_id, receipt_hash, seq) \
                 VALUES (?1, ?2, ?3, 'gpu-1', '0xA', '1', '0', '1', 'USDC', 6, 'r', 'h', ?4)",
                rusqlite::params![sub, task, job, seq],
            )
        };
        assert!(insert(None, None, Some("job-1"), 8).is_ok());
        assert!(insert(None, None, None, 9).is_err(), "no source");
        assert!(
            insert(Some("sub-2"), Some("t"), Some("job-2"), 10).is_err(),
            "two sources"
        );
        assert!(
            insert(Some("sub-3"), None, None, 11).is_err(),
            "a submission without its task"
        );
        assert!(
            insert(None, None, Some("job-1"), 12).is_err(),
            "a job credited twice"
        );
        let amount: String = conn
            .query_row(
                "SELECT dflt_value FROM pragma_table_info('key_usage') WHERE name = 'amount'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(amount, "'0'");
    }
}
