//! [`ReputationStore`] on `SQLite`: the shared SQL of `store::reputation` with `?N`
//! placeholders, and the `agent_links` table.

use futures::future::BoxFuture;
use rusqlite::{OptionalExtension as _, params};

use super::{SqliteStore, to_sql_int};
use crate::domain::{MetricSpec, WorkerId};
use crate::orchestrator::store::StoreError;
use crate::orchestrator::store::reputation::{
    self, AgentLink, ConfirmedMetric, Dialect, ReputationStore, WorkerStats,
};
use crate::orchestrator::store::rows::corrupt;

impl ReputationStore for SqliteStore {
    fn worker_stats(
        &self,
        since: u64,
        now: u64,
        heard_after: u64,
        only: Option<WorkerId>,
    ) -> BoxFuture<'_, Result<Vec<WorkerStats>, StoreError>> {
        self.read(move |conn| {
            let sql = reputation::worker_stats_sql(Dialect::Sqlite, only.is_some());
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![
                to_sql_int(since),
                to_sql_int(since.saturating_mul(1000)),
                to_sql_int(now),
                only.as_ref().map(WorkerId::as_str),
                to_sql_int(heard_after)
            ])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(reputation::stats_row(row)?);
            }
            Ok(out)
        })
    }

    fn confirmed_metrics(
        &self,
        family: String,
        since: u64,
    ) -> BoxFuture<'_, Result<Vec<ConfirmedMetric>, StoreError>> {
        self.read(move |conn| {
            let sql = reputation::confirmed_metrics_sql(Dialect::Sqlite);
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![family, to_sql_int(since.saturating_mul(1000))])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(reputation::metric_row(row)?);
            }
            Ok(out)
        })
    }

    fn family_metric(
        &self,
        family: String,
    ) -> BoxFuture<'_, Result<Option<MetricSpec>, StoreError>> {
        self.read(move |conn| {
            let text: Option<String> = conn
                .prepare_cached(
                    "SELECT metric FROM tasks WHERE family = ?1 AND metric IS NOT NULL LIMIT 1",
                )?
                .query_row(params![family], |r| r.get(0))
                .optional()?;
            text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt("task metric", e)))
                .transpose()
        })
    }

    fn link_agent(
        &self,
        worker: WorkerId,
        link: AgentLink,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.write(move |conn| {
            let exists = conn
                .prepare_cached("SELECT 1 FROM workers WHERE worker_id = ?1")?
                .exists(params![worker.as_str()])?;
            if exists {
                conn.prepare_cached(
                    "INSERT INTO agent_links (worker_id, agent_registry, agent_id, linked_at) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (worker_id, agent_registry) \
                     DO UPDATE SET agent_id = excluded.agent_id, linked_at = excluded.linked_at",
                )?
                .execute(params![
                    worker.as_str(),
                    link.agent_registry,
                    to_sql_int(link.agent_id),
                    to_sql_int(link.linked_at)
                ])?;
            }
            Ok(exists)
        })
    }

    fn agent_links(&self, worker: WorkerId) -> BoxFuture<'_, Result<Vec<AgentLink>, StoreError>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT agent_registry, agent_id, linked_at FROM agent_links \
                 WHERE worker_id = ?1 ORDER BY agent_registry",
            )?;
            let mut rows = stmt.query(params![worker.as_str()])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let number = |i: usize| -> Result<u64, StoreError> {
                    u64::try_from(row.get::<_, i64>(i)?)
                        .map_err(|_| corrupt("agent link", "negative"))
                };
                out.push(AgentLink {
                    agent_registry: row.get(0)?,
                    agent_id: number(1)?,
                    linked_at: number(2)?,
                });
            }
            Ok(out)
        })
    }
}
