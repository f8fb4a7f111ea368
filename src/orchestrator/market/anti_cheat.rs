//! Anti-cheat (docs/TASK_MARKET.md, "Settlement"), authoritative and checked before any credit:
//! from what the orchestrator knows itself (the worker's registered runtime, the output, the task's
//! input, the time it measured from claim to submit), whether a passed submission pays nothing, and
//! why ([`Unpaid`]). Pure: no clock, no store.

use crate::domain::{OutputFormat, Runtime, Usage};
use crate::wire::{TaskInput, Unpaid};

/// Everything the verdict depends on.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The runtime the worker registered with.
    pub runtime: Runtime,
    pub output_format: OutputFormat,
    pub output: &'a str,
    pub description: &'a str,
    pub input: Option<&'a TaskInput>,
    /// As the worker reported it (only ever used to make a verdict stricter).
    pub usage: Option<Usage>,
    /// From the claim to the submit, measured by the orchestrator.
    pub elapsed_ms: u64,
    /// The configured ceiling.
    pub max_tokens_per_s: u64,
}

/// Why this output pays nothing, or `None` when it is payable. Checked in order: simulated,
/// empty, echoed input, too fast.
pub fn unpaid(e: &Evidence<'_>) -> Option<Unpaid> {
    if e.runtime == Runtime::Echo {
        return Some(Unpaid::Simulated);
    }
    let raw_len = match e.output_format.raw_bytes(e.output) {
        Ok(bytes) => bytes.len(),
        // Checked at submit; a stored output that no longer parses pays nothing.
        Err(_) => return Some(Unpaid::EmptyOutput),
    };
    if is_empty(e.output_format, e.output, raw_len) {
        return Some(Unpaid::EmptyOutput);
    }
    if echoes_input(e) {
        return Some(Unpaid::EchoedInput);
    }
    if too_fast(e, raw_len) {
        return Some(Unpaid::TooFast);
    }
    None
}

/// Empty, only whitespace, or (json) an empty value: `null`, `""`, `{}`, `[]`.
fn is_empty(format: OutputFormat, output: &str, raw_len: usize) -> bool {
    if raw_len == 0 || output.trim().is_empty() {
        return true;
    }
    if format == OutputFormat::Json {
        use serde_json::Value;
        return match serde_json::from_str::<Value>(output) {
            Ok(Value::Null) => true,
            Ok(Value::String(s)) => s.trim().is_empty(),
            Ok(Value::Object(m)) => m.is_empty(),
            Ok(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
    }
    false
}

/// Lower case, whitespace runs collapsed to one space, trimmed.
fn normalise(s: &str) -> String {
    s.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The output is only the task's input again: one of its messages, all of them together, or
/// the description.
fn echoes_input(e: &Evidence<'_>) -> bool {
    if e.output_format == OutputFormat::Bytes {
        return false;
    }
    let out = normalise(e.output);
    if out.is_empty() {
        return false;
    }
    if out == normalise(e.description) {
        return true;
    }
    let Some(input) = e.input else {
        return false;
    };
    input.messages.iter().any(|m| normalise(&m.content) == out)
        || normalise(
            &input
                .messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ) == out
}

/// More tokens per second than the ceiling. Tokens: the larger of the reported completion
/// tokens and raw bytes / 4 (so under-reporting does not help); time: the orchestrator's.
fn too_fast(e: &Evidence<'_>, raw_len: usize) -> bool {
    let reported = e.usage.map_or(0, |u| u.completion_tokens);
    let estimated = u64::try_from(raw_len / 4).unwrap_or(u64::MAX);
    let tokens = u128::from(reported.max(estimated));
    if tokens == 0 {
        return false;
    }
    // tokens / (elapsed_ms / 1000) > max  ⇔  tokens * 1000 > max * elapsed_ms
    tokens * 1000 > u128::from(e.max_tokens_per_s) * u128::from(e.elapsed_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::InputMessage;

    fn input(content: &str) -> TaskInput {
        TaskInput {
            model: "llama3.2:1b".into(),
            messages: vec![
                InputMessage {
                    role: "system".into(),
                    content: "Be brief.".into(),
                },
                InputMessage {
                    role: "user".into(),
                    content: content.into(),
                },
            ],
            max_tokens: None,
        }
    }

    fn evidence<'a>(output: &'a str, task_input: Option<&'a TaskInput>) -> Evidence<'a> {
        Evidence {
            runtime: Runtime::Vllm,
            output_format: OutputFormat::Text,
            output,
            description: "Summarise the text in one sentence.",
            input: task_input,
            usage: None,
            elapsed_ms: 10_000,
            max_tokens_per_s: 2_000,
        }
    }

    #[test]
    fn real_work_is_payable() {
        let i = input("The quick brown fox jumps over the lazy dog.");
        assert_eq!(unpaid(&evidence("A fox jumps over a dog.", Some(&i))), None);
    }

    #[test]
    fn echo_runtime_is_simulated_whatever_the_output() {
        let i = input("hello");
        let e = Evidence {
            runtime: Runtime::Echo,
            ..evidence("a fine answer", Some(&i))
        };
        assert_eq!(unpaid(&e), Some(Unpaid::Simulated));
    }

    #[test]
    fn empty_outputs() {
        for out in ["", "   \n\t"] {
            assert_eq!(
                unpaid(&evidence(out, None)),
                Some(Unpaid::EmptyOutput),
                "{out:?}"
            );
        }
        for out in ["null", "\"  \"", "{}", "[ ]"] {
            let e = Evidence {
                output_format: OutputFormat::Json,
                ..evidence(out, None)
            };
            assert_eq!(unpaid(&e), Some(Unpaid::EmptyOutput), "{out}");
        }
        let e = Evidence {
            output_format: OutputFormat::Json,
            ..evidence("{\"answer\": 42}", None)
        };
        assert_eq!(unpaid(&e), None);
        let e = Evidence {
            output_format: OutputFormat::Bytes,
            ..evidence("", None)
        };
        assert_eq!(unpaid(&e), Some(Unpaid::EmptyOutput));
    }

    #[test]
    fn echoed_input_in_any_case_or_spacing() {
        let i = input("What is the capital of France?");
        for out in [
            "what is the   capital of france?",
            "Be brief. What is the capital of France?",
            "Summarise the text in one sentence.",
        ] {
            assert_eq!(
                unpaid(&evidence(out, Some(&i))),
                Some(Unpaid::EchoedInput),
                "{out}"
            );
        }
        assert_eq!(unpaid(&evidence("Paris.", Some(&i))), None);
    }

    #[test]
    fn too_fast_uses_the_larger_token_count_and_server_time() {
        // 4,000 bytes ≈ 1,000 tokens: fine over 1 s at 2,000/s, too fast over 0.4 s.
        let out = "word ".repeat(800);
        let slow = Evidence {
            elapsed_ms: 1_000,
            ..evidence(&out, None)
        };
        assert_eq!(unpaid(&slow), None);
        let fast = Evidence {
            elapsed_ms: 400,
            ..evidence(&out, None)
        };
        assert_eq!(unpaid(&fast), Some(Unpaid::TooFast));
        // Reported tokens count when larger than the estimate.
        let reported = Evidence {
            usage: Some(Usage {
                prompt_tokens: 0,
                completion_tokens: 5_000,
            }),
            elapsed_ms: 2_000,
            ..evidence("short", None)
        };
        assert_eq!(unpaid(&reported), Some(Unpaid::TooFast));
        // Zero elapsed time: any token is too fast; a tiny output (0 tokens) is not.
        let instant = Evidence {
            elapsed_ms: 0,
            ..evidence("forty-two is the answer", None)
        };
        assert_eq!(unpaid(&instant), Some(Unpaid::TooFast));
        let tiny = Evidence {
            elapsed_ms: 0,
            ..evidence("42", None)
        };
        assert_eq!(unpaid(&tiny), None);
    }

    #[test]
    fn huge_numbers_do_not_overflow() {
        let e = Evidence {
            usage: Some(Usage {
                prompt_tokens: u64::MAX,
                completion_tokens: u64::MAX,
            }),
            elapsed_ms: u64::MAX,
            max_tokens_per_s: u64::MAX,
            ..evidence("ok then", None)
        };
        assert_eq!(unpaid(&e), None);
    }
}
