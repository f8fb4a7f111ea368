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
/// Prompt tokens allowed beyond the text when the request carries `tools` or `functions`:
/// the template's preamble that explains how to call them.
pub const TOOLS_ALLOWANCE: u64 = 256;
/// Prompt tokens allowed for an inline image (a `data:` URL), instead of one per byte of its
/// base64: vision models spend hundreds to a few thousand tokens on an image.
pub const IMAGE_ALLOWANCE: u64 = 4096;

/// The most prompt tokens a request is credited, whatever the tokenizer: one per byte of
/// every string and key in its `messages`, `tools` and `functions` (a token is at least one
/// byte of text), an inline image as [`IMAGE_ALLOWANCE`], plus [`VALUE_ALLOWANCE`] per JSON
/// value in them, [`REQUEST_ALLOWANCE`], and [`TOOLS_ALLOWANCE`] with tools.
pub fn prompt_bound(body: &Value) -> u64 {
    let tools = ["tools", "functions"]
        .iter()
        .any(|k| body.get(*k).is_some_and(|v| !v.is_null()));
    let base = if tools {
        REQUEST_ALLOWANCE + TOOLS_ALLOWANCE
    } else {
        REQUEST_ALLOWANCE
    };
    ["messages", "tools", "functions"]
        .iter()
        .filter_map(|k| body.get(*k))
        .map(text_bound)
        .fold(base, u64::saturating_add)
}

/// The most completion tokens a request asked for: `max_completion_tokens`, else
/// `max_tokens`, times `n` (the choices it asked for); `None` when it set no limit.
pub fn completion_limit(body: &Value) -> Option<u64> {
    let limit = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))?;
    let choices = body.get("n").and_then(Value::as_u64).unwrap_or(1).max(1);
    Some(limit.saturating_mul(choices))
}

fn len(s: &str) -> u64 {
    u64::try_from(s.len()).unwrap_or(u64::MAX)
}

/// An image, audio or video inlined as a `data:` URL.
fn is_inline_media(s: &str) -> bool {
    ["data:image/", "data:audio/", "data:video/"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// serde_json refuses nesting deeper than 128 when it parses, so the recursion is bounded.
fn text_bound(v: &Value) -> u64 {
    let inner = match v {
        Value::String(s) if is_inline_media(s) => IMAGE_ALLOWANCE.min(len(s)),
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

/// What the orchestrator relayed of an answer, for [`completion_bound`].
#[derive(Debug, Clone, Copy)]
pub struct Relayed<'a> {
    /// The answer went out as chunks.
    pub streamed: bool,
    /// The chunks with text forwarded to the client (none after the client left).
    pub text_chunks: u32,
    /// The whole answer.
    pub text: &'a str,
    /// The client was still there to receive it.
    pub delivered: bool,
    /// What the request allowed ([`completion_limit`]).
    pub limit: Option<u64>,
}

/// The most completion tokens a job is credited: what was relayed to the client (for a
/// streamed answer the chunks with text it was forwarded, since runtimes stream one token
/// per chunk; for an answer sent whole its bytes, since a token is at least one byte of text;
/// nothing for an answer its client left before), and never more than the request allowed.
pub fn completion_bound(r: &Relayed<'_>) -> u64 {
    let relayed = if r.streamed {
        u64::from(r.text_chunks)
    } else if r.delivered {
        len(r.text)
    } else {
        0
    };
    r.limit.map_or(relayed, |limit| relayed.min(limit))
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
            expected + TOOLS_ALLOWANCE + 2 * VALUE_ALLOWANCE + 4 + VALUE_ALLOWANCE + 8
        );
    }

    #[test]
    fn the_completion_bound_is_chunks_when_streamed_else_bytes_within_the_limit() {
        let r = |streamed, delivered, limit| Relayed {
            streamed,
            text_chunks: 3,
            text: "héllo there",
            delivered,
            limit,
        };
        assert_eq!(completion_bound(&r(true, true, None)), 3);
        assert_eq!(completion_bound(&r(false, true, None)), 12);
        assert_eq!(completion_bound(&r(false, true, Some(5))), 5);
        assert_eq!(
            completion_bound(&r(false, false, None)),
            0,
            "its client had left"
        );
        assert_eq!(completion_bound(&r(true, false, Some(2))), 2);
    }

    #[test]
    fn the_completion_limit_is_the_requests_times_its_choices() {
        assert_eq!(completion_limit(&json!({"max_tokens": 16})), Some(16));
        assert_eq!(
            completion_limit(&json!({"max_completion_tokens": 8, "max_tokens": 16, "n": 3})),
            Some(24)
        );
        assert_eq!(completion_limit(&json!({"n": 3})), None);
    }

    #[test]
    fn tools_and_inline_images_have_allowances() {
        let image = format!("data:image/png;base64,{}", "A".repeat(1_000_000));
        let body = json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image}}]}]});
        assert!(prompt_bound(&body) < REQUEST_ALLOWANCE + IMAGE_ALLOWANCE + 200);
        // Text that only starts with "data:" is text: one per byte.
        let text = format!("data: {}", "x".repeat(10_000));
        let body = json!({"messages": [{"role": "user", "content": text}]});
        assert!(prompt_bound(&body) > 10_000);
        let plain = json!({"messages": []});
        let tools = json!({"messages": [], "tools": []});
        assert_eq!(
            prompt_bound(&tools) - prompt_bound(&plain),
            TOOLS_ALLOWANCE + VALUE_ALLOWANCE
        );
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
