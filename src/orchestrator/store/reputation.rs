//! What the orchestrator observed of each worker, for discovery and ranking
//! (docs/DISCOVERY.md): per-worker aggregates over a window ([`WorkerStats`]), the metrics
//! evaluators confirmed in a task family, and the ERC-8004 agent ids a worker linked
//! ([`AgentLink`]). The [`ReputationStore`] trait; the SQL both backends run is here, once,
//! with only its placeholders and two scalar functions written per backend.

use futures::future::BoxFuture;

use super::StoreError;
use crate::domain::{MetricGoal, MetricSpec, MetricValue, WalletAddress, WorkerId};

/// One worker's observed record within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStats {
    pub worker_id: WorkerId,
    pub wallet: WalletAddress,
    /// Unix seconds.
    pub registered_at: u64,
    /// Submissions whose task ended completed (evaluated or resolved in the window).
    pub tasks_passed: u64,
    /// Submissions whose task ended rejected.
    pub tasks_failed: u64,
    /// Rejections the worker disputed and the operator upheld.
    pub disputes_lost: u64,
    /// Seconds connected within the window.
    pub online_s: u64,
    /// Prompt plus completion tokens of completed gateway jobs.
    pub tokens_served: u64,
    pub jobs_completed: u64,
    /// Median time to first token of those jobs, milliseconds.
    pub ttft_p50_ms: Option<u64>,
}

/// A confirmed metric of a passed submission in a task family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmedMetric {
    pub worker_id: WorkerId,
    pub value: MetricValue,
    /// The goal of the task it was reached on.
    pub goal: MetricGoal,
    /// When it was evaluated, unix milliseconds.
    pub evaluated_ms: u64,
}

/// A worker's ERC-8004 identity: its agent id in one Identity Registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLink {
    /// `eip155:<chain id>:<registry address>`.
    pub agent_registry: String,
    pub agent_id: u64,
    /// Unix seconds.
    pub linked_at: u64,
}

/// Reading what the orchestrator observed; recording agent links.
pub trait ReputationStore {
    /// Every registered worker's record between `since` and `now` (unix seconds); only
    /// `only`'s when given. A connection still open counts up to `now` when the worker was
    /// heard from at or after `heard_after` (within the online window), else up to its last
    /// heartbeat.
    fn worker_stats(
        &self,
        since: u64,
        now: u64,
        heard_after: u64,
        only: Option<WorkerId>,
    ) -> BoxFuture<'_, Result<Vec<WorkerStats>, StoreError>>;
    /// The confirmed metrics of passed submissions in `family`, evaluated at or after
    /// `since` (unix seconds).
    fn confirmed_metrics(
        &self,
        family: String,
        since: u64,
    ) -> BoxFuture<'_, Result<Vec<ConfirmedMetric>, StoreError>>;
    /// The metric the tasks of `family` measure (they all measure the same one), if any task
    /// of it was posted.
    fn family_metric(
        &self,
        family: String,
    ) -> BoxFuture<'_, Result<Option<MetricSpec>, StoreError>>;
    /// Records (or replaces) the worker's agent id in `link.agent_registry`; `false` when the
    /// worker is not registered.
    fn link_agent(
        &self,
        worker: WorkerId,
        link: AgentLink,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
    fn agent_links(&self, worker: WorkerId) -> BoxFuture<'_, Result<Vec<AgentLink>, StoreError>>;
}

/// The SQL dialect's differences: placeholders (`?N` or `$N`) and two-argument max/min.
#[derive(Debug, Clone, Copy)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn arg(self, n: usize) -> String {
        match self {
            Self::Sqlite => format!("?{n}"),
            Self::Postgres => format!("${n}"),
        }
    }

    fn greatest(self) -> &'static str {
        match self {
            Self::Sqlite => "max",
            Self::Postgres => "GREATEST",
        }
    }

    fn least(self) -> &'static str {
        match self {
            Self::Sqlite => "min",
            Self::Postgres => "LEAST",
        }
    }
}

/// The columns [`worker_stats_sql`] returns, in order.
pub const STATS_COLUMNS: usize = 10;

/// The per-worker aggregates: arguments 1 = since (s), 2 = since (ms), 3 = now (s), 4 = the
/// worker when `single` (NULL otherwise), 5 = heard after (s). A connection still open ends now when it
/// is the worker's current one and it was heard from lately, else (a crash left it open, or
/// the worker went quiet) at its last heartbeat.
pub fn worker_stats_sql(d: Dialect, single: bool) -> String {
    let (since, since_ms, now, heard) = (d.arg(1), d.arg(2), d.arg(3), d.arg(5));
    // One worker: plain equalities, so each table's worker index serves it. All: no filter
    // (argument 4, NULL, is still named once so every dialect knows its type).
    let one = |column: &str| {
        if single {
            format!("{column} = {}", d.arg(4))
        } else {
            "1 = 1".to_owned()
        }
    };
    let (one_s, one_j, one_p) = (one("s.worker_id"), one("worker_id"), one("p.worker_id"));
    let one_w = if single {
        format!("wk.worker_id = {}", d.arg(4))
    } else {
        format!("CAST({} AS TEXT) IS NULL", d.arg(4))
    };
    let (gt, lt) = (d.greatest(), d.least());
    format!(
        "WITH t AS (
            SELECT s.worker_id AS w,
                   COUNT(*) FILTER (WHERE t.status = 'completed') AS passed,
                   COUNT(*) FILTER (WHERE t.status = 'rejected') AS failed,
                   COUNT(*) FILTER (WHERE s.disputed_ms IS NOT NULL
                                    AND s.resolution = 'rejected') AS lost
            FROM submissions s JOIN tasks t ON t.task_id = s.task_id
            WHERE s.evaluated_ms IS NOT NULL AND {one_s}
              AND COALESCE(s.resolved_ms, s.evaluated_ms) >= {since_ms}
            GROUP BY s.worker_id),
         j AS (
            SELECT worker_id AS w, COUNT(*) AS jobs,
                   CAST(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)) AS BIGINT)
                       AS tokens
            FROM jobs WHERE status = 'completed' AND finished_at >= {since} AND {one_j}
            GROUP BY worker_id),
         m AS (
            SELECT w, ttft FROM (
                SELECT worker_id AS w, ttft_ms AS ttft,
                       ROW_NUMBER() OVER (PARTITION BY worker_id ORDER BY ttft_ms) AS rn,
                       COUNT(*) OVER (PARTITION BY worker_id) AS n
                FROM jobs
                WHERE status = 'completed' AND finished_at >= {since} AND ttft_ms IS NOT NULL
                  AND {one_j}
            ) ranked WHERE rn = (n + 1) / 2),
         p AS (
            SELECT p.worker_id AS w,
                   CAST(SUM({gt}(0, {lt}(COALESCE(p.disconnected_at,
                       CASE WHEN wk.connected_since = p.connected_at AND wk.last_seen >= {heard}
                            THEN CAST({now} AS BIGINT) END, wk.last_seen, p.connected_at),
                                        {now}) - {gt}(p.connected_at, {since}))) AS BIGINT) AS online
            FROM presence_log p JOIN workers wk ON wk.worker_id = p.worker_id
            WHERE (p.disconnected_at IS NULL OR p.disconnected_at >= {since}) AND {one_p}
            GROUP BY p.worker_id)
        SELECT wk.worker_id, wk.wallet, wk.registered_at, COALESCE(t.passed, 0),
               COALESCE(t.failed, 0), COALESCE(t.lost, 0), COALESCE(p.online, 0),
               COALESCE(j.tokens, 0), COALESCE(j.jobs, 0), m.ttft
        FROM workers wk
        LEFT JOIN t ON t.w = wk.worker_id
        LEFT JOIN j ON j.w = wk.worker_id
        LEFT JOIN m ON m.w = wk.worker_id
        LEFT JOIN p ON p.w = wk.worker_id
        WHERE {one_w}"
    )
}

/// The confirmed metrics of a family: arguments 1 = family, 2 = since (ms).
pub fn confirmed_metrics_sql(d: Dialect) -> String {
    let (family, since_ms) = (d.arg(1), d.arg(2));
    format!(
        "SELECT s.worker_id, s.confirmed_metric, t.metric, s.evaluated_ms
         FROM submissions s JOIN tasks t ON t.task_id = s.task_id
         WHERE t.family = {family} AND t.status = 'completed'
           AND s.confirmed_metric IS NOT NULL
           AND COALESCE(s.resolved_ms, s.evaluated_ms) >= {since_ms}"
    )
}

/// A [`WorkerStats`] from the columns of [`worker_stats_sql`], read through
/// [`super::rows::Columns`].
pub fn stats_row(row: &impl super::rows::Columns) -> Result<WorkerStats, StoreError> {
    let count = |i: usize, what: &'static str| -> Result<u64, StoreError> {
        u64::try_from(row.int(i)?).map_err(|_| super::rows::corrupt(what, "negative"))
    };
    Ok(WorkerStats {
        worker_id: WorkerId::parse(&row.text(0)?)
            .map_err(|e| super::rows::corrupt("worker id", e))?,
        wallet: WalletAddress::parse(&row.text(1)?)
            .map_err(|e| super::rows::corrupt("wallet", e))?,
        registered_at: count(2, "registered_at")?,
        tasks_passed: count(3, "tasks passed")?,
        tasks_failed: count(4, "tasks failed")?,
        disputes_lost: count(5, "disputes lost")?,
        online_s: count(6, "online seconds")?,
        tokens_served: count(7, "tokens served")?,
        jobs_completed: count(8, "jobs completed")?,
        ttft_p50_ms: row
            .opt_int(9)?
            .map(|v| u64::try_from(v).map_err(|_| super::rows::corrupt("ttft", "negative")))
            .transpose()?,
    })
}

/// A [`ConfirmedMetric`] from the columns of [`confirmed_metrics_sql`].
pub fn metric_row(row: &impl super::rows::Columns) -> Result<ConfirmedMetric, StoreError> {
    let spec: crate::domain::MetricSpec = serde_json::from_str(
        &row.opt_text(2)?
            .ok_or_else(|| super::rows::corrupt("task metric", "a family task without metric"))?,
    )
    .map_err(|e| super::rows::corrupt("task metric", e))?;
    Ok(ConfirmedMetric {
        worker_id: WorkerId::parse(&row.text(0)?)
            .map_err(|e| super::rows::corrupt("worker id", e))?,
        value: MetricValue::parse(&row.text(1)?)
            .map_err(|e| super::rows::corrupt("confirmed metric", e))?,
        goal: spec.goal,
        evaluated_ms: u64::try_from(row.int(3)?)
            .map_err(|_| super::rows::corrupt("evaluated_ms", "negative"))?,
    })
}
