//! [`ReputationStore`] on PostgreSQL: the shared SQL of `store::reputation` with `$N`
//! placeholders, and the `agent_links` table.

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{PgStore, int, pg_err};
use crate::domain::{MetricSpec, WorkerId};
use crate::orchestrator::store::StoreError;
use crate::orchestrator::store::reputation::{
    self, AgentLink, ConfirmedMetric, Dialect, ReputationStore, WorkerStats,
};
use crate::orchestrator::store::rows::corrupt;

impl ReputationStore for PgStore {
    fn worker_stats(
        &self,
        since: u64,
        now: u64,
        heard_after: u64,
        only: Option<WorkerId>,
    ) -> BoxFuture<'_, Result<Vec<WorkerStats>, StoreError>> {
        async move {
            let client = self.client().await?;
            let sql = reputation::worker_stats_sql(Dialect::Postgres, only.is_some());
            let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
            let rows = client
                .query(
                    &stmt,
                    &[
                        &int(since),
                        &int(since.saturating_mul(1000)),
                        &int(now),
                        &only.as_ref().map(WorkerId::as_str),
                        &int(heard_after),
                    ],
                )
                .await
                .map_err(pg_err)?;
            rows.iter().map(reputation::stats_row).collect()
        }
        .boxed()
    }

    fn confirmed_metrics(
        &self,
        family: String,
        since: u64,
    ) -> BoxFuture<'_, Result<Vec<ConfirmedMetric>, StoreError>> {
        async move {
            let client = self.client().await?;
            let sql = reputation::confirmed_metrics_sql(Dialect::Postgres);
            let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
            let rows = client
                .query(&stmt, &[&family, &int(since.saturating_mul(1000))])
                .await
                .map_err(pg_err)?;
            rows.iter().map(reputation::metric_row).collect()
        }
        .boxed()
    }

    fn family_metric(
        &self,
        family: String,
    ) -> BoxFuture<'_, Result<Option<MetricSpec>, StoreError>> {
        async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT metric FROM tasks WHERE family = $1 AND metric IS NOT NULL LIMIT 1",
                )
                .await
                .map_err(pg_err)?;
            let row = client.query_opt(&stmt, &[&family]).await.map_err(pg_err)?;
            row.map(|r| {
                serde_json::from_str(&r.get::<_, String>(0)).map_err(|e| corrupt("task metric", e))
            })
            .transpose()
        }
        .boxed()
    }

    fn link_agent(
        &self,
        worker: WorkerId,
        link: AgentLink,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let client = self.client().await?;
            // One statement: the link is written only if the worker exists.
            let stmt = client
                .prepare_cached(
                    "INSERT INTO agent_links (worker_id, agent_registry, agent_id, linked_at) \
                     SELECT worker_id, $2, $3, $4 FROM workers WHERE worker_id = $1 \
                     ON CONFLICT (worker_id, agent_registry) \
                     DO UPDATE SET agent_id = excluded.agent_id, linked_at = excluded.linked_at",
                )
                .await
                .map_err(pg_err)?;
            let n = client
                .execute(
                    &stmt,
                    &[
                        &worker.as_str(),
                        &link.agent_registry,
                        &int(link.agent_id),
                        &int(link.linked_at),
                    ],
                )
                .await
                .map_err(pg_err)?;
            Ok(n > 0)
        }
        .boxed()
    }

    fn agent_links(&self, worker: WorkerId) -> BoxFuture<'_, Result<Vec<AgentLink>, StoreError>> {
        async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT agent_registry, agent_id, linked_at FROM agent_links \
                     WHERE worker_id = $1 ORDER BY agent_registry",
                )
                .await
                .map_err(pg_err)?;
            let rows = client
                .query(&stmt, &[&worker.as_str()])
                .await
                .map_err(pg_err)?;
            rows.iter()
                .map(|row| {
                    let number = |i: usize| {
                        u64::try_from(row.get::<_, i64>(i))
                            .map_err(|_| corrupt("agent link", "negative"))
                    };
                    Ok(AgentLink {
                        agent_registry: row.get(0),
                        agent_id: number(1)?,
                        linked_at: number(2)?,
                    })
                })
                .collect()
        }
        .boxed()
    }
}
