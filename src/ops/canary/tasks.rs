//! The canary's task-market part (docs/CANARY.md, "Steps"): a task with an inference input is
//! posted with the client key, then fetched, claimed, executed on the echo worker's runtime,
//! submitted and evaluated through the same operations the MCP tools and the CLI call; the
//! settlement's receipt is re-verified from its JSON and the reward is read back from the ledger (0
//! for echo work, which is simulated).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::procs::Orchestrator;
use super::{Context, problem_text};
use crate::client::{DEFAULT_TIMEOUT, OrchestratorClient, ReadAs};
use crate::config::WorkerEnv;
use crate::domain::{
    Amount, OutputFormat, ReceiptId, SubmissionId, TaskId, WorkerId, verify_receipt_json,
};
use crate::ops::tasks::{claim, evaluate, execute, fetch, submit};
use crate::wire::{InputMessage, PostTaskRequest, TaskInput, Unpaid};

/// The reward the canary's task offers, in atomic units.
const REWARD: u128 = 1_000_000;

fn client(orch: &Orchestrator) -> Result<OrchestratorClient, String> {
    OrchestratorClient::new(orch.url.clone(), DEFAULT_TIMEOUT).map_err(|e| e.to_string())
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Posts an inference task any echo worker can run.
pub async fn post(orch: &Orchestrator) -> Result<(TaskId, String), String> {
    let req = PostTaskRequest {
        description: "basis canary: answer the prompt on your runtime".into(),
        criteria: vec!["the answer is the runtime's completion of the prompt".into()],
        required_capabilities: vec!["runtime:echo".into()],
        min_vram_mib: None,
        reward: Amount::from_atomic(REWARD),
        asset: None,
        deadline: now_s() + 3600,
        output_format: OutputFormat::Text,
        claim_ttl_s: Some(120),
        evaluator: Some("basis canary".into()),
        pass_threshold: None,
        input: Some(TaskInput {
            model: "echo".into(),
            messages: vec![InputMessage {
                role: "user".into(),
                content: "basis canary: prove the task market end to end".into(),
            }],
            max_tokens: None,
        }),
        family: None,
        metric: None,
    };
    let task = client(orch)?
        .post_task(&req, Some(&orch.client_key))
        .await
        .map_err(|e| e.to_string())?;
    let detail = format!(
        "{} reward {}",
        task.task_id,
        task.reward.describe(&task.asset, task.asset_decimals)
    );
    Ok((task.task_id, detail))
}

/// `fetch_tasks` lists the task, and says this worker's capabilities match.
pub async fn fetch(ctx: &Context, id: &TaskId) -> Result<((), String), String> {
    let out = fetch::run(ctx, &fetch::Input::default())
        .await
        .map_err(|p| problem_text(&p))?;
    let entry = out
        .tasks
        .iter()
        .find(|t| t.task.task_id == *id)
        .ok_or_else(|| format!("{id} is not among the open tasks fetch_tasks lists"))?;
    if !entry.capabilities_match {
        return Err(format!(
            "{id} is listed but this worker lacks {}",
            entry.missing_capabilities.join(", ")
        ));
    }
    Ok(((), format!("{id} listed, capabilities match")))
}

pub async fn claim(ctx: &Context, id: &TaskId) -> Result<((), String), String> {
    let out = claim::run(
        ctx,
        &claim::Input {
            task_id: id.to_string(),
            env_file: None,
        },
    )
    .await
    .map_err(|p| problem_text(&p))?;
    Ok(((), format!("claimed, lease {} s", out.expires_in_s)))
}

/// Runs the task's input on this host's echo runtime, then submits the output.
pub async fn execute_and_submit(
    ctx: &Context,
    id: &TaskId,
) -> Result<(SubmissionId, String), String> {
    let ran = execute::run(
        ctx,
        &execute::Input {
            task_id: id.to_string(),
            env_file: None,
        },
    )
    .await
    .map_err(|p| problem_text(&p))?;
    let hash = ran.output_hash.ok_or_else(|| {
        format!(
            "the output does not fit the task's format: {:?}",
            ran.format_error
        )
    })?;
    let sent = submit::run(
        ctx,
        &submit::Input {
            task_id: id.to_string(),
            output: Some(ran.output.clone()),
            output_file: None,
            usage: Some(ran.usage),
            duration_ms: Some(ran.timings.total_ms),
            metric: None,
            env_file: None,
        },
    )
    .await
    .map_err(|p| problem_text(&p))?;
    if sent.output_hash != hash {
        return Err(format!(
            "the orchestrator recorded {} but execute_task computed {hash}",
            sent.output_hash
        ));
    }
    let detail = format!(
        "{} tokens on {}, submitted as {} ({})",
        ran.usage.completion_tokens, ran.runtime, sent.submission_id, sent.output_hash
    );
    Ok((sent.submission_id, detail))
}

/// The Evaluator Agent's env file: the orchestrator URL and the evaluator key, 0600, beside the
/// worker's (a separate host in real life).
fn evaluator_env(ctx: &Context, orch: &Orchestrator) -> Result<PathBuf, String> {
    let path = ctx.dirs().config_dir.join("evaluator.env");
    let env = WorkerEnv {
        orchestrator_url: Some(orch.url.clone()),
        evaluator_key: Some(orch.evaluator_key.clone()),
        ..WorkerEnv::default()
    };
    env.write(&path, &ctx.allowed).map_err(|e| e.to_string())?;
    Ok(path)
}

/// `verify_output`: review (the hash recomputed), then pass; returns the receipt's id.
pub async fn evaluate(
    ctx: &Context,
    orch: &Orchestrator,
    sub: &SubmissionId,
) -> Result<(ReceiptId, String), String> {
    let env_file = Some(evaluator_env(ctx, orch)?.display().to_string());
    let review = evaluate::run(
        ctx,
        &evaluate::Input {
            submission_id: sub.to_string(),
            score: None,
            passed: None,
            reasons: None,
            metric: None,
            env_file: env_file.clone(),
        },
    )
    .await
    .map_err(|p| problem_text(&p))?;
    if !review.hash_verified {
        return Err("the output fetched for review does not hash to its output_hash".into());
    }
    let done = evaluate::run(
        ctx,
        &evaluate::Input {
            submission_id: sub.to_string(),
            score: Some(100),
            passed: Some(true),
            reasons: Some(vec!["the runtime answered the prompt".into()]),
            metric: None,
            env_file,
        },
    )
    .await
    .map_err(|p| problem_text(&p))?;
    let settled = client(orch)?
        .submission(sub, ReadAs::Key(&orch.client_key))
        .await
        .map_err(|e| e.to_string())?;
    let receipt = settled
        .receipt_id
        .ok_or("the evaluated submission has no receipt")?;
    let attestation = done
        .attestation_hash
        .ok_or("the evaluation came back without an attestation hash")?;
    Ok((
        receipt,
        format!("{} -> {}, attestation {attestation}", sub, settled.status),
    ))
}

/// The settlement receipt verifies from its JSON alone, and the ledger shows the credit:
/// 0 for echo work, stated as simulated.
pub async fn settled(
    orch: &Orchestrator,
    receipt: &ReceiptId,
    worker: &str,
) -> Result<((), String), String> {
    let http = crate::http::client_builder(std::time::Duration::from_secs(2))
        .timeout(DEFAULT_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let url = orch
        .url
        .join(&crate::wire::receipt_path(receipt.as_str()))
        .map_err(|e| e.to_string())?;
    let json: serde_json::Value = http
        .get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .error_for_status()
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let hash = verify_receipt_json(&json).map_err(|e| e.to_string())?;
    if json["kind"] != "task_settlement" {
        return Err(format!(
            "receipt kind is {}, not task_settlement",
            json["kind"]
        ));
    }
    let worker = WorkerId::parse(worker).map_err(|e| e.to_string())?;
    let rewards = client(orch)?
        .rewards(&worker)
        .await
        .map_err(|e| e.to_string())?;
    let credit = rewards
        .credits
        .first()
        .ok_or("the ledger shows no credit for the worker")?;
    if credit.unpaid != Some(Unpaid::Simulated) || !credit.net.is_zero() {
        return Err(format!(
            "echo work must be credited 0 as simulated; the ledger shows {} ({:?})",
            credit.net, credit.unpaid
        ));
    }
    Ok((
        (),
        format!(
            "receipt {hash} verifies; credit {} (simulated: echo work pays 0), pending {}",
            credit.net.describe(&credit.asset, credit.asset_decimals),
            rewards
                .totals
                .pending
                .describe(&rewards.asset, rewards.asset_decimals)
        ),
    ))
}
