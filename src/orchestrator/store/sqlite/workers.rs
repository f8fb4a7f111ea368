//! The `workers` table.

use futures::future::BoxFuture;
use rusqlite::{Connection, Row, params};

use super::{SqliteStore, to_sql_int};
use crate::domain::{TokenSha256, WorkerId};
use crate::orchestrator::store::{Presence, StoreError, WorkerRow, WorkerStore};
use crate::wire::RegisterRequest;

use crate::orchestrator::store::rows::{self, RegColumns, WORKER_COLUMNS as COLUMNS};

fn row_to_worker(row: &Row<'_>) -> Result<WorkerRow, StoreError> {
    rows::worker(row)
}

fn select_one(conn: &Connection, id: &str) -> Result<Option<WorkerRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM workers WHERE worker_id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![id])?;
    rows.next()?.map(row_to_worker).transpose()
}

impl WorkerStore for SqliteStore {
    fn insert_worker(
        &self,
        reg: RegisterRequest,
        now: u64,
    ) -> BoxFuture<'_, Result<WorkerRow, StoreError>> {
        self.write(move |conn| {
            let p = RegColumns::of(&reg)?;
            let tx = conn.savepoint()?;
            tx.execute(
                "INSERT INTO workers (worker_id, wallet, runtime, models, token_sha256, hardware, \
                 version, multi_task, registered_at, updated_at, labels, public_key) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11)",
                params![
                    p.worker_id,
                    p.wallet,
                    p.runtime,
                    p.models,
                    &p.token[..],
                    p.hardware,
                    p.version,
                    p.multi_task,
                    to_sql_int(now),
                    p.labels,
                    p.public_key.as_ref().map(|k| &k[..])
                ],
            )?;
            let row = select_one(&tx, &p.worker_id)?;
            tx.commit()?;
            row.ok_or_else(|| StoreError::Backend("inserted worker not found".into()))
        })
    }

    fn update_registration(
        &self,
        reg: RegisterRequest,
        expected: TokenSha256,
        now: u64,
        admin: bool,
    ) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>> {
        self.write(move |conn| {
            let p = RegColumns::of(&reg)?;
            let tx = conn.savepoint()?;
            let changed = tx.execute(
                "UPDATE workers SET wallet = ?2, runtime = ?3, models = ?4, token_sha256 = ?5, \
                 hardware = ?6, version = ?7, multi_task = ?8, updated_at = ?9, labels = ?11, \
                 public_key = ?12, revoked_at = CASE WHEN ?13 THEN NULL ELSE revoked_at END \
                 WHERE worker_id = ?1 AND token_sha256 = ?10 AND (?13 OR revoked_at IS NULL)",
                params![
                    p.worker_id,
                    p.wallet,
                    p.runtime,
                    p.models,
                    &p.token[..],
                    p.hardware,
                    p.version,
                    p.multi_task,
                    to_sql_int(now),
                    &expected.as_bytes()[..],
                    p.labels,
                    p.public_key.as_ref().map(|k| &k[..]),
                    admin
                ],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            let row = select_one(&tx, &p.worker_id)?;
            tx.commit()?;
            Ok(row)
        })
    }

    fn worker(&self, id: WorkerId) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>> {
        self.read(move |conn| select_one(conn, id.as_str()))
    }

    fn workers(
        &self,
        after: Option<WorkerId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<WorkerRow>, StoreError>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM workers WHERE worker_id > ?1 ORDER BY worker_id LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let after = after.as_ref().map_or("", WorkerId::as_str);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut rows = stmt.query(params![after, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(row_to_worker(row)?);
            }
            Ok(out)
        })
    }

    fn workers_by_token(
        &self,
        token: TokenSha256,
    ) -> BoxFuture<'_, Result<Vec<WorkerRow>, StoreError>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM workers WHERE token_sha256 = ?1 ORDER BY worker_id LIMIT 16"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![&token.as_bytes()[..]])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(row_to_worker(row)?);
            }
            Ok(out)
        })
    }

    fn set_presence(
        &self,
        changes: Vec<(WorkerId, Presence)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            // Each connection is also a span in `presence_log` (the leaderboard's online
            // share): opened here, closed at the last heartbeat. A span left open by a crash
            // is closed at the worker's last heartbeat when it connects again.
            for (id, presence) in &changes {
                match *presence {
                    Presence::Connected(now) => {
                        tx.prepare_cached(
                            "UPDATE presence_log SET disconnected_at = max(connected_at, \
                             coalesce((SELECT last_seen FROM workers WHERE worker_id = ?1), 0)) \
                             WHERE worker_id = ?1 AND disconnected_at IS NULL",
                        )?
                        .execute(params![id.as_str()])?;
                        tx.prepare_cached(
                            "UPDATE workers SET connected_since = ?2, last_seen = ?2 WHERE worker_id = ?1",
                        )?
                        .execute(params![id.as_str(), to_sql_int(now)])?;
                        tx.prepare_cached(
                            "INSERT INTO presence_log (worker_id, connected_at) VALUES (?1, ?2) \
                             ON CONFLICT (worker_id, connected_at) DO UPDATE SET disconnected_at = NULL",
                        )?
                        .execute(params![id.as_str(), to_sql_int(now)])?;
                    }
                    Presence::Disconnected {
                        last_seen,
                        connected_at,
                    } => {
                        // A closing that arrives after a newer connection of the worker
                        // opened leaves that connection's `connected_since` alone.
                        tx.prepare_cached(
                            "UPDATE workers SET connected_since = CASE WHEN connected_since = ?3 \
                             THEN NULL ELSE connected_since END, \
                             last_seen = max(coalesce(last_seen, 0), ?2) WHERE worker_id = ?1",
                        )?
                        .execute(params![
                            id.as_str(),
                            to_sql_int(last_seen),
                            to_sql_int(connected_at)
                        ])?;
                        // Exactly this connection's span, even if a newer connection's
                        // opening closed it already at an older heartbeat.
                        tx.prepare_cached(
                            "UPDATE presence_log SET disconnected_at = max(connected_at, ?2) \
                             WHERE worker_id = ?1 AND connected_at = ?3",
                        )?
                        .execute(params![
                            id.as_str(),
                            to_sql_int(last_seen),
                            to_sql_int(connected_at)
                        ])?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn touch_workers(&self, seen: Vec<(WorkerId, u64)>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            {
                let mut stmt = tx.prepare_cached(
                    "UPDATE workers SET last_seen = ?2 WHERE worker_id = ?1 \
                     AND (last_seen IS NULL OR last_seen < ?2)",
                )?;
                for (id, at) in &seen {
                    stmt.execute(params![id.as_str(), to_sql_int(*at)])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn revoke_worker(
        &self,
        id: WorkerId,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>> {
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            tx.prepare_cached(
                "UPDATE workers SET revoked_at = coalesce(revoked_at, ?2) WHERE worker_id = ?1",
            )?
            .execute(params![id.as_str(), to_sql_int(now)])?;
            let row = select_one(&tx, id.as_str())?;
            tx.commit()?;
            Ok(row)
        })
    }

    fn remember_nonce(
        &self,
        id: WorkerId,
        nonce: String,
        expires_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            tx.prepare_cached(
                "DELETE FROM signature_nonces WHERE worker_id = ?1 AND expires_ms < ?2",
            )?
            .execute(params![id.as_str(), to_sql_int(now_ms)])?;
            let fresh = tx
                .prepare_cached(
                    "INSERT INTO signature_nonces (worker_id, nonce, expires_ms) \
                     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )?
                .execute(params![id.as_str(), nonce, to_sql_int(expires_ms)])?
                == 1;
            tx.commit()?;
            Ok(fresh)
        })
    }
}
