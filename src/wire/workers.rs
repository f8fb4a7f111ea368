//! Workers: `RegisterRequest` (`POST /api/workers/register`), `WorkerRecord`
//! (`GET /api/workers/{id}`) and `WorkerList` (`GET /api/workers`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::hardware::HardwareSummary;
use crate::domain::{
    Amount, DevicePublicKey, KeyFingerprint, Runtime, TokenSha256, WalletAddress, WorkerId,
};

/// At most this many entries in `models`.
pub const MAX_MODELS: usize = 64;
/// At most this many characters in one model name.
pub const MAX_MODEL_LEN: usize = 128;
/// At most this many characters in `version`.
pub const MAX_VERSION_LEN: usize = 64;
/// At most this many characters in any free-text hardware field.
pub const MAX_TEXT_LEN: usize = 256;
/// At most this many GPUs in a hardware summary.
pub const MAX_HARDWARE_GPUS: usize = 64;
/// `GET /api/workers` page size when `limit` is not given, and its maximum.
pub const WORKERS_PAGE_DEFAULT: usize = 100;
pub const WORKERS_PAGE_MAX: usize = 1000;

/// Registers a worker, or re-registers one (docs/SECURITY.md, "Registration"). A worker with a
/// device key sends its public key and signs the request with it (RFC 9421, proving
/// possession); changing the key needs a second signature by the registered key, the admin key,
/// or, once, the legacy token. Carries public values only: never a private key or a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RegisterRequest {
    pub worker_id: WorkerId,
    /// PUBLIC reward address; stored and shown EIP-55 checksummed.
    pub wallet: WalletAddress,
    pub runtime: Runtime,
    /// Models the worker serves, e.g. `llama3.2:1b` (at most 64, each at most 128 characters).
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    pub models: Vec<String>,
    /// sha256 of the worker's credential: of the device public key's 32 bytes when
    /// `public_key` is given (it must match), else of the legacy worker token.
    pub token_sha256: TokenSha256,
    /// The worker's Ed25519 device public key (base64url). Absent only from legacy,
    /// token-only clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<DevicePublicKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareSummary>,
    /// Free-form labels from the worker's env file (`BASIS_WORKER_LABELS`), e.g. `region=eu`
    /// (at most 16; lowercase letters, digits and `. _ - = : /`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 64)))]
    pub labels: Vec<String>,
    /// The worker's basis version.
    #[schemars(length(min = 1, max = 64))]
    pub version: String,
    /// Whether the worker may hold more than one task claim at a time.
    #[serde(default)]
    pub multi_task: bool,
}

/// A registered worker as the orchestrator holds it. Never contains the token or its hash:
/// `token_fingerprint` (first 8 hex of the sha256) tells tokens apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerRecord {
    pub worker_id: WorkerId,
    /// EIP-55 checksummed reward address.
    pub wallet: WalletAddress,
    pub runtime: Runtime,
    pub models: Vec<String>,
    /// Whether the last heartbeat is younger than the online window.
    pub online: bool,
    /// Unix seconds of the last heartbeat; absent if the worker never connected.
    pub last_seen: Option<u64>,
    /// Unix seconds when the current connection opened; absent while disconnected.
    pub connected_since: Option<u64>,
    pub jobs_completed: u64,
    pub jobs_failed: u64,
    /// Rewards credited but not yet paid out, in atomic units.
    pub rewards_pending: Amount,
    /// The worker's basis version at its last registration.
    pub version: String,
    /// Unix seconds of the first registration.
    pub registered_at: u64,
    /// Unix seconds of the last change to the registration.
    pub updated_at: u64,
    /// First 8 hex of sha256(token).
    #[schemars(pattern("^[0-9a-f]{8}$"))]
    pub token_fingerprint: String,
    /// The fingerprint of its device public key (`SHA256:…`); absent for a legacy worker that
    /// still authenticates with a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<KeyFingerprint>,
    /// True once an admin revoked its key: nothing it signs is accepted until an admin
    /// re-registers it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
    pub multi_task: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<HardwareSummary>,
    /// Its labels, as registered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// What the task market matches against a task's `required_capabilities`
    /// (docs/TASK_MARKET.md, "Capabilities"): `runtime:…`, `model:…`, `gpu`/`cpu-only`,
    /// `gpu:<vendor>`, `compute:…`, `label:…`.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// MiB of its largest GPU (what a task's `min_vram_mib` is checked against).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram_mib: Option<u64>,
}

/// One page of `GET /api/workers`, ordered by `worker_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerRecord>,
    /// Pass as `?after=` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<WorkerId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> serde_json::Value {
        serde_json::json!({
            "worker_id": "gpu-1",
            "wallet": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
            "runtime": "echo",
            "models": ["echo"],
            "token_sha256": format!("0x{}", "ab".repeat(32)),
            "version": "0.1.0",
        })
    }

    #[test]
    fn register_request_defaults_and_normalises() {
        let r: RegisterRequest = serde_json::from_value(request()).unwrap();
        assert!(!r.multi_task);
        assert!(r.hardware.is_none());
        let out = serde_json::to_value(&r).unwrap();
        assert_eq!(out["wallet"], "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
        assert!(out.get("hardware").is_none());
    }

    #[test]
    fn schemas_carry_patterns_and_limits() {
        let schema = serde_json::to_value(schemars::schema_for!(RegisterRequest)).unwrap();
        let props = &schema["properties"];
        assert_eq!(props["wallet"]["pattern"], WalletAddress::PATTERN);
        assert_eq!(props["models"]["maxItems"], MAX_MODELS);
        assert_eq!(props["models"]["items"]["maxLength"], MAX_MODEL_LEN);
        let required = schema["required"].as_array().unwrap();
        assert!(!required.contains(&"multi_task".into()));
        let record = serde_json::to_value(schemars::schema_for!(WorkerRecord)).unwrap();
        assert!(record["properties"].get("token_sha256").is_none());
        assert_eq!(
            record["properties"]["token_fingerprint"]["pattern"],
            "^[0-9a-f]{8}$"
        );
    }
}
