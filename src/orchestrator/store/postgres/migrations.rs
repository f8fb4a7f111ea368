//! The PostgreSQL schema as versioned migrations, applied in order when a store connects;
//! `basis_schema.version` records how many have run. Several replicas may start at once: the
//! migrations run under a transaction-scoped advisory lock, so exactly one applies each.
//! Append new migrations; never edit one that has shipped.
//!
//! The tables mirror the `SQLite` schema (store/sqlite/migrations.rs) column for column, with
//! PostgreSQL's types: `BIGINT` times and counters, `BYTEA` hashes, `BOOLEAN` flags, JSON kept
//! as `TEXT` (the row mapping is shared in spirit: the same strings round-trip). Ids and the
//! reward key are `COLLATE "C"`, so ordering and cursors are byte order on every locale.

use deadpool_postgres::Object;

use super::pg_err;
use crate::orchestrator::store::StoreError;

/// The advisory lock key migrations run under (any fixed number; "basis" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_6173_6973;

/// Migration `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the whole schema of SQLite's migrations 1 to 4.
    r#"CREATE TABLE workers (
        worker_id        TEXT COLLATE "C" PRIMARY KEY,
        wallet           TEXT NOT NULL,
        runtime          TEXT NOT NULL,
        models           TEXT NOT NULL,
        token_sha256     BYTEA NOT NULL CHECK (length(token_sha256) = 32),
        hardware         TEXT,
        version          TEXT NOT NULL,
        multi_task       BOOLEAN NOT NULL DEFAULT FALSE,
        registered_at    BIGINT NOT NULL,
        updated_at       BIGINT NOT NULL,
        last_seen        BIGINT,
        connected_since  BIGINT,
        jobs_completed   BIGINT NOT NULL DEFAULT 0,
        jobs_failed      BIGINT NOT NULL DEFAULT 0,
        rewards_pending  TEXT NOT NULL DEFAULT '0'
    );
    CREATE INDEX workers_by_token ON workers (token_sha256);
    CREATE TABLE keys (
        key_sha256  BYTEA PRIMARY KEY CHECK (length(key_sha256) = 32),
        role        TEXT NOT NULL CHECK (role IN ('admin', 'client', 'evaluator')),
        label       TEXT,
        created_at  BIGINT NOT NULL,
        revoked_at  BIGINT
    );
    CREATE TABLE jobs (
        job_id       TEXT PRIMARY KEY,
        worker_id    TEXT NOT NULL,
        model        TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'cancelled')),
        error_code   TEXT,
        receipt_id   TEXT,
        started_at   BIGINT NOT NULL,
        finished_at  BIGINT NOT NULL
    );
    CREATE INDEX jobs_by_worker ON jobs (worker_id, finished_at);
    CREATE TABLE receipts (
        receipt_id    TEXT PRIMARY KEY,
        receipt_hash  TEXT NOT NULL UNIQUE,
        kind          TEXT NOT NULL,
        worker_id     TEXT NOT NULL,
        job_id        TEXT UNIQUE,
        issued_at     BIGINT NOT NULL,
        body          TEXT NOT NULL
    );
    CREATE INDEX receipts_by_worker ON receipts (worker_id, issued_at);
    CREATE TABLE tasks (
        task_id                TEXT COLLATE "C" PRIMARY KEY,
        client                 TEXT NOT NULL,
        description            TEXT NOT NULL,
        criteria               TEXT NOT NULL,
        required_capabilities  TEXT NOT NULL,
        reward                 TEXT NOT NULL,
        reward_key             TEXT COLLATE "C" NOT NULL CHECK (length(reward_key) = 40),
        asset                  TEXT NOT NULL,
        deadline_ms            BIGINT NOT NULL,
        output_format          TEXT NOT NULL,
        claim_ttl_s            BIGINT NOT NULL,
        evaluator              TEXT NOT NULL,
        pass_threshold         BIGINT NOT NULL,
        input                  TEXT,
        status                 TEXT NOT NULL CHECK (status IN ('open', 'claimed', 'submitted',
                                 'completed', 'rejected', 'disputed', 'abandoned', 'expired')),
        attempts               BIGINT NOT NULL DEFAULT 0,
        created_ms             BIGINT NOT NULL,
        updated_ms             BIGINT NOT NULL,
        claimed_by             TEXT,
        claimed_ms             BIGINT,
        claim_expiry_ms        BIGINT,
        submission_id          TEXT,
        client_key_sha256      BYTEA CHECK (client_key_sha256 IS NULL
                                 OR length(client_key_sha256) = 32)
    );
    CREATE INDEX tasks_listing ON tasks (status, reward_key DESC, task_id);
    CREATE INDEX tasks_by_holder ON tasks (claimed_by, status);
    CREATE INDEX tasks_leases ON tasks (claim_expiry_ms) WHERE status = 'claimed';
    CREATE INDEX tasks_deadlines ON tasks (deadline_ms) WHERE status IN ('open', 'claimed');
    CREATE TABLE claims (
        claim_id    BIGSERIAL PRIMARY KEY,
        task_id     TEXT NOT NULL,
        worker_id   TEXT NOT NULL,
        attempt     BIGINT NOT NULL,
        claimed_ms  BIGINT NOT NULL,
        expiry_ms   BIGINT NOT NULL,
        ended_ms    BIGINT,
        outcome     TEXT CHECK (outcome IN ('released', 'lapsed', 'submitted', 'expired'))
    );
    CREATE INDEX claims_by_task ON claims (task_id, worker_id);
    CREATE TABLE submissions (
        submission_id           TEXT PRIMARY KEY,
        task_id                 TEXT NOT NULL UNIQUE,
        worker_id               TEXT NOT NULL,
        output                  TEXT NOT NULL,
        output_hash             TEXT NOT NULL,
        usage                   TEXT,
        duration_ms             BIGINT,
        claimed_ms              BIGINT NOT NULL,
        submitted_ms            BIGINT NOT NULL,
        evaluation_deadline_ms  BIGINT NOT NULL,
        evaluation              TEXT,
        attestation_hash        TEXT,
        evaluated_ms            BIGINT,
        auto_evaluated          BOOLEAN NOT NULL DEFAULT FALSE,
        dispute_deadline_ms     BIGINT,
        dispute_reason          TEXT,
        disputed_ms             BIGINT,
        resolution              TEXT,
        resolution_note         TEXT,
        resolved_ms             BIGINT,
        receipt_id              TEXT
    );
    CREATE INDEX submissions_unevaluated ON submissions (evaluation_deadline_ms)
        WHERE evaluated_ms IS NULL;
    CREATE TABLE credits (
        submission_id  TEXT PRIMARY KEY,
        task_id        TEXT NOT NULL,
        worker_id      TEXT NOT NULL,
        wallet         TEXT NOT NULL,
        gross          TEXT NOT NULL,
        fee            TEXT NOT NULL,
        net            TEXT NOT NULL,
        asset          TEXT NOT NULL,
        unpaid         TEXT,
        status         TEXT NOT NULL DEFAULT 'pending',
        created_ms     BIGINT NOT NULL,
        receipt_id     TEXT NOT NULL,
        receipt_hash   TEXT NOT NULL
    );
    CREATE INDEX credits_by_worker ON credits (worker_id, created_ms);"#,
    // 2: replicas: where each is reached, and which one holds each worker's connection
    // (SQLite's migration 5 adds the same column, always NULL there).
    r#"CREATE TABLE replicas (
        replica_id    TEXT COLLATE "C" PRIMARY KEY,
        internal_url  TEXT NOT NULL,
        seen_at       BIGINT NOT NULL
    );
    ALTER TABLE workers ADD COLUMN replica_id TEXT COLLATE "C";
    CREATE INDEX workers_by_replica ON workers (replica_id) WHERE connected_since IS NOT NULL;"#,
    // 3: SQLite's migration 6: quotas per client key, usage per key and UTC day, worker
    // labels, the VRAM a task needs.
    "ALTER TABLE keys ADD COLUMN requests_per_minute BIGINT;
    ALTER TABLE keys ADD COLUMN tokens_per_day BIGINT;
    CREATE TABLE key_usage (
        key_sha256         BYTEA NOT NULL CHECK (length(key_sha256) = 32),
        day                BIGINT NOT NULL,
        requests           BIGINT NOT NULL DEFAULT 0,
        prompt_tokens      BIGINT NOT NULL DEFAULT 0,
        completion_tokens  BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (key_sha256, day)
    );
    ALTER TABLE workers ADD COLUMN labels TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN min_vram_mib BIGINT;",
    // 4: SQLite's migration 7: receipts in issue order, for the export.
    "CREATE INDEX receipts_by_time ON receipts (issued_at, receipt_id);",
    // 5: SQLite's migration 8: connection spans, job tokens and time to first token, task
    // families and metrics, ERC-8004 agent ids.
    r#"CREATE TABLE presence_log (
        worker_id        TEXT COLLATE "C" NOT NULL,
        connected_at     BIGINT NOT NULL,
        disconnected_at  BIGINT,
        PRIMARY KEY (worker_id, connected_at)
    );
    CREATE INDEX presence_by_end ON presence_log (disconnected_at);
    CREATE TABLE agent_links (
        worker_id       TEXT COLLATE "C" NOT NULL,
        agent_registry  TEXT COLLATE "C" NOT NULL,
        agent_id        BIGINT NOT NULL,
        linked_at       BIGINT NOT NULL,
        PRIMARY KEY (worker_id, agent_registry)
    );
    ALTER TABLE jobs ADD COLUMN prompt_tokens BIGINT;
    ALTER TABLE jobs ADD COLUMN completion_tokens BIGINT;
    ALTER TABLE jobs ADD COLUMN ttft_ms BIGINT;
    CREATE INDEX jobs_by_time ON jobs (finished_at, worker_id);
    ALTER TABLE tasks ADD COLUMN family TEXT;
    ALTER TABLE tasks ADD COLUMN metric TEXT;
    ALTER TABLE submissions ADD COLUMN metric TEXT;
    ALTER TABLE submissions ADD COLUMN confirmed_metric TEXT;
    CREATE INDEX submissions_by_decision ON submissions (evaluated_ms);
    CREATE INDEX tasks_by_family ON tasks (family) WHERE family IS NOT NULL;"#,
    // 6: SQLite's migration 9: settlement batches, their leaves and trees, each credit's
    // `seq` (a sequence: a close takes a SHARE lock on credits, so every `seq` it sees below
    // its `max_seq` is committed). The sequence must keep CACHE 1 (the default): a session
    // caching values could give a credit committing later a smaller `seq`.
    r#"CREATE TABLE settlement_batches (
        batch_id            BIGINT PRIMARY KEY NOT NULL,
        watermark_ms        BIGINT NOT NULL UNIQUE,
        period_start_ms     BIGINT NOT NULL,
        asset               TEXT NOT NULL,
        token               TEXT NOT NULL,
        chain_id            BIGINT NOT NULL,
        verifying_contract  TEXT NOT NULL,
        domain_name         TEXT NOT NULL,
        domain_version      TEXT NOT NULL,
        total               TEXT NOT NULL,
        root                TEXT NOT NULL,
        credits             BIGINT NOT NULL,
        leaves              BIGINT NOT NULL,
        closed_ms           BIGINT NOT NULL,
        tx_hash             TEXT COLLATE "C" UNIQUE,
        paid_ms             BIGINT,
        max_seq             BIGINT NOT NULL
    );
    CREATE INDEX batches_by_asset ON settlement_batches (asset, watermark_ms, max_seq)
        INCLUDE (batch_id);
    CREATE TABLE batch_leaves (
        batch_id  BIGINT NOT NULL,
        position  BIGINT NOT NULL,
        wallet    TEXT COLLATE "C" NOT NULL,
        amount    TEXT NOT NULL,
        node      BIGINT NOT NULL,
        PRIMARY KEY (batch_id, position)
    );
    CREATE UNIQUE INDEX batch_leaves_by_wallet ON batch_leaves (batch_id, wallet);
    CREATE TABLE batch_nodes (
        batch_id  BIGINT NOT NULL,
        node      BIGINT NOT NULL,
        hash      BYTEA NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (batch_id, node)
    );
    ALTER TABLE credits ADD COLUMN seq BIGSERIAL;
    CREATE UNIQUE INDEX credits_by_seq ON credits (seq);
    CREATE INDEX credits_by_time ON credits (created_ms);
    CREATE INDEX credits_by_wallet ON credits (wallet);
    ALTER TABLE credits DROP COLUMN status;"#,
    // 7: SQLite's migration 10: a credit from a task submission or a gateway job, exactly
    // one; each client key's charged amount per UTC day.
    "ALTER TABLE credits DROP CONSTRAINT credits_pkey;
    ALTER TABLE credits ALTER COLUMN submission_id DROP NOT NULL;
    ALTER TABLE credits ADD CONSTRAINT credits_submission_key UNIQUE (submission_id);
    ALTER TABLE credits ALTER COLUMN task_id DROP NOT NULL;
    ALTER TABLE credits ADD COLUMN job_id TEXT UNIQUE;
    ALTER TABLE credits ADD CONSTRAINT credits_one_source
        CHECK ((submission_id IS NULL) <> (job_id IS NULL));
    ALTER TABLE credits ADD CONSTRAINT credits_task_with_submission
        CHECK ((submission_id IS NULL) = (task_id IS NULL));
    ALTER TABLE key_usage ADD COLUMN amount TEXT NOT NULL DEFAULT '0';",
    // 8: device keys (docs/SECURITY.md, "Signed requests"), as SQLite's 11.
    "ALTER TABLE workers ADD COLUMN public_key BYTEA
        CHECK (public_key IS NULL OR length(public_key) = 32);
    ALTER TABLE workers ADD COLUMN revoked_at BIGINT;
    CREATE TABLE signature_nonces (
        worker_id   TEXT NOT NULL,
        nonce       TEXT NOT NULL,
        expires_ms  BIGINT NOT NULL,
        PRIMARY KEY (worker_id, nonce)
    );",
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Applies the pending migrations in one transaction under the migration lock; refuses a
/// schema newer than this build.
pub async fn migrate(client: &mut Object, url_shown: &str) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_err)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS basis_schema (version BIGINT NOT NULL)")
        .await
        .map_err(pg_err)?;
    let stored = tx
        .query_opt("SELECT version FROM basis_schema", &[])
        .await
        .map_err(pg_err)?;
    let current: i64 = if let Some(row) = stored {
        row.get(0)
    } else {
        tx.execute("INSERT INTO basis_schema (version) VALUES (0)", &[])
            .await
            .map_err(pg_err)?;
        0
    };
    if current > latest() {
        return Err(StoreError::TooNew {
            path: url_shown.to_owned(),
            found: current,
            supported: latest(),
        });
    }
    for (version, sql) in (1_i64..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(current).unwrap_or(0))
    {
        tx.batch_execute(sql).await.map_err(pg_err)?;
        tx.execute("UPDATE basis_schema SET version = $1", &[&version])
            .await
            .map_err(pg_err)?;
        tracing::info!(version, "database migrated");
    }
    tx.commit().await.map_err(pg_err)
}
