//! Rendering for the CLI: `--json` prints exactly an operation's structured output (the same
//! JSON the MCP tool returns); otherwise a human summary, whose operation texts (next steps,
//! problems and fixes) name `basis` commands and flags (`vocab`), amounts in whole units and
//! times as dates. Failures print a `Problem` and map its code to the exit status.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

pub use super::vocab::cli;
use crate::domain::Amount;
use crate::ops::Problem;
use crate::supervisor::clock;

/// Prints `value` as JSON (`--json`) or as the human text `human` builds; exit 0.
pub fn success<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T) -> String) -> ExitCode {
    let text = if json {
        match serde_json::to_string_pretty(value) {
            Ok(s) => s,
            Err(e) => {
                return failure(
                    json,
                    &Problem::new(
                        crate::ops::ErrorCode::Internal,
                        format!("cannot render output: {e}"),
                    ),
                );
            }
        }
    } else {
        human(value)
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    ExitCode::SUCCESS
}

/// Prints the problem (`{"error": …}` on stdout with `--json`, a readable block on stderr
/// otherwise) and returns the exit status for its code.
pub fn failure(json: bool, problem: &Problem) -> ExitCode {
    if json {
        let body = serde_json::json!({ "error": problem });
        let _ = writeln!(std::io::stdout().lock(), "{body:#}");
    } else {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "error[{}]: {}", problem.code, cli(&problem.message));
        if let Some(fix) = &problem.fix {
            let _ = writeln!(err, "  fix: {}", cli(fix));
        }
    }
    ExitCode::from(problem.code.exit_code())
}

/// `success` or `failure` for an operation's result.
pub fn render<T: Serialize>(
    json: bool,
    result: Result<T, Problem>,
    human: impl FnOnce(&T) -> String,
) -> ExitCode {
    match result {
        Ok(value) => success(json, &value, human),
        Err(problem) => failure(json, &problem),
    }
}

/// The `next:` line of human output: the operation's next step in the CLI's words.
pub fn next(step: &str) -> String {
    next_for(step, &[])
}

/// [`next`], with placeholders of the commands it names (`TASK_ID`, `SUBMISSION_ID`) filled
/// in where the command knows them: `basis execute task-…` instead of `basis execute TASK_ID`.
pub fn next_for(step: &str, known: &[(&str, &str)]) -> String {
    let mut text = cli(step);
    for (placeholder, value) in known {
        text = text.replace(placeholder, value);
    }
    format!("next: {text}")
}

/// An amount for people: whole units of its asset ("0.25 USDC") when the orchestrator gave
/// the decimals, else "700 atomic units of ETH". `--json` keeps the atomic string.
pub fn amount(value: Amount, asset: &str, decimals: Option<u8>) -> String {
    value.describe(asset, decimals)
}

/// A ledger credit for people: "0.975 USDC net (1 USDC gross, 0.025 USDC fee)".
pub fn credit(c: &crate::wire::Credit) -> String {
    let show = |a: Amount| amount(a, &c.asset, c.asset_decimals);
    format!(
        "{} net ({} gross, {} fee)",
        show(c.net),
        show(c.gross),
        show(c.fee)
    )
}

/// "score 90, passed" / "score 40, failed".
pub fn verdict(score: u8, passed: bool) -> String {
    format!(
        "score {score}, {}",
        if passed { "passed" } else { "failed" }
    )
}

/// Why a credit pays nothing, in words.
pub fn unpaid(reason: crate::wire::Unpaid) -> &'static str {
    use crate::wire::Unpaid;
    match reason {
        Unpaid::Simulated => "the work ran on the echo simulator",
        Unpaid::EmptyOutput => "the output is empty",
        Unpaid::EchoedInput => "the output only repeats the task's input",
        Unpaid::TooFast => "it was produced faster than any real GPU could",
    }
}

/// A unix time for people: RFC 3339 in UTC and how far from now, e.g.
/// "2026-05-01T12:00:00Z (in 4 min)" or "2026-05-01T11:56:00Z (3 s ago)".
pub fn when(unix_s: u64) -> String {
    when_at(unix_s, clock::unix_now())
}

/// Only how far a unix time is from now: "in 4 min", "3 s ago" (for lists).
pub fn relative(unix_s: u64) -> String {
    relative_at(unix_s, clock::unix_now())
}

fn when_at(unix_s: u64, now: u64) -> String {
    format!("{} ({})", clock::rfc3339(unix_s), relative_at(unix_s, now))
}

fn relative_at(unix_s: u64, now: u64) -> String {
    match unix_s.cmp(&now) {
        std::cmp::Ordering::Equal => "now".to_owned(),
        std::cmp::Ordering::Greater => format!("in {}", span(unix_s - now)),
        std::cmp::Ordering::Less => format!("{} ago", span(now - unix_s)),
    }
}

/// "42 s", "4 min", "2 h 5 min", "3 d 4 h" (rounded down to the two largest units).
fn span(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_dates_with_how_far_away() {
        let now = 1_800_000_000;
        assert_eq!(when_at(now + 240, now), "2027-01-15T08:04:00Z (in 4 min)");
        assert_eq!(when_at(now - 3, now), "2027-01-15T07:59:57Z (3 s ago)");
        assert_eq!(when_at(now, now), "2027-01-15T08:00:00Z (now)");
        assert_eq!(span(7_500), "2 h 5 min");
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 59), "3 d 4 h");
        assert_eq!(span(3600), "1 h");
    }
}
