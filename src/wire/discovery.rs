//! Discovery documents (docs/DISCOVERY.md): ERC-8004 registration files (the
//! `registration-v1` shape of the ERC-8004 draft) for the network and for each worker, the
//! agent-link request a worker sends after its owner registered it on chain, and the
//! leaderboard.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::HardwareSummary;
use crate::domain::{MetricGoal, MetricValue, Runtime, WalletAddress, WorkerId};

/// The `type` every registration file carries.
pub const REGISTRATION_TYPE: &str = "https://eips.ethereum.org/EIPS/eip-8004#registration-v1";
/// `GET`: the network's registration file.
pub const NETWORK_REGISTRATION: &str = "/.well-known/agent-registration.json";
/// `GET`: the leaderboard.
pub const LEADERBOARD: &str = "/api/leaderboard";
/// Entries `GET /api/leaderboard` returns unless `limit` says otherwise, and at most.
pub const LEADERBOARD_PAGE_DEFAULT: usize = 100;
pub const LEADERBOARD_PAGE_MAX: usize = 1000;

/// `GET`: a worker's registration file.
pub fn worker_registration_path(id: &WorkerId) -> String {
    format!("/api/workers/{id}/agent-registration.json")
}

/// `POST`: record a worker's ERC-8004 agent id (worker token).
pub fn agent_link_path(id: &WorkerId) -> String {
    format!("/api/workers/{id}/agent-link")
}

/// One service an agent offers: a name (`web`, `MCP`, `OpenAI`, …), where, which version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentService {
    pub name: String,
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// An on-chain registration: the agent's id in an Identity Registry named
/// `eip155:<chain id>:<registry address>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentRegistrationRef {
    pub agent_id: u64,
    pub agent_registry: String,
}

/// What the orchestrator counted for a worker (all time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentCounters {
    pub jobs_completed: u64,
    pub jobs_failed: u64,
    pub tasks_passed: u64,
    pub tasks_failed: u64,
    pub disputes_lost: u64,
    pub tokens_served: u64,
}

/// An ERC-8004 registration file (`registration-v1`). The network's has only the standard
/// fields; a worker's adds `agentWallet`, `runtime`, `models`, `hardware`, `labels`,
/// `counters` and `updated`. No field holds a secret: the worker's token, its hash and its
/// fingerprint are never in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentRegistration {
    /// Always [`REGISTRATION_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub description: String,
    /// A URL of the agent's image.
    pub image: String,
    pub services: Vec<AgentService>,
    #[serde(rename = "x402Support")]
    pub x402_support: bool,
    /// The network: always; a worker: heard from within the online window.
    pub active: bool,
    pub registrations: Vec<AgentRegistrationRef>,
    pub supported_trust: Vec<String>,
    /// The worker's reward address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_wallet: Option<WalletAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareSummary>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<AgentCounters>,
    /// Unix seconds: when what the file says last changed (registration or last heartbeat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<u64>,
}

/// `POST /api/workers/{id}/agent-link`: the agent id the owner's `register(agentURI)`
/// transaction returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentLinkRequest {
    pub worker_id: WorkerId,
    /// `eip155:<chain id>:<registry address>`.
    pub agent_registry: String,
    pub agent_id: u64,
}

/// The windows the leaderboard counts over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum LeaderboardWindow {
    #[default]
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "all")]
    All,
}

impl LeaderboardWindow {
    /// The window's length in seconds (`None`: since the beginning).
    pub fn seconds(self) -> Option<u64> {
        match self {
            Self::Day => Some(86_400),
            Self::Week => Some(7 * 86_400),
            Self::All => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "24h",
            Self::Week => "7d",
            Self::All => "all",
        }
    }
}

/// What the leaderboard ranks by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeaderboardBy {
    /// The documented composite score (docs/DISCOVERY.md, "The score").
    #[default]
    Score,
    TasksPassed,
    /// The smoothed pass rate `(passed + 1) / (passed + failed + 2)`.
    PassRate,
    Online,
    Tokens,
    /// Median time to first token, lowest first; workers without one last.
    Ttft,
    /// The best confirmed metric in `family`, as the family's tasks say is better.
    Metric,
}

impl LeaderboardBy {
    pub const ALL: [Self; 7] = [
        Self::Score,
        Self::TasksPassed,
        Self::PassRate,
        Self::Online,
        Self::Tokens,
        Self::Ttft,
        Self::Metric,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Score => "score",
            Self::TasksPassed => "tasks_passed",
            Self::PassRate => "pass_rate",
            Self::Online => "online",
            Self::Tokens => "tokens",
            Self::Ttft => "ttft",
            Self::Metric => "metric",
        }
    }
}

/// `GET /api/leaderboard` query parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardQuery {
    /// `24h` (default), `7d` or `all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<LeaderboardWindow>,
    /// Default `score`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<LeaderboardBy>,
    /// The task family, with `by=metric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Also return this worker's entry as `you`, wherever it ranks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerId>,
    /// Entries to return (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// One ranked worker. Ratios are in thousandths (integers, so every reader agrees).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaderboardEntry {
    /// 1 is best; workers tied on the ranked value share a rank (1, 2, 2, 4).
    pub rank: u64,
    pub worker_id: WorkerId,
    pub wallet: WalletAddress,
    /// The composite score, in thousandths of a point.
    pub score_milli: i64,
    pub tasks_passed: u64,
    pub tasks_failed: u64,
    /// `(passed + 1) / (passed + failed + 2)`, in thousandths.
    pub pass_rate_milli: u64,
    pub disputes_lost: u64,
    /// Share of the window the worker was connected, in thousandths.
    pub online_milli: u64,
    pub tokens_served: u64,
    pub jobs_completed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_p50_ms: Option<u64>,
    /// With `by=metric`: the worker's best confirmed value in the family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricValue>,
}

/// `GET /api/leaderboard`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Leaderboard {
    pub window: LeaderboardWindow,
    pub by: LeaderboardBy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// With `by=metric`: which way the family's metric is better.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<MetricGoal>,
    /// Unix seconds: when the figures were computed (they are cached briefly).
    pub computed_at: u64,
    /// Workers ranked in all.
    pub total: u64,
    pub entries: Vec<LeaderboardEntry>,
    /// The entry of the worker asked for with `?worker=`, wherever it ranks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub you: Option<LeaderboardEntry>,
}
