//! `Health`: the body of `GET /health`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether the orchestrator can serve: `ok`, or `degraded` when its store does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Degraded,
}

/// Liveness and version. `GET /health` answers 200 when `ok`, 503 when `degraded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    pub status: HealthStatus,
    /// The orchestrator's basis version.
    pub version: String,
    /// Worker-channel protocol version.
    pub protocol_version: u32,
    /// Seconds since the orchestrator started.
    pub uptime_s: u64,
}
