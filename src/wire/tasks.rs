//! The task market's API bodies (docs/TASK_MARKET.md): posting and listing tasks, claims,
//! submissions, evaluations, disputes, the reward ledger, and the market policy shown in the
//! onboarding status.
//!
//! Who may call what: posting needs a client key (`Authorization: Bearer <client key>`, unless
//! the orchestrator runs `--open`); claim, release, submit and dispute need the worker's token
//! (`Authorization: Bearer <worker token>`, the same proof as the worker channel) for the
//! `worker_id` in the body; evaluating needs an evaluator key; resolving a dispute needs the
//! admin key (`x-basis-admin-key`). Listing and reading are public.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::domain::Unpaid;
use crate::domain::{
    Amount, Evaluation, JobId, MetricSpec, MetricValue, OutputFormat, OutputHash, ReceiptHash,
    ReceiptId, SubmissionId, TaskId, TaskStatus, Usage, WalletAddress, WorkerId,
};

/// `GET` (list) and `POST` (post a task).
pub const TASKS: &str = "/api/tasks";
/// Prefix of `GET /api/submissions/{id}` and its actions.
pub const SUBMISSIONS: &str = "/api/submissions";

/// `GET /api/tasks/{id}`.
pub fn task_path(id: &TaskId) -> String {
    format!("{TASKS}/{id}")
}
/// `POST /api/tasks/{id}/claim`.
pub fn claim_path(id: &TaskId) -> String {
    format!("{TASKS}/{id}/claim")
}
/// `POST /api/tasks/{id}/release`.
pub fn release_path(id: &TaskId) -> String {
    format!("{TASKS}/{id}/release")
}
/// `POST /api/tasks/{id}/submit`.
pub fn submit_path(id: &TaskId) -> String {
    format!("{TASKS}/{id}/submit")
}
/// `GET /api/submissions/{id}`.
pub fn submission_path(id: &SubmissionId) -> String {
    format!("{SUBMISSIONS}/{id}")
}
/// `POST /api/submissions/{id}/evaluate`.
pub fn evaluate_path(id: &SubmissionId) -> String {
    format!("{SUBMISSIONS}/{id}/evaluate")
}
/// `POST /api/submissions/{id}/dispute`.
pub fn dispute_path(id: &SubmissionId) -> String {
    format!("{SUBMISSIONS}/{id}/dispute")
}
/// `POST /api/submissions/{id}/resolve` (admin key).
pub fn resolve_path(id: &SubmissionId) -> String {
    format!("{SUBMISSIONS}/{id}/resolve")
}
/// `GET /api/workers/{id}/rewards`.
pub fn rewards_path(id: &WorkerId) -> String {
    format!("/api/workers/{id}/rewards")
}

/// Bounds every server and client checks the same way.
pub const MAX_DESCRIPTION_LEN: usize = 4_000;
pub const MAX_CRITERIA: usize = 32;
pub const MAX_CRITERION_LEN: usize = 1_000;
pub const MAX_CAPABILITIES: usize = 16;
pub const MAX_CAPABILITY_LEN: usize = 128;
pub const MAX_INPUT_MESSAGES: usize = 64;
pub const MAX_DISPUTE_REASON_LEN: usize = 2_000;
/// Claim lease bounds and default, seconds.
pub const MIN_CLAIM_TTL_S: u64 = 1;
pub const MAX_CLAIM_TTL_S: u64 = 86_400;
/// The largest reward one task may offer, in atomic units (10^30: a trillion units of an
/// 18-decimal asset). Bounded so that the ledger's sums stay far inside `u128`: a worker's
/// pending total could only overflow after 10^8 such rewards.
pub const MAX_REWARD_ATOMIC: u128 = 1_000_000_000_000_000_000_000_000_000_000;
pub const DEFAULT_CLAIM_TTL_S: u64 = 600;
/// The score a submission needs when the task does not say.
pub const DEFAULT_PASS_THRESHOLD: u8 = 70;
/// `GET /api/tasks` page size when `limit` is not given, and its maximum.
pub const TASKS_PAGE_DEFAULT: usize = 20;
pub const TASKS_PAGE_MAX: usize = 50;

/// One chat message of an inference task's input (`OpenAI` shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// What a worker can run on its runtime to produce the output of an inference task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    pub model: String,
    #[schemars(length(min = 1, max = 64))]
    pub messages: Vec<InputMessage>,
    /// Upper bound on generated tokens, passed to the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

/// `POST /api/tasks` (client key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostTaskRequest {
    /// What to do, for the worker (or its agent) to read.
    #[schemars(length(min = 1, max = 4000))]
    pub description: String,
    /// What the evaluator checks; at least one.
    #[schemars(length(min = 1, max = 32), inner(length(min = 1, max = 1000)))]
    pub criteria: Vec<String>,
    /// Capabilities a worker needs (docs/TASK_MARKET.md, "Capabilities"), e.g. `runtime:vllm`,
    /// `model:llama3.2:1b`, `gpu`, `gpu:nvidia`, `cpu-only`, `compute:9.0`, `label:region=eu`.
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub required_capabilities: Vec<String>,
    /// The VRAM (MiB) the worker's largest GPU must have; a claim from a worker with less (or
    /// none) is refused with `CAPABILITY_MISMATCH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_vram_mib: Option<u64>,
    /// Positive, in atomic units, as a decimal string.
    pub reward: Amount,
    /// The reward's asset; must be the orchestrator's asset (see the onboarding status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Unix seconds; must be in the future.
    pub deadline: u64,
    pub output_format: OutputFormat,
    /// How long a claim lasts before it lapses, seconds (1 to 86400; default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_ttl_s: Option<u64>,
    /// Who evaluates, as a label shown to workers (any evaluator key may evaluate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<String>,
    /// The score (0 to 100) a submission needs besides `passed`; default 70.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_threshold: Option<u8>,
    /// For inference tasks: what to run on the worker's runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<TaskInput>,
    /// The family the leaderboard ranks this task in by its metric (docs/DISCOVERY.md,
    /// "Metrics"), e.g. `nanogpt/val-loss`; needs `metric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub family: Option<String>,
    /// A number the submission reports and the evaluator confirms, and which way is better.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricSpec>,
}

/// A task as the orchestrator holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Task {
    pub task_id: TaskId,
    /// Who posted it: `key:` + the first 8 hex of the client key's sha256, or `open`.
    pub client: String,
    pub description: String,
    pub criteria: Vec<String>,
    pub required_capabilities: Vec<String>,
    /// The VRAM (MiB) a worker's largest GPU must have to claim it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_vram_mib: Option<u64>,
    pub reward: Amount,
    pub asset: String,
    /// Decimals of `asset`: an amount / 10^asset_decimals is whole units (e.g. 6 for USDC:
    /// "1500000" is 1.5). Absent when the orchestrator does not know them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<u8>,
    /// Unix seconds.
    pub deadline: u64,
    pub output_format: OutputFormat,
    pub claim_ttl_s: u64,
    pub evaluator: String,
    pub pass_threshold: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<TaskInput>,
    pub status: TaskStatus,
    /// Claims that lapsed or were released (3 → abandoned).
    pub attempts: u32,
    /// Unix seconds.
    pub created_at: u64,
    /// The current claim holder (claimed) or the submitter (submitted and after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<WorkerId>,
    /// Unix seconds when the current claim lapses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_expiry: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<SubmissionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricSpec>,
}

/// One page of `GET /api/tasks`, highest reward first (then by task id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaskList {
    pub tasks: Vec<Task>,
    /// Pass as `?cursor=` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `GET /api/tasks` query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskQuery {
    /// Default `open`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
    /// Comma-separated capabilities: only tasks whose required capabilities are all among
    /// these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<String>,
    /// Only tasks worker `fits` can claim: its registered capabilities and VRAM (not together
    /// with `capabilities`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fits: Option<WorkerId>,
    /// Only tasks paying at least this (decimal string of atomic units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_reward: Option<Amount>,
    /// Only tasks whose deadline is at least this many seconds away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_buffer_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// 1 to 50; default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// `POST /api/tasks/{id}/claim` and `/release` (worker token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub worker_id: WorkerId,
}

/// A granted claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Claim {
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    /// Unix seconds.
    pub claimed_at: u64,
    /// Unix seconds: submit before this, or the claim lapses.
    pub claim_expiry: u64,
    /// Failed attempts before this claim.
    pub attempts: u32,
}

/// `POST /api/tasks/{id}/submit` (worker token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub worker_id: WorkerId,
    /// The output, in the task's `output_format` (bytes: standard base64).
    pub output: String,
    /// keccak256 of the output's raw bytes; the orchestrator recomputes it.
    pub output_hash: OutputHash,
    /// Token counts, when the output came from a runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// How long producing it took, milliseconds, as the worker measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// For a task with a metric: the value this output reached, as a decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricValue>,
}

/// A ledger entry: one passed submission (`submission_id` and `task_id`), or one paid
/// gateway job (`job_id`; docs/SETTLEMENT.md, "Metered inference").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Credit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<SubmissionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    pub worker_id: WorkerId,
    /// The worker's reward address when credited.
    pub wallet: WalletAddress,
    /// The task's reward, or the job's price × its credited tokens (0 when not payable).
    pub gross: Amount,
    /// Protocol fee: `gross * protocol_fee_bps / 10000`, rounded down.
    pub fee: Amount,
    /// What the worker is owed: `gross - fee`.
    pub net: Amount,
    pub asset: String,
    /// Decimals of `asset`: an amount / 10^asset_decimals is whole units (e.g. 6 for USDC:
    /// "1500000" is 1.5). Absent when the orchestrator does not know them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<u8>,
    /// Absent when payable; otherwise why it pays nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpaid: Option<Unpaid>,
    /// `pending` until a settlement batch holds it, then `batched`, then `paid` once the
    /// operator recorded the batch's payment (docs/SETTLEMENT.md).
    pub status: String,
    /// Unix seconds.
    pub created_at: u64,
    pub receipt_id: ReceiptId,
    pub receipt_hash: ReceiptHash,
    /// The settlement batch holding it, once `batched`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<u64>,
}

/// A dispute raised on a rejected submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Dispute {
    pub reason: String,
    /// Unix seconds.
    pub raised_at: u64,
    /// `completed` or `rejected` once the operator resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<TaskStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<u64>,
}

/// A submission as the orchestrator holds it (`GET /api/submissions/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Submission {
    pub submission_id: SubmissionId,
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    /// `submitted`, `completed`, `rejected` or `disputed` (the task's status).
    pub status: TaskStatus,
    pub output_format: OutputFormat,
    pub output: String,
    pub output_hash: OutputHash,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Unix seconds.
    pub submitted_at: u64,
    /// Unix seconds: after this the evaluator-timeout policy applies.
    pub evaluation_deadline: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// keccak256(JCS(evaluation)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_hash: Option<ReceiptHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<u64>,
    /// True when the evaluation came from the evaluator-timeout policy, not an evaluator.
    #[serde(default)]
    pub auto_evaluated: bool,
    /// Unix seconds until which a rejection may be disputed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute_deadline: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute: Option<Dispute>,
    /// The ledger credit, once passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<Credit>,
    /// The settlement receipt (`GET /api/receipts/{id}`), once evaluated (pass or reject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_id: Option<ReceiptId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_hash: Option<ReceiptHash>,
    /// The metric the worker reported; the confirmed value is `evaluation.metric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricValue>,
}

/// `POST /api/submissions/{id}/dispute` (worker token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeRequest {
    pub worker_id: WorkerId,
    #[schemars(length(min = 1, max = 2000))]
    pub reason: String,
}

/// `POST /api/submissions/{id}/resolve` (admin key): the operator's decision on a dispute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// `completed` (for the worker: credited) or `rejected` (the rejection stands).
    pub outcome: TaskStatus,
    #[schemars(length(max = 2000))]
    #[serde(default)]
    pub note: String,
}

/// What happens when no evaluator answers before a submission's evaluation deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvaluatorTimeoutPolicy {
    /// The submission passes (anti-cheat still applies) and is credited.
    AutoComplete,
    /// The submission is rejected (and may be disputed).
    Reject,
}

impl EvaluatorTimeoutPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AutoComplete => "auto_complete",
            Self::Reject => "reject",
        }
    }
}

/// The market's rules, shown in the onboarding status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TaskMarketPolicy {
    /// The asset rewards are paid in.
    pub asset: String,
    /// Decimals of `asset`: an amount / 10^asset_decimals is whole units (e.g. 6 for USDC:
    /// "1500000" is 1.5). Absent when the orchestrator does not know them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<u8>,
    /// Protocol fee taken from each credit, basis points.
    pub protocol_fee_bps: u16,
    /// How long an evaluator has after a submission, seconds.
    pub evaluation_timeout_s: u64,
    pub evaluator_timeout_policy: EvaluatorTimeoutPolicy,
    /// How long after a rejection a dispute may be raised, seconds.
    pub dispute_window_s: u64,
    /// Outputs produced faster than this many tokens per second are not payable.
    pub max_tokens_per_s: u64,
    /// Largest accepted output, bytes.
    pub max_output_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_task_refuses_float_and_negative_rewards_and_unknown_fields() {
        let base = serde_json::json!({
            "description": "summarise",
            "criteria": ["short"],
            "reward": "1000",
            "deadline": 2_000_000_000u64,
            "output_format": "text",
        });
        let ok: PostTaskRequest = serde_json::from_value(base.clone()).unwrap();
        assert_eq!(ok.reward, Amount::from_atomic(1000));
        for bad in [
            serde_json::json!(1.5),
            serde_json::json!("-5"),
            serde_json::json!(1000),
            serde_json::json!("1e3"),
        ] {
            let mut v = base.clone();
            v["reward"] = bad.clone();
            assert!(
                serde_json::from_value::<PostTaskRequest>(v).is_err(),
                "{bad}"
            );
        }
        let mut v = base;
        v["surprise"] = true.into();
        assert!(serde_json::from_value::<PostTaskRequest>(v).is_err());
    }

    #[test]
    fn paths() {
        let t = TaskId::parse(&format!("task-{}", "a".repeat(32))).unwrap();
        assert_eq!(claim_path(&t), format!("/api/tasks/{t}/claim"));
        let s = SubmissionId::generate();
        assert_eq!(evaluate_path(&s), format!("/api/submissions/{s}/evaluate"));
    }
}
