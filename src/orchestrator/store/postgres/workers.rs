//! The `workers` table on PostgreSQL; rows decoded by `store::rows`.

use deadpool_postgres::GenericClient;
use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{PgStore, int, pg_err};
use crate::domain::{ReplicaId, TokenSha256, WorkerId};
use crate::orchestrator::store::rows::{self, RegColumns, WORKER_COLUMNS};
use crate::orchestrator::store::{Presence, StoreError, WorkerRow, WorkerStore};
use crate::wire::RegisterRequest;

async fn select_one(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<WorkerRow>, StoreError> {
    let sql = format!("SELECT {WORKER_COLUMNS} FROM workers WHERE worker_id = $1");
    let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
    client
        .query_opt(&stmt, &[&id])
        .await
        .map_err(pg_err)?
        .map(|row| rows::worker(&row))
        .transpose()
}

async fn select_many(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<WorkerRow>, StoreError> {
    let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
    client
        .query(&stmt, params)
        .await
        .map_err(pg_err)?
        .iter()
        .map(rows::worker)
        .collect()
}

impl WorkerStore for PgStore {
    fn insert_worker(
        &self,
        reg: RegisterRequest,
        now: u64,
    ) -> BoxFuture<'_, Result<WorkerRow, StoreError>> {
        async move {
            let p = RegColumns::of(&reg)?;
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_err)?;
            tx.execute(
                "INSERT INTO workers (worker_id, wallet, runtime, models, token_sha256, hardware, \
                 version, multi_task, registered_at, updated_at, labels, public_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)",
                &[
                    &p.worker_id,
                    &p.wallet,
                    &p.runtime,
                    &p.models,
                    &&p.token[..],
                    &p.hardware,
                    &p.version,
                    &p.multi_task,
                    &int(now),
                    &p.labels,
                    &p.public_key.as_ref().map(|k| &k[..]),
                ],
            )
            .await
            .map_err(pg_err)?;
            let row = select_one(&tx, &p.worker_id).await?;
            tx.commit().await.map_err(pg_err)?;
            row.ok_or_else(|| StoreError::Backend("inserted worker not found".into()))
        }
        .boxed()
    }

    fn update_registration(
        &self,
        reg: RegisterRequest,
        expected: TokenSha256,
        now: u64,
        admin: bool,
    ) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>> {
        async move {
            let p = RegColumns::of(&reg)?;
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_err)?;
            let changed = tx
                .execute(
                    "UPDATE workers SET wallet = $2, runtime = $3, models = $4, \
                     token_sha256 = $5, hardware = $6, version = $7, multi_task = $8, \
                     updated_at = $9, labels = $11, public_key = $12, \
                     revoked_at = CASE WHEN $13 THEN NULL ELSE revoked_at END \
                     WHERE worker_id = $1 AND token_sha256 = $10 AND ($13 OR revoked_at IS NULL)",
                    &[
                        &p.worker_id,
                        &p.wallet,
                        &p.runtime,
                        &p.models,
                        &&p.token[..],
                        &p.hardware,
                        &p.version,
                        &p.multi_task,
                        &int(now),
                        &&expected.as_bytes()[..],
                        &p.labels,
                        &p.public_key.as_ref().map(|k| &k[..]),
                        &admin,
                    ],
                )
                .await
                .map_err(pg_err)?;
            if changed == 0 {
                return Ok(None);
            }
            let row = select_one(&tx, &p.worker_id).await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(row)
        }
        .boxed()
    }

    fn worker(&self, id: WorkerId) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>> {
        async move { self.reads.worker(id).await }.boxed()
    }

    fn workers(
        &self,
        after: Option<WorkerId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<WorkerRow>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT {WORKER_COLUMNS} FROM workers WHERE worker_id > $1 \
                 ORDER BY worker_id LIMIT $2"
            );
            let after = after.as_ref().map_or("", WorkerId::as_str);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            select_many(&self.client().await?, &sql, &[&after, &limit]).await
        }
        .boxed()
    }

    fn workers_by_token(
        &self,
        token: TokenSha256,
    ) -> BoxFuture<'_, Result<Vec<WorkerRow>, StoreError>> {
        async move {
            let sql = format!(
                "SELECT {WORKER_COLUMNS} FROM workers WHERE token_sha256 = $1 \
                 ORDER BY worker_id LIMIT 16"
            );
            select_many(&self.client().await?, &sql, &[&&token.as_bytes()[..]]).await
        }
        .boxed()
    }

    fn set_presence(
        &self,
        changes: Vec<(WorkerId, Presence)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_err)?;
            // The replica holding the connection is recorded with it; a closing is written
            // only by the replica that held it, so a worker that moved to another replica
            // is not marked disconnected by the old one's late write.
            let replica = self.replica.as_ref().map(ReplicaId::as_str);
            for (id, presence) in &changes {
                // The connection's span in `presence_log` (the leaderboard's online share),
                // as on SQLite: a span left open by a crash closes at the last heartbeat when
                // the worker connects again; a closing applies only where the workers row
                // did (the replica that held the connection).
                if let Presence::Connected(_) = presence {
                    let stmt = tx
                        .prepare_cached(
                            "UPDATE presence_log p SET disconnected_at = GREATEST(p.connected_at, \
                             COALESCE(w.last_seen, 0)) FROM workers w WHERE w.worker_id = $1 \
                             AND p.worker_id = $1 AND p.disconnected_at IS NULL",
                        )
                        .await
                        .map_err(pg_err)?;
                    tx.execute(&stmt, &[&id.as_str()]).await.map_err(pg_err)?;
                }
                let (sql, at) = match *presence {
                    Presence::Connected(now) => (
                        "UPDATE workers SET connected_since = $2, last_seen = $2, replica_id = $3 \
                         WHERE worker_id = $1",
                        now,
                    ),
                    Presence::Disconnected { last_seen, .. } => (
                        "UPDATE workers SET connected_since = NULL, last_seen = $2 \
                         WHERE worker_id = $1 AND replica_id IS NOT DISTINCT FROM $3",
                        last_seen,
                    ),
                };
                let stmt = tx.prepare_cached(sql).await.map_err(pg_err)?;
                let rows_changed = tx
                    .execute(&stmt, &[&id.as_str(), &int(at), &replica])
                    .await
                    .map_err(pg_err)?;
                match *presence {
                    Presence::Connected(now) => {
                        let stmt = tx
                            .prepare_cached(
                                "INSERT INTO presence_log (worker_id, connected_at) VALUES ($1, $2) \
                                 ON CONFLICT (worker_id, connected_at) \
                                 DO UPDATE SET disconnected_at = NULL",
                            )
                            .await
                            .map_err(pg_err)?;
                        tx.execute(&stmt, &[&id.as_str(), &int(now)])
                            .await
                            .map_err(pg_err)?;
                    }
                    // Exactly this connection's span, even if a newer connection's opening
                    // closed it already at an older heartbeat.
                    Presence::Disconnected {
                        last_seen,
                        connected_at,
                    } if rows_changed > 0 => {
                        let stmt = tx
                            .prepare_cached(
                                "UPDATE presence_log SET disconnected_at = \
                                 GREATEST(connected_at, $2) WHERE worker_id = $1 AND connected_at = $3",
                            )
                            .await
                            .map_err(pg_err)?;
                        tx.execute(&stmt, &[&id.as_str(), &int(last_seen), &int(connected_at)])
                            .await
                            .map_err(pg_err)?;
                    }
                    Presence::Disconnected { .. } => {}
                }
            }
            tx.commit().await.map_err(pg_err)
        }
        .boxed()
    }

    fn touch_workers(&self, seen: Vec<(WorkerId, u64)>) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            if seen.is_empty() {
                return Ok(());
            }
            // One statement for the whole batch: the ids and times as two arrays.
            let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
            let ats: Vec<i64> = seen.iter().map(|(_, at)| int(*at)).collect();
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "UPDATE workers w SET last_seen = s.at \
                     FROM unnest($1::text[], $2::bigint[]) AS s(id, at) \
                     WHERE w.worker_id = s.id AND (w.last_seen IS NULL OR w.last_seen < s.at)",
                )
                .await
                .map_err(pg_err)?;
            client.execute(&stmt, &[&ids, &ats]).await.map_err(pg_err)?;
            Ok(())
        }
        .boxed()
    }

    fn revoke_worker(
        &self,
        id: WorkerId,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>> {
        async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg_err)?;
            tx.execute(
                "UPDATE workers SET revoked_at = coalesce(revoked_at, $2) WHERE worker_id = $1",
                &[&id.as_str(), &int(now)],
            )
            .await
            .map_err(pg_err)?;
            let row = select_one(&tx, id.as_str()).await?;
            tx.commit().await.map_err(pg_err)?;
            Ok(row)
        }
        .boxed()
    }

    fn remember_nonce(
        &self,
        id: WorkerId,
        nonce: String,
        expires_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let client = self.client().await?;
            client
                .execute(
                    "DELETE FROM signature_nonces WHERE worker_id = $1 AND expires_ms < $2",
                    &[&id.as_str(), &int(now_ms)],
                )
                .await
                .map_err(pg_err)?;
            let inserted = client
                .execute(
                    "INSERT INTO signature_nonces (worker_id, nonce, expires_ms) \
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&id.as_str(), &nonce, &int(expires_ms)],
                )
                .await
                .map_err(pg_err)?;
            Ok(inserted == 1)
        }
        .boxed()
    }
}
