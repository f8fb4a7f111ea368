//! `basis erc8004 feedback SUBMISSION_ID` (docs/DISCOVERY.md, "Evaluator attestations as
//! feedback"): an evaluated submission's attestation as an ERC-8004 reputation feedback
//! payload. `feedbackHash` is the attestation hash, keccak256 of the evaluation's canonical
//! JSON, recomputed here before anything is prepared; the evaluation itself travels with the
//! payload so anyone can recompute it. With the worker's agent id (from its registration
//! file) and a Reputation Registry, the unsigned `giveFeedback` call is prepared too, for the
//! evaluator's own wallet.

use alloy_primitives::{B256, U256};
use alloy_sol_types::SolCall as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::erc8004::{UnsignedCall, giveFeedbackCall, orchestrator};
use super::registry;
use crate::domain::{AgentRegistry, ErrorCode, Evaluation, Problem, TaskStatus};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::ops::Context;
use crate::ops::tasks::submission;

/// `tag1` of every payload: where the signal comes from.
pub const TAG: &str = "basis-task";

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The evaluated submission (sub- + 32 hex).
    pub submission_id: String,
    /// The Reputation Registry's address (0x…), to prepare the giveFeedback call.
    #[serde(default)]
    pub reputation_registry: Option<String>,
    /// The chain it is on; goes with `reputation_registry`.
    #[serde(default)]
    pub chain_id: Option<u64>,
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.submission_id.guard("submission_id")?;
        self.reputation_registry.guard("reputation_registry")?;
        self.env_file.guard("env_file")
    }
}

/// The feedback payload (the off-chain file `feedbackURI` may point at, and the call's
/// arguments).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    /// The worker's Identity Registry (`eip155:…`), when it linked an agent id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_registry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<u64>,
    /// The evaluation's score, 0 to 100.
    pub value: u8,
    pub value_decimals: u8,
    /// Always `basis-task`.
    pub tag1: String,
    /// `passed`, `rejected`, or `overturned` (rejected, then resolved for the worker on dispute).
    pub tag2: String,
    /// The task on the orchestrator.
    pub endpoint: String,
    /// The submission on the orchestrator (its evaluation is public to whoever may read it).
    #[serde(rename = "feedbackURI")]
    pub feedback_uri: String,
    /// keccak256 of the evaluation's canonical JSON: the attestation hash.
    pub feedback_hash: String,
    /// Unix seconds the evaluation was recorded.
    pub created_at: u64,
    pub worker_id: String,
    pub submission_id: String,
    pub evaluation: Evaluation,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub feedback: Feedback,
    /// The unsigned giveFeedback call, when the worker has an agent id in a registry on the
    /// Reputation Registry's chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<UnsignedCall>,
    pub next_step: String,
}

pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let checked = submission::run(
        ctx,
        &submission::Input {
            submission_id: input.submission_id.clone(),
            env_file: input.env_file.clone(),
        },
    )
    .await?;
    let s = checked.submission;
    let (Some(evaluation), Some(hash), Some(evaluated_at)) =
        (s.evaluation.clone(), s.attestation_hash, s.evaluated_at)
    else {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!("{} has not been evaluated yet", s.submission_id),
        )
        .with_fix("Export feedback once the evaluator has judged it (get_submission shows it)."));
    };
    if !matches!(s.status, TaskStatus::Completed | TaskStatus::Rejected) {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!(
                "{} is {}: its standing is not settled yet",
                s.submission_id, s.status
            ),
        )
        .with_fix("Export feedback once the dispute is resolved (get_submission shows it)."));
    }
    if checked.attestation_verified != Some(true) {
        return Err(Problem::new(
            ErrorCode::ReceiptInvalid,
            "the evaluation does not hash to its attestation hash: nothing was prepared",
        )
        .with_fix("Report this to the orchestrator's operator; the stored evaluation changed."));
    }
    let (client, url) = orchestrator(ctx, input.env_file.as_deref())?;
    let file = client.worker_registration(&s.worker_id).await?;
    let base = url.as_str().trim_end_matches('/');
    let rep = match (&input.reputation_registry, input.chain_id) {
        (None, None) => None,
        (address, chain) => Some(registry(
            address.as_deref(),
            chain,
            None,
            "Reputation Registry",
        )?),
    };
    let link = agent_link(&file.registrations, rep);
    let feedback = Feedback {
        agent_registry: link.map(|(r, _)| r.to_string()),
        agent_id: link.map(|(_, id)| id),
        value: evaluation.score,
        value_decimals: 0,
        tag1: TAG.to_owned(),
        tag2: standing(s.status, s.dispute.is_some()).to_owned(),
        endpoint: format!("{base}/api/tasks/{}", s.task_id),
        feedback_uri: format!("{base}/api/submissions/{}", s.submission_id),
        feedback_hash: hash.to_string(),
        created_at: evaluated_at,
        worker_id: s.worker_id.to_string(),
        submission_id: s.submission_id.to_string(),
        evaluation,
    };
    let transaction = give_feedback(&feedback, rep, link, hash);
    let next_step = match (&transaction, link) {
        (Some(tx), _) => format!(
            "Send the giveFeedback call from the evaluator's own wallet (to {} on chain {}); \
             ERC-8004 refuses feedback from the agent's owner.",
            tx.to, tx.chain_id
        ),
        (None, None) => "The worker has linked no ERC-8004 agent id (`basis erc8004 link`); \
                         the payload stands alone until it does."
            .to_owned(),
        (None, Some(_)) if rep.is_some() => "The worker's agent ids are in Identity \
                                             Registries on other chains than this Reputation \
                                             Registry's; no giveFeedback call was prepared."
            .to_owned(),
        (None, Some(_)) => "Pass --reputation-registry and --chain-id to prepare the \
                            giveFeedback call."
            .to_owned(),
    };
    Ok(Output {
        feedback,
        transaction,
        next_step,
    })
}

/// The agent id in an Identity Registry on the same chain as the Reputation Registry
/// (ERC-8004 pairs them per chain); else the first one linked.
fn agent_link(
    registrations: &[crate::wire::AgentRegistrationRef],
    rep: Option<AgentRegistry>,
) -> Option<(AgentRegistry, u64)> {
    let parsed = || {
        registrations
            .iter()
            .filter_map(|r| Some((AgentRegistry::parse(&r.agent_registry).ok()?, r.agent_id)))
    };
    parsed()
        .find(|(r, _)| rep.is_none_or(|rep| rep.chain_id == r.chain_id))
        .or_else(|| parsed().next())
}

/// The unsigned `giveFeedback` call, when the agent's registry is on the Reputation
/// Registry's chain.
fn give_feedback(
    feedback: &Feedback,
    rep: Option<AgentRegistry>,
    link: Option<(AgentRegistry, u64)>,
    hash: crate::domain::ReceiptHash,
) -> Option<UnsignedCall> {
    let (rep, (identity, agent_id)) = (rep?, link?);
    if identity.chain_id != rep.chain_id {
        return None;
    }
    let call = giveFeedbackCall {
        agentId: U256::from(agent_id),
        value: i128::from(feedback.value),
        valueDecimals: 0,
        tag1: feedback.tag1.clone(),
        tag2: feedback.tag2.clone(),
        endpoint: feedback.endpoint.clone(),
        feedbackURI: feedback.feedback_uri.clone(),
        feedbackHash: B256::from(*hash.as_bytes()),
    };
    Some(UnsignedCall::new(
        rep,
        &call.abi_encode(),
        "giveFeedback(uint256,int128,uint8,string,string,string,string,bytes32)",
    ))
}

/// `tag2`: the submission's settled standing. A rejection the operator overturned on dispute
/// is `overturned` (the evaluation, and so `value` and `feedbackHash`, still say what the
/// evaluator judged); one upheld is `rejected`.
fn standing(status: TaskStatus, disputed: bool) -> &'static str {
    match (status, disputed) {
        (TaskStatus::Completed, false) => "passed",
        (TaskStatus::Completed, true) => "overturned",
        _ => "rejected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standing_says_how_the_submission_settled() {
        assert_eq!(standing(TaskStatus::Completed, false), "passed");
        assert_eq!(standing(TaskStatus::Completed, true), "overturned");
        assert_eq!(standing(TaskStatus::Rejected, true), "rejected");
        assert_eq!(standing(TaskStatus::Rejected, false), "rejected");
    }
}
