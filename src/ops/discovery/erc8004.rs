//! `basis erc8004 prepare | link` (docs/DISCOVERY.md, "ERC-8004 registration files").
//! `prepare` fetches this worker's registration file from the orchestrator and prepares the
//! unsigned `register(agentURI)` call of an ERC-8004 Identity Registry (ABI-encoded with
//! alloy's `sol!`), for the owner to send from their own wallet; `link` records the agent id
//! that transaction returned, so the file lists it under `registrations` (signed with the device key).

use alloy_primitives::hex;
use alloy_sol_types::{SolCall as _, sol};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::registry;
use crate::domain::{AgentRegistry, ErrorCode, Problem, WorkerId};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::ops::Context;
use crate::ops::tasks::{Worker, client, read_env};
use crate::wire::{AgentLinkRequest, AgentRegistration};

sol! {
    /// ERC-8004 Identity Registry: mints the agent's id, pointing at its registration file.
    function register(string agentURI) external returns (uint256 agentId);
    /// ERC-8004 Reputation Registry: one feedback signal about an agent.
    function giveFeedback(
        uint256 agentId,
        int128 value,
        uint8 valueDecimals,
        string tag1,
        string tag2,
        string endpoint,
        string feedbackURI,
        bytes32 feedbackHash
    ) external;
}

/// An unsigned contract call, for the owner's own wallet to sign and send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UnsignedCall {
    pub chain_id: u64,
    /// The contract.
    pub to: String,
    /// Always "0": nothing is paid.
    pub value: String,
    /// The ABI-encoded call, 0x-prefixed.
    pub data: String,
    /// The function called, as its signature.
    pub function: String,
}

impl UnsignedCall {
    pub fn new(registry: AgentRegistry, data: &[u8], function: &str) -> Self {
        Self {
            chain_id: registry.chain_id,
            to: registry.address.to_checksum(None),
            value: "0".to_owned(),
            data: format!("0x{}", hex::encode(data)),
            function: function.to_owned(),
        }
    }
}

/// The calldata of `register(agent_uri)`.
pub fn register_calldata(agent_uri: &str) -> Vec<u8> {
    registerCall {
        agentURI: agent_uri.to_owned(),
    }
    .abi_encode()
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrepareInput {
    /// The Identity Registry's address (0x…); default: the one the network is registered in.
    #[serde(default)]
    pub registry: Option<String>,
    /// The chain the registry is on; goes with `registry`.
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// Where the registration file will be read from; default: the orchestrator's URL of it.
    #[serde(default)]
    pub agent_uri: Option<String>,
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for PrepareInput {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.registry.guard("registry")?;
        self.agent_uri.guard("agent_uri")?;
        self.env_file.guard("env_file")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PrepareOutput {
    pub worker_id: WorkerId,
    /// The URI the call registers.
    pub agent_uri: String,
    /// The registration file, as the orchestrator serves it at `agent_uri`.
    pub registration: AgentRegistration,
    pub agent_registry: String,
    pub transaction: UnsignedCall,
    pub next_step: String,
}

fn default_registry(file: &AgentRegistration) -> Option<AgentRegistry> {
    file.registrations
        .first()
        .and_then(|r| AgentRegistry::parse(&r.agent_registry).ok())
}

fn check_uri(uri: &str) -> Result<(), Problem> {
    let ok = url::Url::parse(uri)
        .ok()
        .is_some_and(|u| matches!(u.scheme(), "https" | "http" | "ipfs"));
    if ok && uri.len() <= 2048 {
        Ok(())
    } else {
        Err(Problem::new(
            ErrorCode::InvalidArgument,
            "agent_uri must be an https://, http:// or ipfs:// URI of at most 2048 characters",
        )
        .with_fix("Give the URL where the registration file is published."))
    }
}

pub async fn prepare(ctx: &Context, input: &PrepareInput) -> Result<PrepareOutput, Problem> {
    input.check_secrets()?;
    let worker = Worker::load(ctx, input.env_file.as_deref())?;
    let file = worker.client.worker_registration(&worker.id).await?;
    let network = worker.client.network_registration().await?;
    let registry = registry(
        input.registry.as_deref(),
        input.chain_id,
        default_registry(&network),
        "Identity Registry",
    )?;
    let agent_uri = match &input.agent_uri {
        Some(uri) => uri.trim().to_owned(),
        None => file
            .services
            .iter()
            .find(|s| s.name == "web")
            .map(|s| {
                format!(
                    "{}/agent-registration.json",
                    s.endpoint.trim_end_matches('/')
                )
            })
            .ok_or_else(|| {
                Problem::new(
                    ErrorCode::Internal,
                    "the orchestrator's registration file names no web service",
                )
            })?,
    };
    check_uri(&agent_uri)?;
    let local = url::Url::parse(&agent_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]");
    let transaction =
        UnsignedCall::new(registry, &register_calldata(&agent_uri), "register(string)");
    let mut next_step = format!(
        "Send this transaction from the owner's own wallet (to {} on chain {}, data as given); \
         the AgentRegistered event (or the call's return value) gives the agent id. Then run \
         `basis erc8004 link --agent-id N` so the registration file lists it.",
        transaction.to, transaction.chain_id
    );
    if local {
        next_step.push_str(
            " Note: the agent URI is on this machine and unreachable from outside; set the \
             orchestrator's [discovery] public_url or pass --agent-uri.",
        );
    }
    Ok(PrepareOutput {
        worker_id: worker.id,
        agent_uri,
        registration: file,
        agent_registry: registry.to_string(),
        transaction,
        next_step,
    })
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkInput {
    /// The agent id the Identity Registry returned.
    pub agent_id: u64,
    #[serde(default)]
    pub registry: Option<String>,
    #[serde(default)]
    pub chain_id: Option<u64>,
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for LinkInput {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.registry.guard("registry")?;
        self.env_file.guard("env_file")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LinkOutput {
    pub worker_id: WorkerId,
    pub agent_registry: String,
    pub agent_id: u64,
    /// The registration file as it now reads.
    pub registration: AgentRegistration,
}

pub async fn link(ctx: &Context, input: &LinkInput) -> Result<LinkOutput, Problem> {
    input.check_secrets()?;
    let worker = Worker::load(ctx, input.env_file.as_deref())?;
    let network = worker.client.network_registration().await?;
    let registry = registry(
        input.registry.as_deref(),
        input.chain_id,
        default_registry(&network),
        "Identity Registry",
    )?;
    let body = AgentLinkRequest {
        worker_id: worker.id.clone(),
        agent_registry: registry.to_string(),
        agent_id: input.agent_id,
    };
    let registration = worker.client.link_agent(&body, worker.auth()).await?;
    Ok(LinkOutput {
        worker_id: worker.id,
        agent_registry: body.agent_registry,
        agent_id: input.agent_id,
        registration,
    })
}

/// The env file's orchestrator, for commands that need no worker.
pub(crate) fn orchestrator(
    ctx: &Context,
    env_file: Option<&str>,
) -> Result<(crate::client::OrchestratorClient, url::Url), Problem> {
    let env = read_env(ctx, env_file)?;
    client(ctx, env.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_calldata_decodes_back_to_the_uri() {
        let uri = "https://orch.example/api/workers/w-1/agent-registration.json";
        let data = register_calldata(uri);
        assert_eq!(&data[..4], registerCall::SELECTOR.as_slice());
        assert_eq!(registerCall::SIGNATURE, "register(string)");
        let back = registerCall::abi_decode(&data).unwrap();
        assert_eq!(back.agentURI, uri);
    }
}
