//! `canary` (docs/CANARY.md): the end-to-end proof on one machine. With throwaway secrets and
//! a throwaway wallet in a temp dir it starts a real orchestrator, registers a worker, starts a
//! real echo worker through the supervisor, and drives the gateway and the task market,
//! checking each promise listed in docs/CANARY.md, "Steps".
//! Every step is reported; the first failure stops the run; cleanup always happens.

// The canary runs once per process, not on a hot path: its futures are large because they hold
// whole operations, and boxing each step would only add noise.
#![allow(clippy::large_futures)]

mod gateway;
mod procs;
mod tasks;

use std::fmt::Write as _;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::RngCore;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Context, register, start, stop, verify};
use crate::domain::{ErrorCode, Problem, ReceiptId, SubmissionId, WalletAddress};

/// One line of the checklist.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    pub name: String,
    /// passed, failed, or not_run (an earlier step failed).
    pub outcome: Outcome,
    pub detail: String,
    pub ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    NotRun,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// Every step passed.
    pub passed: bool,
    pub steps: Vec<Step>,
    pub total_ms: u64,
}

impl Output {
    /// The checklist as text.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        for step in &self.steps {
            let mark = match step.outcome {
                Outcome::Passed => "[x]",
                Outcome::Failed => "[!]",
                Outcome::NotRun => "[ ]",
            };
            let _ = writeln!(
                s,
                "{mark} {:<46} {:>6} ms  {}",
                step.name, step.ms, step.detail
            );
        }
        let verdict = if self.passed {
            "canary passed"
        } else {
            "canary FAILED"
        };
        let _ = write!(s, "{verdict} in {} ms", self.total_ms);
        s
    }
}

/// The steps, in order (names as shown).
const STEPS: [&str; 16] = [
    "orchestrator starts (SQLite in a temp dir)",
    "no worker: chat completion -> 503",
    "no client key: chat completion -> 401",
    "register a worker (throwaway wallet)",
    "start an echo worker via the supervisor",
    "worker online within the window",
    "chat completion -> 200, receipt verifies",
    "streamed completion -> 200, receipt verifies",
    "post a task with an inference input",
    "fetch_tasks lists it for this worker",
    "claim_task",
    "execute_task on the runtime, submit_output",
    "verify_output: hash rechecked, evaluated",
    "settled: receipt verifies, reward in ledger",
    "stop the worker",
    "worker offline",
];

/// Runs the steps in order; `progress` sees each finished step.
struct Run<'a> {
    steps: Vec<Step>,
    failed: bool,
    progress: &'a (dyn Fn(&Step) + Send + Sync),
}

impl Run<'_> {
    async fn step<T>(
        &mut self,
        fut: impl Future<Output = Result<(T, String), String>>,
    ) -> Option<T> {
        let name = STEPS[self.steps.len()].to_owned();
        if self.failed {
            self.steps.push(Step {
                name,
                outcome: Outcome::NotRun,
                detail: String::new(),
                ms: 0,
            });
            return None;
        }
        let start = Instant::now();
        let result = fut.await;
        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (value, outcome, detail) = match result {
            Ok((v, detail)) => (Some(v), Outcome::Passed, detail),
            Err(detail) => (None, Outcome::Failed, detail),
        };
        self.failed |= outcome == Outcome::Failed;
        let step = Step {
            name,
            outcome,
            detail,
            ms,
        };
        (self.progress)(&step);
        self.steps.push(step);
        value
    }
}

fn problem_text(p: &Problem) -> String {
    format!("{}: {}", p.code, p.message)
}

/// A fresh random public address: the canary never needs (or makes) a key for it.
fn throwaway_wallet() -> Result<WalletAddress, String> {
    let mut raw = [0u8; 20];
    rand::rng().fill_bytes(&mut raw);
    WalletAddress::parse(&format!("0x{}", hex::encode(raw))).map_err(|e| e.to_string())
}

/// Runs the canary in a fresh temp dir.
pub async fn run(progress: &(dyn Fn(&Step) + Send + Sync)) -> Result<Output, Problem> {
    let dir = tempfile::Builder::new()
        .prefix("basis-canary-")
        .tempdir()
        .map_err(|e| {
            Problem::new(ErrorCode::IoError, format!("cannot create a temp dir: {e}"))
                .with_fix("check that TMPDIR is writable")
        })?;
    let started = Instant::now();
    let mut run = Run {
        steps: Vec::new(),
        failed: false,
        progress,
    };
    let mut worker_ctx = None;
    let orchestrator = drive(&mut run, dir.path(), &mut worker_ctx).await;
    // Cleanup whatever happened: stop the supervisor (if one was started), then the orchestrator.
    if let Some(ctx) = &worker_ctx {
        let _ = stop::run(
            ctx,
            &stop::Input {
                drain_timeout_s: Some(5),
            },
        )
        .await;
    }
    if let Some(mut o) = orchestrator {
        o.shutdown().await;
    }
    Ok(Output {
        passed: !run.failed,
        steps: run.steps,
        total_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Waits (up to 30 s) until `verify_online` passes every check.
async fn wait_online(ctx: &Context) -> Result<((), String), String> {
    let input = verify::Input {
        wait_s: Some(30),
        env_file: None,
    };
    let out = verify::run(ctx, &input)
        .await
        .map_err(|p| problem_text(&p))?;
    if out.online {
        let n = out.checks.len();
        return Ok(((), format!("all {n} checks pass after {} s", out.waited_s)));
    }
    let failing: Vec<&str> = out
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    Err(format!(
        "still failing after {} s: {}",
        out.waited_s,
        failing.join(", ")
    ))
}

/// The steps proper. Returns the orchestrator process (for cleanup) when it started.
async fn drive(
    run: &mut Run<'_>,
    home: &Path,
    worker_ctx: &mut Option<Context>,
) -> Option<procs::Orchestrator> {
    let orchestrator = run
        .step(async {
            let o = procs::Orchestrator::start(home).await?;
            let detail = format!("listening on {}", o.url);
            Ok((o, detail))
        })
        .await;
    let orch = orchestrator?;
    let gw = gateway::Gateway::new(&orch);
    run.step(gw.expect_status(true, 503, "no worker serves the model"))
        .await;
    run.step(gw.expect_status(false, 401, "refused without a client key"))
        .await;

    let registered = run
        .step(async {
            let ctx = Context::for_home(home, &orch.url).map_err(|p| problem_text(&p))?;
            let wallet = throwaway_wallet()?;
            let out = register::run(
                &ctx,
                &register::Input {
                    wallet: Some(wallet.to_string()),
                    worker_id: Some(gateway::WORKER_ID.to_owned()),
                    runtime: Some("echo".to_owned()),
                    ..register::Input::default()
                },
            )
            .await
            .map_err(|p| problem_text(&p))?;
            let detail = format!(
                "{} -> {}, device key {}",
                out.record.worker_id, out.record.wallet, out.key_fingerprint
            );
            Ok((ctx, detail))
        })
        .await;
    let Some(ctx) = registered else {
        return Some(orch);
    };
    let ctx = worker_ctx.insert(ctx);
    run.step(async {
        let out = start::run(ctx, &start::Input::default())
            .await
            .map_err(|p| problem_text(&p))?;
        Ok((
            (),
            format!("supervisor pid {}, log {}", out.pid, out.log_path),
        ))
    })
    .await;
    run.step(wait_online(ctx)).await;
    run.step(gw.completion(false)).await;
    run.step(gw.completion(true)).await;
    task_market(run, &orch, ctx).await;
    run.step(async {
        let out = stop::run(
            ctx,
            &stop::Input {
                drain_timeout_s: Some(10),
            },
        )
        .await
        .map_err(|p| problem_text(&p))?;
        if out.stopped {
            Ok(((), "supervisor and worker exited".to_owned()))
        } else {
            Err("nothing was running to stop".to_owned())
        }
    })
    .await;
    run.step(gw.expect_offline(Duration::from_secs(10))).await;
    Some(orch)
}

/// The task part of the canary (docs/CANARY.md, "Steps"): post, fetch, claim, execute,
/// submit, evaluate, settle.
async fn task_market(run: &mut Run<'_>, orch: &procs::Orchestrator, ctx: &Context) {
    let task = run.step(tasks::post(orch)).await;
    let fetched = match &task {
        Some(id) => run.step(tasks::fetch(ctx, id)).await,
        None => run.step(not_reached()).await,
    };
    let claimed = match (&task, fetched) {
        (Some(id), Some(())) => run.step(tasks::claim(ctx, id)).await,
        _ => run.step(not_reached()).await,
    };
    let submitted = match (&task, claimed) {
        (Some(id), Some(())) => run.step(tasks::execute_and_submit(ctx, id)).await,
        _ => run.step(not_reached::<SubmissionId>()).await,
    };
    let receipt = match &submitted {
        Some(sub) => run.step(tasks::evaluate(ctx, orch, sub)).await,
        None => run.step(not_reached::<ReceiptId>()).await,
    };
    match &receipt {
        Some(r) => run.step(tasks::settled(orch, r, gateway::WORKER_ID)).await,
        None => run.step(not_reached()).await,
    };
}

/// A step whose input an earlier (failed) step did not produce; [`Run::step`] marks it not
/// run without polling this.
fn not_reached<T>() -> std::future::Ready<Result<(T, String), String>> {
    std::future::ready(Err("an earlier step failed".to_owned()))
}
