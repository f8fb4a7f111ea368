//! API keys as the operator sees them: `KeyLimits` (a client key's quotas), `KeyUsage` (what a
//! key used in one UTC day), `ApiKey` and `KeyList` (`GET /api/keys`, admin), and the admin
//! routes that list, revoke and limit keys. A key itself never appears here: only the first
//! hex digits of its sha256, as its id.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::Amount;

/// `GET`: every API key, with its quotas and today's usage (admin).
pub const KEYS: &str = "/api/keys";
/// Hex digits of a key's sha256 shown as its id (`key:` + these), as in a task's `client`.
pub const KEY_ID_HEX: usize = 8;

/// `POST /api/keys/{id}/revoke` (admin): the key stops working at once on every route.
pub fn key_revoke_path(id: &str) -> String {
    format!("{KEYS}/{}/revoke", encode(id))
}

/// `PUT /api/keys/{id}/limits` (admin): a client key's quotas.
pub fn key_limits_path(id: &str) -> String {
    format!("{KEYS}/{}/limits", encode(id))
}

/// `GET /api/keys/{id}/usage?days=N` (admin): what a key used and was charged, per UTC day,
/// over the last `days` days (today included).
pub fn key_usage_path(id: &str, days: u32) -> String {
    format!("{KEYS}/{}/usage?days={days}", encode(id))
}

/// Days a usage report covers by default, and at most.
pub const USAGE_DAYS_DEFAULT: u32 = 31;
pub const USAGE_DAYS_MAX: u32 = 366;

/// An id is `key:` + hex; `:` is kept as it is (allowed in a path segment).
fn encode(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ':')
        .collect()
}

/// A client key's quotas; absent: unlimited. Enforced on the gateway (`/v1/chat/completions`)
/// with 429 and `Retry-After`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyLimits {
    /// Requests per minute, as a token bucket: up to this many at once, then one more every
    /// 60/N seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u32>,
    /// Prompt plus completion tokens per UTC day. The request that crosses the limit is
    /// served; later ones get 429 until the next UTC midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tokens_per_day: Option<u64>,
}

impl KeyLimits {
    /// No quota at all.
    pub fn is_unlimited(&self) -> bool {
        self.requests_per_minute.is_none() && self.tokens_per_day.is_none()
    }
}

/// What one key used in one UTC day, counted by the orchestrator as gateway jobs completed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyUsage {
    pub requests: u64,
    /// Tokens billed: as the orchestrator credited them (docs/SETTLEMENT.md, "Metered
    /// inference").
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// What the key was charged for its gateway jobs, before the protocol fee: a decimal
    /// string of atomic units of the orchestrator's asset (`[pricing]`).
    #[serde(default)]
    pub amount: Amount,
}

impl KeyUsage {
    /// Prompt plus completion tokens (what `tokens_per_day` counts).
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// One API key, as stored: never the key, only its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiKey {
    /// `key:` + the first 8 hex digits of the key's sha256 (what `keys revoke` takes; a longer
    /// prefix of the sha256 also works).
    pub id: String,
    /// `0x` + the key's whole sha256.
    pub sha256: String,
    /// admin, client or evaluator.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; a revoked key works nowhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    pub limits: KeyLimits,
    /// Today's use (UTC day).
    pub usage_today: KeyUsage,
}

/// `GET /api/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
    /// The UTC day `usage_today` counts, as days since 1970-01-01.
    pub day: u64,
}

/// `PUT /api/keys/{id}/limits`: the whole new quota (a field left out removes that limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLimitsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub tokens_per_day: Option<u64>,
}

impl From<SetLimitsRequest> for KeyLimits {
    fn from(r: SetLimitsRequest) -> Self {
        Self {
            requests_per_minute: r.requests_per_minute,
            tokens_per_day: r.tokens_per_day,
        }
    }
}

impl From<KeyLimits> for SetLimitsRequest {
    fn from(l: KeyLimits) -> Self {
        Self {
            requests_per_minute: l.requests_per_minute,
            tokens_per_day: l.tokens_per_day,
        }
    }
}

/// One UTC day of a key's usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DayUsage {
    /// Days since 1970-01-01.
    pub day: u64,
    /// The same day as `YYYY-MM-DD`.
    pub date: String,
    #[serde(flatten)]
    pub usage: KeyUsage,
}

/// `GET /api/keys/{id}/usage`: a key's usage per UTC day, for billing its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyUsageReport {
    pub key: ApiKey,
    /// The first and last day covered (days since 1970-01-01; `to_day` is today).
    pub from_day: u64,
    pub to_day: u64,
    /// The days the key was used, oldest first.
    pub days: Vec<DayUsage>,
    /// Every day together.
    pub total: KeyUsage,
    /// What `amount` is counted in, and its decimals when the orchestrator knows them.
    pub asset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_decimals: Option<u8>,
}
