//! Metered inference (docs/SETTLEMENT.md, "Metered inference"): what a finished gateway job is
//! paid. The worker's `usage` is not taken on its word: the orchestrator bounds each count
//! by what it relayed ([`prompt_bound`] from the request it forwarded, [`completion_bound`]
//! from the answer it passed on), credits the smaller of the two, applies the model's price
//! from `[pricing]` and the protocol fee, and records it all in the job's receipt. Anti-cheat
//! ([`unpaid`]) runs before any credit. Pure: no clock, no store.

pub mod config;

use serde_json::Value;

use crate::domain::{Metering, Price, Unpaid, Usage};

/// Prompt tokens allowed per request beyond its text: the chat template's own markers
/// (beginning of text, the assistant's header, a default system line).
pub const REQUEST_ALLOWANCE: u64 = 64;
/// Prompt tokens allowed per JSON value of `messages` and `tools` beyond its text: a
/// message's role header and end marker, a tool schema's punctuation.
pub const VALUE_ALLOWANCE: u64 = 4;

/// The most prompt tokens a request can take, whatever the tokenizer: one per byte of every
/// string and key in its `messages`, `tools` and `functions` (a token is at least one byte of
/// text), plus [`VALUE_ALLOWANCE`] per JSON value in them and [`REQUEST_ALLOWANCE`].
pub fn prompt_bound(body: &Value) -> u64 {
    ["messages", "tools", "functions"]
        .iter()
        .filter_map(|k| body.get(*k))
        .map(text_bound)
        .fold(REQUEST_ALLOWANCE, u64::saturating_add)
}

fn len(s: &str) -> u64 {
    u64::try_from(s.len()).unwrap_or(u64::MAX)
}

/// serde_json refuses nesting deeper than 128 when it parses, so the recursion is bounded.
fn text_bound(v: &Value) -> u64 {
    let inner = match v {
        Value::String(s) => len(s),
        Value::Array(items) => items.iter().map(text_bound).fold(0, u64::saturating_add),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| len(k).saturating_add(text_bound(v)))
            .fold(0, u64::saturating_add),
        Value::Number(n) => len(&n.to_string()),
        Value::Bool(_) | Value::Null => 1,
    };
    inner.saturating_add(VALUE_ALLOWANCE)
}

/// The most completion tokens the orchestrator relayed: for a streamed answer, the chunks
/// with text it forwarded (runtimes stream one token per chunk); for an answer sent whole,
/// its bytes (a token is at least one byte of text).
pub fn completion_bound(streamed: bool, text_chunks: u32, text: &str) -> u64 {
    if streamed {
        u64::from(text_chunks)
    } else {
        len(text)
    }
}

/// What anti-cheat needs to know about a finished job.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The worker said so, or runs the echo runtime.
    pub simulated: bool,
    /// What the client received.
    pub text: &'a str,
    /// Completion tokens credited (already bounded by what was relayed).
    pub completion_tokens: u64,
    /// From dispatch to the end, measured by the orchestrator, in microseconds (a fast local
    /// answer can take under a millisecond).
    pub duration_us: u64,
    /// `[tasks] max_tokens_per_s`: faster than any real GPU.
    pub max_tokens_per_s: u64,
}

/// Why a finished job pays nothing, checked in order: simulated, empty, too fast. (The task
/// market's "echoed input" does not apply: repeating the prompt can be the right answer.)
pub fn unpaid(e: &Evidence<'_>) -> Option<Unpaid> {
    if e.simulated {
        return Some(Unpaid::Simulated);
    }
    if e.text.trim().is_empty() {
        return Some(Unpaid::EmptyOutput);
    }
    // tokens / (µs / 10^6) > max  ⇔  tokens × 10^6 > max × µs
    let too_fast = u128::from(e.completion_tokens) * 1_000_000
        > u128::from(e.max_tokens_per_s) * u128::from(e.duration_us);
    too_fast.then_some(Unpaid::TooFast)
}

/// Meters a finished job: the credited counts, the model's price (none: zero), anti-cheat,
/// the fee.
pub fn meter(
    price: Option<Price>,
    reported: Usage,
    relayed: Usage,
    fee_bps: u16,
    evidence: impl FnOnce(Usage) -> Option<Unpaid>,
) -> Metering {
    let unpaid = evidence(reported.capped_by(relayed));
    Metering::new(
        price.unwrap_or_default(),
        reported,
        relayed,
        fee_bps,
        unpaid,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_prompt_bound_counts_text_and_allowances() {
        let body = json!({
            "model": "m",
            "messages": [{"role": "user", "content": "héllo"}],
            "max_tokens": 100_000,
        });
        // The array, the object, "role" + "user", "content" + "héllo" (6 bytes).
        let expected = REQUEST_ALLOWANCE + 4 * VALUE_ALLOWANCE + 4 + 4 + 7 + 6;
        assert_eq!(prompt_bound(&body), expected);
        // Other fields (max_tokens, model) do not count; tools do.
        let with_tools = json!({
            "messages": [{"role": "user", "content": "héllo"}],
            "tools": [{"type": "function"}],
        });
        assert_eq!(
            prompt_bound(&with_tools),
            expected + 2 * VALUE_ALLOWANCE + 4 + VALUE_ALLOWANCE + 8
        );
    }

    #[test]
    fn the_completion_bound_is_chunks_when_streamed_else_bytes() {
        assert_eq!(completion_bound(true, 3, "a longer text"), 3);
        assert_eq!(completion_bound(false, 0, "héllo"), 6);
    }

    fn evidence(text: &str, tokens: u64, ms: u64) -> Evidence<'_> {
        Evidence {
            simulated: false,
            text,
            completion_tokens: tokens,
            duration_us: ms * 1000,
            max_tokens_per_s: 2000,
        }
    }

    #[test]
    fn anti_cheat_runs_in_order() {
        assert_eq!(unpaid(&evidence("hi", 10, 1000)), None);
        assert_eq!(
            unpaid(&evidence("  \n", 10, 1000)),
            Some(Unpaid::EmptyOutput)
        );
        assert_eq!(unpaid(&evidence("hi", 2001, 1000)), Some(Unpaid::TooFast));
        assert_eq!(unpaid(&evidence("hi", 2000, 1000)), None);
        let sim = Evidence {
            simulated: true,
            ..evidence("", 0, 0)
        };
        assert_eq!(unpaid(&sim), Some(Unpaid::Simulated));
    }

    #[test]
    fn an_inflated_report_is_credited_what_was_relayed() {
        let price = Price {
            prompt_per_million: crate::domain::Amount::from_atomic(1_000_000),
            completion_per_million: crate::domain::Amount::from_atomic(1_000_000),
        };
        let reported = Usage {
            prompt_tokens: 7,
            completion_tokens: 1_000_000,
        };
        let relayed = Usage {
            prompt_tokens: 80,
            completion_tokens: 5,
        };
        let m = meter(Some(price), reported, relayed, 0, |_| None);
        assert_eq!(m.credited.completion_tokens, 5);
        assert_eq!(m.credited.prompt_tokens, 7);
        assert_eq!(m.gross.atomic(), 12);
        assert!(meter(None, reported, relayed, 0, |_| None).gross.is_zero());
    }
}
