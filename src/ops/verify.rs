//! `verify_online`: a checklist that says whether this host's worker is really online, each
//! failed item with the fix — env complete, registered, supervisor alive, worker connected,
//! heartbeat fresh, orchestrator says online, runtime healthy, jobs routable. Read-only; can
//! wait (with progress) until everything passes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Context, network, status};
use crate::domain::{ErrorCode, Problem};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::wire::{WorkerState, WorkerStatus};

/// The longest `wait_s` accepted.
pub const MAX_WAIT_S: u64 = 300;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Keep checking until every item passes or this many seconds pass (0-300, default 0:
    /// check once). Progress notifications are sent while waiting.
    #[serde(default)]
    pub wait_s: Option<u64>,
    /// The env file (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.env_file.guard("env_file")
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    /// Stable name: env_complete, orchestrator_reachable, registered, supervisor_alive,
    /// worker_connected, heartbeat_fresh, orchestrator_says_online, runtime_healthy,
    /// can_receive_jobs.
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// How to make it pass, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// Every check passed.
    pub online: bool,
    pub checks: Vec<Check>,
    /// Seconds spent waiting.
    pub waited_s: u64,
    /// Jobs the running worker takes at once (`None` without a current worker status). Set
    /// by `BASIS_WORKER_CAPACITY` (write_env's `capacity`); a change applies at the next start.
    pub capacity: Option<u32>,
    pub next_step: String,
}

fn item(name: &str, ok: bool, detail: impl Into<String>, fix: &str) -> Check {
    Check {
        name: name.to_owned(),
        ok,
        detail: detail.into(),
        fix: (!ok).then(|| fix.to_owned()),
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn supervisor_alive(sup: &status::Output) -> Check {
    item(
        "supervisor_alive",
        sup.running,
        if sup.running {
            format!(
                "the supervisor is {}; the worker process is {}",
                sup.supervisor.describe(),
                sup.state.describe()
            )
        } else {
            format!("the supervisor is {}", sup.supervisor.describe())
        },
        "start the worker with start_worker (`basis start`)",
    )
}

fn worker_connected(worker: Option<&WorkerStatus>) -> Check {
    item(
        "worker_connected",
        worker.is_some_and(|w| w.state == WorkerState::Online),
        worker.map_or_else(
            || "no report from a running worker (worker-status.json)".to_owned(),
            |w| {
                format!(
                    "the worker is {}; it runs up to {} jobs at once",
                    w.state.describe(),
                    w.capacity
                )
            },
        ),
        "read worker_status: its last error and log lines say why (the worker may be unable to \
         reach the orchestrator, or refused by it)",
    )
}

fn heartbeat_fresh(age: Option<u64>, window: u64) -> Check {
    item(
        "heartbeat_fresh",
        age.is_some_and(|age| age <= window),
        age.map_or_else(
            || "no heartbeat acknowledged yet".to_owned(),
            |age| format!("last acknowledged {age} s ago (window {window} s)"),
        ),
        "wait a heartbeat interval; if it stays stale, check the network to the orchestrator",
    )
}

fn orchestrator_reachable(net: &network::Output) -> Check {
    item(
        "orchestrator_reachable",
        net.reachable,
        match &net.orchestrator_error {
            None if net.reachable => {
                format!("the orchestrator at {} answers", net.orchestrator_url)
            }
            None => format!(
                "the orchestrator at {} did not answer",
                net.orchestrator_url
            ),
            Some(p) => p.message.clone(),
        },
        &format!(
            "{}; network_status shows what this host sees",
            network::unreachable_step(
                &net.orchestrator_url,
                &network::env_url_source(&net.env.path)
            )
        ),
    )
}

fn registered(net: &network::Output) -> Check {
    item(
        "registered",
        net.registered && net.credential_matches,
        match (net.reachable, net.registered, net.credential_matches) {
            (false, _, _) => "unknown: the orchestrator could not be asked".to_owned(),
            (true, false, _) => "the orchestrator does not know this worker id".to_owned(),
            (true, true, false) => "the orchestrator holds another key for this id".to_owned(),
            (true, true, true) if net.legacy => {
                "registered with this host's legacy token; register_worker moves it to the \
                 device key"
                    .to_owned()
            }
            (true, true, true) => "registered with this host's device key".to_owned(),
        },
        if net.reachable {
            "run register_worker (`basis register`)"
        } else {
            "make the orchestrator reachable first (see orchestrator_reachable)"
        },
    )
}

fn orchestrator_says_online(net: &network::Output) -> Check {
    item(
        "orchestrator_says_online",
        net.worker.as_ref().is_some_and(|w| w.online),
        match &net.worker {
            None => "the orchestrator has no record of this worker".to_owned(),
            Some(w) if w.online => "the orchestrator sees this worker online".to_owned(),
            Some(_) => "the orchestrator sees this worker offline".to_owned(),
        },
        "wait for the worker to connect and heartbeat (verify_online with wait_s)",
    )
}

fn can_receive_jobs(net: &network::Output) -> Check {
    item(
        "can_receive_jobs",
        net.onboarding.as_ref().is_some_and(|o| o.can_receive_jobs),
        match &net.onboarding {
            None => "the orchestrator did not answer".to_owned(),
            Some(o) if !o.job_routing => "this orchestrator does not route jobs".to_owned(),
            Some(o) if o.can_receive_jobs => {
                "the orchestrator routes jobs, and a ready worker is connected".to_owned()
            }
            Some(_) => "the orchestrator routes jobs, but no ready worker is connected".to_owned(),
        },
        "the orchestrator routes jobs only to online, ready workers: fix the items above",
    )
}

/// One pass over every check.
/// The checks, and the running worker's capacity when it reports one.
async fn checklist(ctx: &Context, input: &Input) -> Result<(Vec<Check>, Option<u32>), Problem> {
    let net = network::run(
        ctx,
        &network::Input {
            orchestrator_url: None,
            env_file: input.env_file.clone(),
        },
    )
    .await?;
    let sup = status::run(ctx, &status::Input { log_lines: Some(0) }).await?;
    let worker = sup
        .worker_status
        .as_ref()
        .filter(|_| sup.worker_status_current);
    let window = net.onboarding.as_ref().map_or(30, |o| o.online_window_s);
    let heartbeat_age = worker
        .and_then(|w| w.last_heartbeat_acked)
        .map(|t| now_s().saturating_sub(t));
    let mut checks = vec![
        item(
            "env_complete",
            net.env.complete,
            if net.env.complete {
                format!("{} has every key", net.env.path)
            } else {
                format!("{} lacks {}", net.env.path, net.env.missing.join(", "))
            },
            "write the missing settings with write_env (`basis write-env`)",
        ),
        orchestrator_reachable(&net),
        registered(&net),
        supervisor_alive(&sup),
        worker_connected(worker),
        heartbeat_fresh(heartbeat_age, window),
        orchestrator_says_online(&net),
        item(
            "runtime_healthy",
            worker.is_some_and(|w| w.runtime_healthy),
            worker
                .and_then(|w| w.runtime_detail.clone())
                .unwrap_or_else(|| "unknown (no current worker status)".to_owned()),
            "start the runtime (Ollama / vLLM) or pull the model; check_hardware shows which",
        ),
        can_receive_jobs(&net),
    ];
    checks.shrink_to_fit();
    Ok((checks, worker.map(|w| w.capacity)))
}

/// [`run_with_progress`] without progress reports.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    run_with_progress(ctx, input, &|_, _| {}).await
}

/// Checks, and with `wait_s` keeps checking once a second until everything passes; calls
/// `progress(passed, total)` after every pass. Dropping the future stops waiting.
pub async fn run_with_progress(
    ctx: &Context,
    input: &Input,
    progress: &(dyn Fn(u32, u32) + Send + Sync),
) -> Result<Output, Problem> {
    input.check_secrets()?;
    let wait = input.wait_s.unwrap_or(0);
    if wait > MAX_WAIT_S {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!("wait_s must be at most {MAX_WAIT_S}"),
        )
        .with_fix("wait in several calls, or omit wait_s to check once"));
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(wait);
    loop {
        let (checks, capacity) = checklist(ctx, input).await?;
        let passed = u32::try_from(checks.iter().filter(|c| c.ok).count()).unwrap_or(u32::MAX);
        let total = u32::try_from(checks.len()).unwrap_or(u32::MAX);
        progress(passed, total);
        let online = passed == total;
        tracing::debug!(
            passed,
            total,
            failing = checks.iter().find(|c| !c.ok).map(|c| c.name.as_str()),
            "checked whether the worker is online"
        );
        if online || Instant::now() >= deadline {
            let next_step = match checks.iter().find(|c| !c.ok) {
                None => "the worker is online and can receive jobs".to_owned(),
                Some(first) => format!(
                    "fix {} first: {}; then verify again",
                    first.name,
                    first.fix.as_deref().unwrap_or("see its detail")
                ),
            };
            return Ok(Output {
                online,
                checks,
                waited_s: start.elapsed().as_secs(),
                capacity,
                next_step,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
