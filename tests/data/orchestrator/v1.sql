-- A schema-version-1 orchestrator database (basis 0.1, before the gateway), frozen: it must
-- keep loading (migrated in place) in every later version. Token of gpu-old: "1111111111111111111111111111111111111111111111111111111111111111".
CREATE TABLE workers (
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
) STRICT;
INSERT INTO workers (worker_id, wallet, runtime, models, token_sha256, hardware, version,
    multi_task, registered_at, updated_at, last_seen, connected_since, jobs_completed,
    jobs_failed, rewards_pending)
VALUES ('gpu-old', '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', 'echo', '["echo"]',
    X'3138bb9bc78df27c473ecfd1410f7bd45ebac1f59cf3ff9cfe4db77aab7aedd3', NULL, '0.1.0', 0, 1780000000, 1780000000, 1780000100, NULL, 3, 1, '0');
PRAGMA user_version = 1;
