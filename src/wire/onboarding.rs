//! `OnboardingStatus`: the orchestrator's posture (`GET /api/workers/onboarding/status`).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who may register a new worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Anyone may register.
    Open,
    /// Registration needs the operator's enrollment key (header `x-basis-enrollment-key`).
    Gated,
    /// No new registrations; existing workers may still re-register with their token.
    Closed,
}

impl RegistrationMode {
    pub const ALL: [Self; 3] = [Self::Open, Self::Gated, Self::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Gated => "gated",
            Self::Closed => "closed",
        }
    }
}

impl fmt::Display for RegistrationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("registration mode must be one of: open, gated, closed")]
pub struct UnknownRegistrationMode;

impl FromStr for RegistrationMode {
    type Err = UnknownRegistrationMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or(UnknownRegistrationMode)
    }
}

/// How earned rewards are settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Settlement {
    /// Credited in the orchestrator's off-chain ledger (pending until paid out).
    #[serde(rename = "off-chain")]
    OffChain,
    /// No rewards are credited by this orchestrator.
    #[serde(rename = "disabled")]
    Disabled,
}

/// What a worker can expect from this orchestrator before it registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OnboardingStatus {
    /// Who may register: `open`, `gated` (enrollment key) or `closed`.
    pub registration: RegistrationMode,
    /// Whether the gateway routes jobs to workers.
    pub job_routing: bool,
    /// Whether a registered, online worker would receive jobs now.
    pub can_receive_jobs: bool,
    /// How rewards are settled.
    pub settlement: Settlement,
    /// How often a worker must heartbeat, in seconds.
    pub heartbeat_interval_s: u64,
    /// A worker is online while its last heartbeat is younger than this, in seconds.
    pub online_window_s: u64,
    /// Worker-channel protocol version.
    pub protocol_version: u32,
    /// The orchestrator's basis version.
    pub orchestrator_version: String,
    /// The task market's rules (fee, evaluator timeout policy, dispute window, anti-cheat
    /// ceiling); absent from orchestrators without a task market.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_market: Option<super::tasks::TaskMarketPolicy>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_use_the_documented_wire_names() {
        assert_eq!(
            serde_json::to_value(Settlement::OffChain).unwrap(),
            "off-chain"
        );
        for m in RegistrationMode::ALL {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
            assert_eq!(m.as_str().parse::<RegistrationMode>(), Ok(m));
        }
        assert!("ajar".parse::<RegistrationMode>().is_err());
    }
}
