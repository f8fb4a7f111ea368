//! Prometheus metrics (`prometheus-client`): requests by route, method and status, request
//! latency, registrations by outcome, rate-limit refusals, error codes, connected workers,
//! heartbeats, gateway jobs by outcome, and the task market (tasks posted, claims,
//! submissions, evaluations, sweeps). Served as
//! `OpenMetrics` text at `/metrics`. Route labels are the route templates (`/api/workers/{id}`), never raw
//! paths, so label cardinality stays bounded.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::error::ErrorCodeTag;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvaluationLabels {
    outcome: &'static str,
    by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Reward amounts by state, in atomic units of the asset (a float counter: amounts can
/// outgrow 64 bits of atomic units; the exposition is a float anyway).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RewardLabels {
    state: &'static str,
    asset: String,
}

type AmountCounter = Counter<f64, std::sync::atomic::AtomicU64>;

/// The task market's and settlement's counters.
#[derive(Clone, Default)]
struct Market {
    rewards: Family<RewardLabels, AmountCounter>,
    posted: Counter,
    claims: Family<OutcomeLabels, Counter>,
    submissions: Family<OutcomeLabels, Counter>,
    evaluations: Family<EvaluationLabels, Counter>,
    sweeps: Family<KindLabels, Counter>,
}

impl Market {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "rewards_atomic",
            "Reward amounts in atomic units of the asset, by state: credited (to workers, net \
             of the fee), batched (closed into a settlement batch), paid (batches whose payment \
             was recorded)",
            self.rewards.clone(),
        );
        registry.register("tasks_posted", "Tasks posted", self.posted.clone());
        registry.register(
            "task_claims",
            "Task claims by outcome (claimed, held, refused)",
            self.claims.clone(),
        );
        registry.register(
            "task_submissions",
            "Task submissions by outcome (new, duplicate, refused)",
            self.submissions.clone(),
        );
        registry.register(
            "task_evaluations",
            "Settled submissions by outcome (completed, rejected) and by whom (evaluator, policy, operator)",
            self.evaluations.clone(),
        );
        registry.register(
            "task_sweeps",
            "Changes made by the task sweeper (reopened, abandoned, expired, auto_completed, auto_rejected)",
            self.sweeps.clone(),
        );
    }
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// How a registration ended, for `basis_orchestrator_registrations_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationOutcome {
    Created,
    Updated,
    Unchanged,
    Conflict,
    Refused,
}

impl RegistrationOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Conflict => "conflict",
            Self::Refused => "refused",
        }
    }
}

/// The orchestrator's metrics. Cheap to clone: one reference count (the request middleware
/// clones it per request).
#[derive(Clone)]
pub struct Metrics(Arc<Families>);

/// What [`Metrics`] shares: the registry and every family registered in it.
pub struct Families {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    registrations: Family<OutcomeLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    errors: Family<CodeLabels, Counter>,
    workers_connected: Gauge,
    heartbeats: Counter,
    jobs: Family<OutcomeLabels, Counter>,
    forwarded: Family<OutcomeLabels, Counter>,
    queue_depth: Gauge,
    queue_wait: Histogram,
    queued: Family<OutcomeLabels, Counter>,
    usage_capped: Family<KindLabels, Counter>,
    market: Market,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl fmt::Debug for Families {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Families")
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("basis_orchestrator");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let registrations = Family::<OutcomeLabels, Counter>::default();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        let errors = Family::<CodeLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route template",
            latency.clone(),
        );
        registry.register(
            "registrations",
            "Worker registrations by outcome",
            registrations.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429, by limit",
            rate_limited.clone(),
        );
        registry.register("errors", "Error answers by error code", errors.clone());
        let workers_connected = Gauge::default();
        let heartbeats = Counter::default();
        let jobs = Family::<OutcomeLabels, Counter>::default();
        let forwarded = Family::<OutcomeLabels, Counter>::default();
        let queue_depth = Gauge::default();
        registry.register(
            "gateway_queue_depth",
            "Gateway requests waiting for a busy model's worker now",
            queue_depth.clone(),
        );
        // 1 ms to ~16 s, as the request latency.
        let queue_wait = latency_histogram();
        registry.register(
            "gateway_queue_wait_seconds",
            "How long queued gateway requests waited, whatever the outcome",
            queue_wait.clone(),
        );
        let queued = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "gateway_queued",
            "Gateway requests that met a busy model, by outcome (served, timeout, full, gone, drained)",
            queued.clone(),
        );
        registry.register(
            "gateway_forwarded",
            "Gateway requests forwarded to another replica, by outcome (answered, busy, unreachable)",
            forwarded.clone(),
        );
        registry.register(
            "workers_connected",
            "Workers connected over the worker channel",
            workers_connected.clone(),
        );
        registry.register(
            "heartbeats",
            "Worker heartbeats received",
            heartbeats.clone(),
        );
        registry.register(
            "gateway_jobs",
            "Gateway jobs by outcome (completed, failed, cancelled)",
            jobs.clone(),
        );
        let usage_capped = Family::<KindLabels, Counter>::default();
        registry.register(
            "gateway_usage_capped",
            "Completed gateway jobs whose worker reported more tokens than the orchestrator \
             relayed, by count (prompt, completion); they were credited what was relayed",
            usage_capped.clone(),
        );
        let market = Market::default();
        market.register(&mut registry);
        Self(Arc::new(Families {
            registry,
            requests,
            latency,
            registrations,
            rate_limited,
            errors,
            workers_connected,
            heartbeats,
            jobs,
            forwarded,
            queue_depth,
            queue_wait,
            queued,
            usage_capped,
            market,
        }))
    }
}

impl std::ops::Deref for Metrics {
    type Target = Families;
    fn deref(&self) -> &Families {
        &self.0
    }
}

impl Metrics {
    pub fn registration(&self, outcome: RegistrationOutcome) {
        self.registrations
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// `limit` is `register`, `auth_failures` or `quota` (a client key over its quota).
    pub fn rate_limited(&self, limit: &'static str) {
        self.rate_limited
            .get_or_create(&LimitLabels { limit })
            .inc();
    }

    /// A worker connection opened (+1) or closed (-1).
    pub fn worker_connected(&self, delta: i64) {
        self.workers_connected.inc_by(delta);
    }

    pub fn heartbeat(&self) {
        self.heartbeats.inc();
    }

    /// `outcome` is `completed`, `failed` or `cancelled`.
    pub fn job(&self, outcome: &'static str) {
        self.jobs.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// A worker reported more `kind` tokens (prompt, completion) than were relayed.
    pub fn usage_capped(&self, kind: &'static str) {
        self.usage_capped.get_or_create(&KindLabels { kind }).inc();
    }

    /// A request joined (`+1`) or left (`-1`) the gateway's wait queue.
    pub fn queue_depth(&self, delta: i64) {
        self.queue_depth.inc_by(delta);
    }

    /// A queued request left the queue after `waited`: `served`, `timeout`, `gone` (its
    /// client left) or `drained` (the orchestrator began shutting down); or found it `full`.
    pub fn queued(&self, outcome: &'static str, waited: std::time::Duration) {
        self.queued.get_or_create(&OutcomeLabels { outcome }).inc();
        if outcome != "full" {
            self.queue_wait.observe(waited.as_secs_f64());
        }
    }

    /// `outcome` is `answered`, `busy` or `unreachable`.
    pub fn forwarded(&self, outcome: &'static str) {
        self.forwarded
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn task_posted(&self) {
        self.market.posted.inc();
    }

    /// `outcome` is `claimed`, `held` (already this worker's) or `refused`.
    pub fn task_claim(&self, outcome: &'static str) {
        self.market
            .claims
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// `outcome` is `new`, `duplicate` or `refused`.
    pub fn task_submission(&self, outcome: &'static str) {
        self.market
            .submissions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// `outcome` is `completed` or `rejected`; `by` is `evaluator`, `policy` or `operator`.
    pub fn task_evaluation(&self, outcome: &'static str, by: &'static str) {
        self.market
            .evaluations
            .get_or_create(&EvaluationLabels { outcome, by })
            .inc();
    }

    /// An amount of `asset` that reached `state` (`credited`, `batched`, `paid`).
    #[allow(clippy::cast_precision_loss)] // a float counter by design (see RewardLabels)
    pub fn settled(&self, state: &'static str, asset: &str, amount: crate::domain::Amount) {
        if amount.is_zero() {
            return;
        }
        self.market
            .rewards
            .get_or_create(&RewardLabels {
                state,
                asset: asset.to_owned(),
            })
            .inc_by(amount.atomic() as f64);
    }

    /// What one sweep changed.
    pub fn task_sweep(&self, r: &super::market::engine::SweepReport) {
        for (kind, n) in [
            ("reopened", r.reopened),
            ("abandoned", r.abandoned),
            ("expired", r.expired),
            ("auto_completed", r.auto_completed),
            ("auto_rejected", r.auto_rejected),
        ] {
            if n > 0 {
                self.market
                    .sweeps
                    .get_or_create(&KindLabels { kind })
                    .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
            }
        }
        let by_policy = [
            ("completed", r.auto_completed),
            ("rejected", r.auto_rejected),
        ];
        for (outcome, n) in by_policy {
            if n > 0 {
                self.market
                    .evaluations
                    .get_or_create(&EvaluationLabels {
                        outcome,
                        by: "policy",
                    })
                    .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
            }
        }
    }

    /// The `OpenMetrics` text exposition.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Middleware counting every request (added with `Router::layer`, so the matched route
/// template is known).
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let started = Instant::now();
    let response = next.run(req).await;
    metrics
        .latency
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    if let Some(ErrorCodeTag(code)) = response.extensions().get::<ErrorCodeTag>() {
        metrics
            .errors
            .get_or_create(&CodeLabels {
                code: code.as_str(),
            })
            .inc();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_the_counters() {
        let m = Metrics::default();
        m.registration(RegistrationOutcome::Created);
        m.rate_limited("register");
        let text = m.encode().unwrap();
        assert!(
            text.contains("basis_orchestrator_registrations_total{outcome=\"created\"} 1"),
            "{text}"
        );
        assert!(text.contains("basis_orchestrator_rate_limited_total{limit=\"register\"} 1"));
        assert!(text.ends_with("# EOF\n"));
    }
}
