//! Metered inference (docs/SETTLEMENT.md, "Metered inference"): a model's [`Price`], why a
//! piece of work pays nothing ([`Unpaid`]), and the [`Metering`] a gateway job's receipt records:
//! the tokens the worker reported, the most the orchestrator counted from what it relayed, the
//! tokens credited (the smaller of the two, per count), and the amounts computed from them.
//! Integer arithmetic only; no float anywhere.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::amount::Amount;

/// Token counts as a runtime reports them, and as the orchestrator counts and credits them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    /// Each count at most `bound`'s.
    #[must_use]
    pub fn capped_by(self, bound: Self) -> Self {
        Self {
            prompt_tokens: self.prompt_tokens.min(bound.prompt_tokens),
            completion_tokens: self.completion_tokens.min(bound.completion_tokens),
        }
    }
}

/// Why a credit pays nothing (anti-cheat, checked before any credit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unpaid {
    /// The work ran on the echo simulator.
    Simulated,
    /// The output is empty (or only whitespace).
    EmptyOutput,
    /// The output only repeats the task's input.
    EchoedInput,
    /// More tokens per second than the configured ceiling for any real GPU.
    TooFast,
}

/// Tokens per count a job is credited at most: far above any real job (a 4 MiB prompt is
/// under 2^23 tokens), and low enough that `tokens × price` cannot overflow.
pub const MAX_CREDITED_TOKENS: u64 = 1 << 32;

/// A model's price: atomic units of the asset per million tokens, prompt and completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Price {
    pub prompt_per_million: Amount,
    pub completion_per_million: Amount,
}

impl Price {
    /// The largest price per million tokens accepted: with at most [`MAX_CREDITED_TOKENS`]
    /// of each count, `prompt × price + completion × price` stays below 2^128.
    pub const MAX_PER_MILLION: Amount = Amount::from_atomic(10u128.pow(28));

    /// `(prompt × prompt price + completion × completion price) / 10^6`, rounded down: one
    /// rounding for the whole job, so nothing is lost per count. Counts above
    /// [`MAX_CREDITED_TOKENS`] are taken as that many; prices above [`Self::MAX_PER_MILLION`]
    /// as that price (config refuses both, so this is only a guard).
    pub fn charge(&self, usage: Usage) -> Amount {
        let tokens = |n: u64| u128::from(n.min(MAX_CREDITED_TOKENS));
        let price = |a: Amount| a.min(Self::MAX_PER_MILLION).atomic();
        let total = tokens(usage.prompt_tokens) * price(self.prompt_per_million)
            + tokens(usage.completion_tokens) * price(self.completion_per_million);
        Amount::from_atomic(total / 1_000_000)
    }

    pub fn is_zero(&self) -> bool {
        self.prompt_per_million.is_zero() && self.completion_per_million.is_zero()
    }
}

/// What a gateway job is paid, and the counts it was computed from (receipt version 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Metering {
    /// The most the orchestrator credits, counted from what it relayed (prompt: the request's
    /// text plus allowances; completion: the chunks it streamed, or the answer's bytes).
    pub relayed: Usage,
    /// What the price applies to: per count, the smaller of the reported and the relayed.
    pub credited: Usage,
    /// The model's price when the job finished (zero: the model is not priced).
    pub price: Price,
    /// `price × credited`, rounded down; 0 when unpaid.
    pub gross: Amount,
    /// The protocol fee: `gross × protocol_fee_bps / 10000`, rounded down. The receipt's
    /// `reward` is `gross − fee`.
    pub fee: Amount,
    /// Absent when payable; otherwise why the job pays nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpaid: Option<Unpaid>,
}

impl Metering {
    /// Meters a job: credits `min(reported, relayed)` of each count at `price`, keeps
    /// `fee_bps` of the gross (at most 100 %), and pays nothing when `unpaid` says why.
    pub fn new(
        price: Price,
        reported: Usage,
        relayed: Usage,
        fee_bps: u16,
        unpaid: Option<Unpaid>,
    ) -> Self {
        let credited = reported.capped_by(relayed);
        let gross = if unpaid.is_some() {
            Amount::ZERO
        } else {
            price.charge(credited)
        };
        Self {
            relayed,
            credited,
            price,
            gross,
            fee: gross.basis_points(fee_bps.min(10_000)),
            unpaid,
        }
    }

    /// What the worker is owed: `gross − fee`.
    pub fn net(&self) -> Amount {
        // fee ≤ gross because fee_bps ≤ 10000.
        self.gross.checked_sub(self.fee).unwrap_or(Amount::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(p: u64, c: u64) -> Usage {
        Usage {
            prompt_tokens: p,
            completion_tokens: c,
        }
    }

    fn price(p: u128, c: u128) -> Price {
        Price {
            prompt_per_million: Amount::from_atomic(p),
            completion_per_million: Amount::from_atomic(c),
        }
    }

    #[test]
    fn one_rounding_for_the_whole_job() {
        // 1 prompt token at 0.6 units and 1 completion token at 0.6 units: 1.2 → 1, where
        // rounding each count down would have paid 0.
        let p = price(600_000, 600_000);
        assert_eq!(p.charge(usage(1, 1)).atomic(), 1);
        // 1,000 prompt + 500 completion at 100,000 / 300,000 per million: 100 + 150.
        assert_eq!(
            price(100_000, 300_000).charge(usage(1000, 500)).atomic(),
            250
        );
    }

    #[test]
    fn credits_the_smaller_count_and_splits_the_fee() {
        let m = Metering::new(
            price(1_000_000, 2_000_000),
            usage(10, 5_000),
            usage(40, 12),
            250,
            None,
        );
        assert_eq!(m.credited, usage(10, 12));
        assert_eq!(m.gross.atomic(), 10 + 24);
        assert_eq!(m.fee.atomic(), 0, "34 × 2.5 % rounds down to 0");
        assert_eq!(m.net().atomic(), 34);
        let m = Metering::new(
            price(0, 1_000_000_000),
            usage(0, 100),
            usage(0, 100),
            250,
            None,
        );
        assert_eq!((m.gross.atomic(), m.fee.atomic()), (100_000, 2_500));
        assert_eq!(m.net().atomic(), 97_500);
    }

    #[test]
    fn unpaid_pays_nothing_but_keeps_the_counts() {
        let m = Metering::new(
            price(1, 1),
            usage(5, 5),
            usage(5, 5),
            0,
            Some(Unpaid::Simulated),
        );
        assert!(m.gross.is_zero() && m.net().is_zero());
        assert_eq!(m.credited, usage(5, 5));
    }

    #[test]
    fn the_largest_counts_and_prices_do_not_overflow() {
        let max = Price {
            prompt_per_million: Price::MAX_PER_MILLION,
            completion_per_million: Price::MAX_PER_MILLION,
        };
        let all = max.charge(usage(u64::MAX, u64::MAX));
        assert_eq!(
            all.atomic(),
            2 * u128::from(MAX_CREDITED_TOKENS) * 10u128.pow(28) / 1_000_000
        );
    }

    #[test]
    fn metering_serialises_amounts_as_strings() {
        let m = Metering::new(price(1_000_000, 0), usage(3, 0), usage(9, 9), 0, None);
        let v = serde_json::to_value(m).unwrap();
        assert_eq!(v["gross"], "3");
        assert_eq!(v["price"]["prompt_per_million"], "1000000");
        assert!(v.get("unpaid").is_none());
    }
}
