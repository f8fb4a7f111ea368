//! The `[tasks]` section of `orchestrator.toml`: the market's fee, evaluator timeout policy,
//! dispute window, anti-cheat ceiling, output size limit and sweeper period, validated once
//! into [`TaskMarketConfig`].
//!
//! ```toml
//! [tasks]
//! protocol_fee_bps = 250                    # 2.5 % of each credit
//! evaluation_timeout_s = 86400              # then the policy below applies
//! evaluator_timeout_policy = "reject"       # or "auto_complete"
//! dispute_window_s = 86400                  # after a rejection
//! max_tokens_per_s = 2000                   # faster than any real GPU → not payable
//! max_output_bytes = 1048576
//! sweep_interval_ms = 1000                  # lapsed claims, deadlines, evaluator timeouts
//! ```

use serde::Deserialize;

use crate::wire::{EvaluatorTimeoutPolicy, TaskMarketPolicy};

pub const DEFAULT_PROTOCOL_FEE_BPS: u16 = 250;
pub const DEFAULT_EVALUATION_TIMEOUT_S: u64 = 86_400;
pub const DEFAULT_DISPUTE_WINDOW_S: u64 = 86_400;
/// Well above what one request decodes on any current GPU (hundreds of tokens/s).
pub const DEFAULT_MAX_TOKENS_PER_S: u64 = 2_000;
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
pub const DEFAULT_SWEEP_INTERVAL_MS: u64 = 1_000;

/// The orchestrator's asset and its decimals: what an amount of it is in whole units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetUnits<'a> {
    pub asset: &'a str,
    pub decimals: Option<u8>,
}

impl AssetUnits<'_> {
    /// The decimals of `asset`, when it is this asset and they are known (a task posted
    /// before the operator changed the asset keeps its own, unknown here).
    pub fn decimals_of(&self, asset: &str) -> Option<u8> {
        self.decimals.filter(|_| asset == self.asset)
    }
}

/// `[tasks]` as written; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTaskConfig {
    protocol_fee_bps: Option<u16>,
    evaluation_timeout_s: Option<u64>,
    evaluator_timeout_policy: Option<EvaluatorTimeoutPolicy>,
    dispute_window_s: Option<u64>,
    max_tokens_per_s: Option<u64>,
    max_output_bytes: Option<usize>,
    sweep_interval_ms: Option<u64>,
}

/// The market's validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMarketConfig {
    pub protocol_fee_bps: u16,
    pub evaluation_timeout_s: u64,
    pub evaluator_timeout_policy: EvaluatorTimeoutPolicy,
    pub dispute_window_s: u64,
    pub max_tokens_per_s: u64,
    pub max_output_bytes: usize,
    pub sweep_interval_ms: u64,
}

impl Default for TaskMarketConfig {
    fn default() -> Self {
        Self {
            protocol_fee_bps: DEFAULT_PROTOCOL_FEE_BPS,
            evaluation_timeout_s: DEFAULT_EVALUATION_TIMEOUT_S,
            evaluator_timeout_policy: EvaluatorTimeoutPolicy::Reject,
            dispute_window_s: DEFAULT_DISPUTE_WINDOW_S,
            max_tokens_per_s: DEFAULT_MAX_TOKENS_PER_S,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            sweep_interval_ms: DEFAULT_SWEEP_INTERVAL_MS,
        }
    }
}

impl TaskMarketConfig {
    /// Fills defaults and checks bounds; the error names the key.
    pub fn resolve(raw: &RawTaskConfig) -> Result<Self, String> {
        let d = Self::default();
        let c = Self {
            protocol_fee_bps: raw.protocol_fee_bps.unwrap_or(d.protocol_fee_bps),
            evaluation_timeout_s: raw.evaluation_timeout_s.unwrap_or(d.evaluation_timeout_s),
            evaluator_timeout_policy: raw
                .evaluator_timeout_policy
                .unwrap_or(d.evaluator_timeout_policy),
            dispute_window_s: raw.dispute_window_s.unwrap_or(d.dispute_window_s),
            max_tokens_per_s: raw.max_tokens_per_s.unwrap_or(d.max_tokens_per_s),
            max_output_bytes: raw.max_output_bytes.unwrap_or(d.max_output_bytes),
            sweep_interval_ms: raw.sweep_interval_ms.unwrap_or(d.sweep_interval_ms),
        };
        if c.protocol_fee_bps > 10_000 {
            return Err("tasks.protocol_fee_bps must be at most 10000 (100 %)".into());
        }
        if !(1..=30 * 86_400).contains(&c.evaluation_timeout_s) {
            return Err("tasks.evaluation_timeout_s must be between 1 and 2592000".into());
        }
        if c.dispute_window_s > 30 * 86_400 {
            return Err("tasks.dispute_window_s must be at most 2592000".into());
        }
        if c.max_tokens_per_s == 0 {
            return Err("tasks.max_tokens_per_s must be at least 1".into());
        }
        if !(1..=64 * 1024 * 1024).contains(&c.max_output_bytes) {
            return Err("tasks.max_output_bytes must be between 1 and 67108864".into());
        }
        if !(10..=60_000).contains(&c.sweep_interval_ms) {
            return Err("tasks.sweep_interval_ms must be between 10 and 60000".into());
        }
        Ok(c)
    }

    /// What settlement and the sweeper need.
    pub fn settle_policy(&self) -> super::settle::SettlePolicy {
        super::settle::SettlePolicy {
            protocol_fee_bps: self.protocol_fee_bps,
            max_tokens_per_s: self.max_tokens_per_s,
            dispute_window_s: self.dispute_window_s,
            evaluator_timeout_policy: self.evaluator_timeout_policy,
        }
    }

    /// The public part, for the onboarding status.
    pub fn policy(&self, units: AssetUnits<'_>) -> TaskMarketPolicy {
        TaskMarketPolicy {
            asset: units.asset.to_owned(),
            asset_decimals: units.decimals,
            protocol_fee_bps: self.protocol_fee_bps,
            evaluation_timeout_s: self.evaluation_timeout_s,
            evaluator_timeout_policy: self.evaluator_timeout_policy,
            dispute_window_s: self.dispute_window_s,
            max_tokens_per_s: self.max_tokens_per_s,
            max_output_bytes: self.max_output_bytes,
        }
    }
}
