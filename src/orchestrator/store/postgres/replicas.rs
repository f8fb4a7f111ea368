//! The `replicas` table on PostgreSQL, and the routes query joining it with the workers whose
//! connections each replica holds.

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{PgStore, int, pg_err};
use crate::domain::ReplicaId;
use crate::orchestrator::store::rows;
use crate::orchestrator::store::{ReplicaRoute, ReplicaStore, StoreError};

impl ReplicaStore for PgStore {
    fn announce_replica(
        &self,
        id: ReplicaId,
        internal_url: String,
        now: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "INSERT INTO replicas (replica_id, internal_url, seen_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (replica_id) DO UPDATE \
                     SET internal_url = EXCLUDED.internal_url, seen_at = EXCLUDED.seen_at",
                )
                .await
                .map_err(pg_err)?;
            client
                .execute(&stmt, &[&id.as_str(), &internal_url, &int(now)])
                .await
                .map_err(pg_err)?;
            Ok(())
        }
        .boxed()
    }

    fn replica_routes(
        &self,
        except: ReplicaId,
        since: u64,
    ) -> BoxFuture<'_, Result<Vec<ReplicaRoute>, StoreError>> {
        async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT r.replica_id, r.internal_url, w.models, count(*) \
                     FROM workers w JOIN replicas r ON r.replica_id = w.replica_id \
                     WHERE r.replica_id <> $1 AND r.seen_at >= $2 \
                       AND w.connected_since IS NOT NULL AND w.last_seen >= $2 \
                     GROUP BY r.replica_id, r.internal_url, w.models \
                     ORDER BY r.replica_id",
                )
                .await
                .map_err(pg_err)?;
            client
                .query(&stmt, &[&except.as_str(), &int(since)])
                .await
                .map_err(pg_err)?
                .iter()
                .map(rows::replica_route)
                .collect()
        }
        .boxed()
    }

    fn replicas(
        &self,
        except: ReplicaId,
        since: u64,
    ) -> BoxFuture<'_, Result<Vec<(ReplicaId, String)>, StoreError>> {
        async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT replica_id, internal_url FROM replicas \
                     WHERE replica_id <> $1 AND seen_at >= $2 ORDER BY replica_id",
                    &[&except.as_str(), &int(since)],
                )
                .await
                .map_err(pg_err)?;
            rows.iter()
                .map(|row| {
                    let id: String = row.get(0);
                    let id = ReplicaId::parse(&id).map_err(|e| rows::corrupt("replica id", e))?;
                    Ok((id, row.get(1)))
                })
                .collect()
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{WorkerId, WorkerToken};
    use crate::orchestrator::store::contract::workers::request;
    use crate::orchestrator::store::postgres::testdb::TestDb;
    use crate::orchestrator::store::{Presence, WorkerStore};

    fn id(s: &str) -> ReplicaId {
        ReplicaId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn routes_name_the_replica_holding_each_online_worker() {
        let db = TestDb::create().await;
        let on = |r: &str| {
            let (url, r) = (db.url.clone(), id(r));
            async move { PgStore::connect(&url, 2).await.unwrap().as_replica(r) }
        };
        let (a, b) = (on("ra").await, on("rb").await);
        for (w, models) in [("w-1", ["m1"]), ("w-2", ["m2"]), ("w-3", ["m2"])] {
            let mut req = request(w, &WorkerToken::generate());
            req.models = models.iter().map(|m| (*m).to_owned()).collect();
            a.insert_worker(req, 100).await.unwrap();
        }
        a.announce_replica(id("ra"), "http://10.0.0.1:1".into(), 100)
            .await
            .unwrap();
        b.announce_replica(id("rb"), "http://10.0.0.2:1".into(), 100)
            .await
            .unwrap();
        let w = |s: &str| WorkerId::parse(s).unwrap();
        a.set_presence(vec![(w("w-1"), Presence::Connected(100))])
            .await
            .unwrap();
        b.set_presence(vec![
            (w("w-2"), Presence::Connected(100)),
            (w("w-3"), Presence::Connected(100)),
        ])
        .await
        .unwrap();
        let seen_by_a = a.replica_routes(id("ra"), 90).await.unwrap();
        assert_eq!(
            seen_by_a,
            vec![ReplicaRoute {
                replica_id: id("rb"),
                internal_url: "http://10.0.0.2:1".into(),
                models: vec!["m2".into()],
                workers: 2,
            }]
        );
        let seen_by_b = b.replica_routes(id("rb"), 90).await.unwrap();
        assert_eq!(seen_by_b.len(), 1);
        assert_eq!(seen_by_b[0].replica_id, id("ra"));
        // w-2 moves to ra; rb's late closing of its old connection does not undo that.
        a.set_presence(vec![(w("w-2"), Presence::Connected(101))])
            .await
            .unwrap();
        b.set_presence(vec![(
            w("w-2"),
            Presence::Disconnected {
                last_seen: 101,
                connected_at: 100,
            },
        )])
        .await
        .unwrap();
        let row = a.worker(w("w-2")).await.unwrap().unwrap();
        assert_eq!(row.connected_since, Some(101));
        assert_eq!(
            b.replica_routes(id("rb"), 90)
                .await
                .unwrap()
                .iter()
                .map(|r| r.workers)
                .sum::<u64>(),
            2
        );
        // Stale: a replica not announced since, or workers not heard from since, are no route.
        assert!(a.replica_routes(id("ra"), 101).await.unwrap().is_empty());
        // Every live replica, with or without workers, is told when a key changes.
        assert_eq!(
            a.replicas(id("ra"), 90).await.unwrap(),
            vec![(id("rb"), "http://10.0.0.2:1".to_owned())]
        );
        assert!(a.replicas(id("ra"), 101).await.unwrap().is_empty());
    }
}
