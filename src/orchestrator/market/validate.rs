//! Checking what clients and workers send the market before anything is stored: a posted task
//! (every field bounded, the deadline in the future, the reward positive and in the
//! orchestrator's asset) and the secrets guard on every free-text field. Refusals are
//! `INVALID_ARGUMENT` (or `SECRET_REFUSED`, never echoing the value).

use crate::domain::{Amount, MetricSpec, TaskId, TaskStatus, check_metric_name};
use crate::guard::{GuardText, SecretRefused};
use crate::orchestrator::error::ApiError;
use crate::orchestrator::market::problems::invalid;
use crate::orchestrator::store::{KeySha256, TaskRow};
use crate::wire::{
    DEFAULT_CLAIM_TTL_S, DEFAULT_PASS_THRESHOLD, MAX_CAPABILITIES, MAX_CAPABILITY_LEN,
    MAX_CLAIM_TTL_S, MAX_CRITERIA, MAX_CRITERION_LEN, MAX_DESCRIPTION_LEN, MAX_INPUT_MESSAGES,
    MAX_MODEL_LEN, MAX_REWARD_ATOMIC, MIN_CLAIM_TTL_S, PostTaskRequest, TaskInput,
};

/// The evaluator label of a task that names none.
pub const DEFAULT_EVALUATOR: &str = "any";
/// Longest evaluator label.
pub const MAX_EVALUATOR_LEN: usize = 128;
/// The last second a deadline may name (year 9999), so milliseconds fit an `i64`.
pub const MAX_DEADLINE_S: u64 = 253_402_300_799;

const FIX: &str = "Fix the field named in the message; /openapi.json describes PostTaskRequest.";

/// The secrets guard over every free-text field of a posted task.
pub fn guard_post(req: &PostTaskRequest) -> Result<(), SecretRefused> {
    req.description.guard_free_text("description")?;
    req.criteria.guard_free_text("criteria")?;
    req.required_capabilities.guard("required_capabilities")?;
    req.asset.guard("asset")?;
    req.evaluator.guard("evaluator")?;
    if let Some(input) = &req.input {
        input.model.guard("input.model")?;
        for (i, m) in input.messages.iter().enumerate() {
            m.role.guard(&format!("input.messages[{i}].role"))?;
            m.content
                .guard_free_text(&format!("input.messages[{i}].content"))?;
        }
    }
    Ok(())
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn text_ok(s: &str, max: usize) -> bool {
    !s.trim().is_empty() && chars(s) <= max
}

fn check_input(input: &TaskInput) -> Result<(), ApiError> {
    if !text_ok(&input.model, MAX_MODEL_LEN) {
        return Err(invalid(
            format!("input.model must be a model name of 1 to {MAX_MODEL_LEN} characters"),
            FIX,
        ));
    }
    if !(1..=MAX_INPUT_MESSAGES).contains(&input.messages.len()) {
        return Err(invalid(
            format!("input.messages must hold 1 to {MAX_INPUT_MESSAGES} messages"),
            FIX,
        ));
    }
    if let Some(i) = input
        .messages
        .iter()
        .position(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
    {
        return Err(invalid(
            format!("input.messages[{i}].role must be system, user or assistant"),
            FIX,
        ));
    }
    Ok(())
}

/// Capabilities: bounded, no commas or whitespace (the listing filter is comma-separated);
/// returned sorted without duplicates.
fn capabilities(caps: Vec<String>) -> Result<Vec<String>, ApiError> {
    if caps.len() > MAX_CAPABILITIES {
        return Err(invalid(
            format!("at most {MAX_CAPABILITIES} required_capabilities"),
            FIX,
        ));
    }
    if let Some(i) = caps.iter().position(|c| {
        c.is_empty()
            || chars(c) > MAX_CAPABILITY_LEN
            || c.chars()
                .any(|ch| ch == ',' || ch.is_whitespace() || ch.is_control())
    }) {
        return Err(invalid(
            format!(
                "required_capabilities[{i}] must be 1 to {MAX_CAPABILITY_LEN} characters without \
                 commas or spaces, e.g. runtime:vllm or model:llama3.2:1b"
            ),
            FIX,
        ));
    }
    let mut caps = caps;
    caps.sort();
    caps.dedup();
    Ok(caps)
}

/// `min_vram_mib`: absent, or at least 1.
fn min_vram(v: Option<u64>) -> Result<Option<u64>, ApiError> {
    if v == Some(0) {
        return Err(invalid(
            "min_vram_mib must be at least 1 (leave it out when no GPU memory is needed)",
            FIX,
        ));
    }
    Ok(v)
}

/// A new open task from a validated request, posted by `client` (its label) with the key
/// whose hash is `client_key` (if one was sent).
pub fn new_task(
    req: PostTaskRequest,
    client: String,
    client_key: Option<KeySha256>,
    asset: &str,
    now_ms: u64,
) -> Result<TaskRow, ApiError> {
    if !text_ok(&req.description, MAX_DESCRIPTION_LEN) {
        return Err(invalid(
            format!("description must be 1 to {MAX_DESCRIPTION_LEN} characters, not blank"),
            FIX,
        ));
    }
    if req.criteria.is_empty() || req.criteria.len() > MAX_CRITERIA {
        return Err(invalid(
            format!("criteria must hold 1 to {MAX_CRITERIA} criteria (what the evaluator checks)"),
            FIX,
        ));
    }
    if let Some(i) = req
        .criteria
        .iter()
        .position(|c| !text_ok(c, MAX_CRITERION_LEN))
    {
        return Err(invalid(
            format!("criteria[{i}] must be 1 to {MAX_CRITERION_LEN} characters, not blank"),
            FIX,
        ));
    }
    if req.reward == Amount::ZERO {
        return Err(invalid(
            "reward must be positive (atomic units as a decimal string)",
            FIX,
        ));
    }
    if req.reward > Amount::from_atomic(MAX_REWARD_ATOMIC) {
        return Err(invalid(
            format!("reward must be at most {MAX_REWARD_ATOMIC} atomic units"),
            FIX,
        ));
    }
    if req.asset.as_deref().is_some_and(|a| a != asset) {
        return Err(invalid(
            format!("this orchestrator pays rewards in {asset} only"),
            "Leave asset out, or set it to the asset in the onboarding status.",
        ));
    }
    if req.deadline > MAX_DEADLINE_S || req.deadline.saturating_mul(1000) <= now_ms {
        return Err(invalid(
            "deadline must be a unix time (seconds) in the future",
            FIX,
        ));
    }
    let claim_ttl_s = req.claim_ttl_s.unwrap_or(DEFAULT_CLAIM_TTL_S);
    if !(MIN_CLAIM_TTL_S..=MAX_CLAIM_TTL_S).contains(&claim_ttl_s) {
        return Err(invalid(
            format!("claim_ttl_s must be between {MIN_CLAIM_TTL_S} and {MAX_CLAIM_TTL_S}"),
            FIX,
        ));
    }
    let pass_threshold = req.pass_threshold.unwrap_or(DEFAULT_PASS_THRESHOLD);
    if pass_threshold > 100 {
        return Err(invalid("pass_threshold must be between 0 and 100", FIX));
    }
    let evaluator = req
        .evaluator
        .unwrap_or_else(|| DEFAULT_EVALUATOR.to_owned());
    if !text_ok(&evaluator, MAX_EVALUATOR_LEN) {
        return Err(invalid(
            format!("evaluator must be a label of 1 to {MAX_EVALUATOR_LEN} characters"),
            FIX,
        ));
    }
    if let Some(input) = &req.input {
        check_input(input)?;
    }
    check_metric(req.family.as_deref(), req.metric.as_ref())?;
    Ok(TaskRow {
        task_id: TaskId::generate(),
        client,
        description: req.description,
        criteria: req.criteria,
        required_capabilities: capabilities(req.required_capabilities)?,
        min_vram_mib: min_vram(req.min_vram_mib)?,
        reward: req.reward,
        asset: asset.to_owned(),
        deadline_ms: req.deadline.saturating_mul(1000),
        output_format: req.output_format,
        claim_ttl_s,
        evaluator,
        pass_threshold,
        input: req.input,
        status: TaskStatus::Open,
        attempts: 0,
        created_ms: now_ms,
        claimed_by: None,
        claimed_ms: None,
        claim_expiry_ms: None,
        submission_id: None,
        client_key,
        family: req.family,
        metric: req.metric,
    })
}

/// `family` and `metric`: a family needs a metric (it is ranked by it); both follow the
/// metric-name grammar.
fn check_metric(family: Option<&str>, metric: Option<&MetricSpec>) -> Result<(), ApiError> {
    const FIX: &str = "Give a task family as a lowercase name (e.g. nanogpt/val-loss) together \
                       with metric {name: \"val_loss\", goal: \"minimize\" | \"maximize\"}.";
    if family.is_some() && metric.is_none() {
        return Err(invalid(
            "family needs a metric: a family is ranked by its best confirmed metric",
            FIX,
        ));
    }
    if let Some(family) = family {
        check_metric_name(family).map_err(|e| invalid(format!("family: {e}"), FIX))?;
    }
    if let Some(metric) = metric {
        metric
            .validate()
            .map_err(|e| invalid(format!("metric.name: {e}"), FIX))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OutputFormat;

    fn req() -> PostTaskRequest {
        PostTaskRequest {
            description: "Summarise".into(),
            criteria: vec!["short".into()],
            required_capabilities: vec![
                "runtime:vllm".into(),
                "gpu:nvidia".into(),
                "gpu:nvidia".into(),
            ],
            reward: Amount::from_atomic(1000),
            asset: None,
            deadline: 2_000_000_000,
            output_format: OutputFormat::Text,
            claim_ttl_s: None,
            evaluator: None,
            pass_threshold: None,
            input: None,
            min_vram_mib: None,
            family: None,
            metric: None,
        }
    }

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn defaults_and_sorted_capabilities() {
        let t = new_task(req(), "open".into(), None, "USDC", NOW).unwrap();
        assert_eq!(t.required_capabilities, ["gpu:nvidia", "runtime:vllm"]);
        assert_eq!((t.claim_ttl_s, t.pass_threshold), (600, 70));
        assert_eq!(t.evaluator, "any");
        assert_eq!(t.deadline_ms, 2_000_000_000_000);
        assert_eq!(t.status, TaskStatus::Open);
    }

    #[test]
    fn bad_fields_are_refused() {
        type Edit = Box<dyn Fn(&mut PostTaskRequest)>;
        let cases: Vec<Edit> = vec![
            Box::new(|r| r.criteria.clear()),
            Box::new(|r| r.criteria = vec!["  ".into()]),
            Box::new(|r| r.description = String::new()),
            Box::new(|r| r.reward = Amount::ZERO),
            Box::new(|r| r.reward = Amount::from_atomic(u128::MAX)),
            Box::new(|r| r.reward = Amount::from_atomic(MAX_REWARD_ATOMIC + 1)),
            Box::new(|r| r.asset = Some("ETH".into())),
            Box::new(|r| r.deadline = 1_700_000_000),
            Box::new(|r| r.deadline = u64::MAX),
            Box::new(|r| r.claim_ttl_s = Some(0)),
            Box::new(|r| r.claim_ttl_s = Some(86_401)),
            Box::new(|r| r.pass_threshold = Some(101)),
            Box::new(|r| r.required_capabilities = vec!["a,b".into()]),
            Box::new(|r| {
                r.input = Some(TaskInput {
                    model: "m".into(),
                    messages: vec![],
                    max_tokens: None,
                });
            }),
        ];
        for (i, f) in cases.iter().enumerate() {
            let mut r = req();
            f(&mut r);
            let e = new_task(r, "open".into(), None, "USDC", NOW).unwrap_err();
            assert_eq!(
                e.problem.code,
                crate::domain::ErrorCode::InvalidArgument,
                "case {i}"
            );
        }
    }

    #[test]
    fn the_guard_sees_every_free_text_field() {
        let key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        let mut r = req();
        r.description = format!("my key is {key}");
        let e = guard_post(&r).unwrap_err();
        assert!(!e.to_string().contains(key));
        let mut r = req();
        r.input = Some(TaskInput {
            model: "m".into(),
            messages: vec![crate::wire::InputMessage {
                role: "user".into(),
                content: format!("secret: {key}"),
            }],
            max_tokens: None,
        });
        assert!(guard_post(&r).is_err());
        // Free text cites hashes; ids and names do not hold them.
        let mut r = req();
        r.description = format!("Explain transaction 0x{key}.");
        r.criteria = vec![format!("names the sender of {key}")];
        assert!(guard_post(&r).is_ok());
        r.evaluator = Some(key.into());
        assert!(guard_post(&r).is_err());
    }
}
