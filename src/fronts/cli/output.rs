//! Rendering for the CLI: `--json` prints exactly an operation's structured output (the same
//! JSON the MCP tool returns); otherwise a human summary. Failures print a `Problem` and map its
//! code to the exit status.

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::ops::Problem;

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
        let _ = writeln!(err, "error[{}]: {}", problem.code, problem.message);
        if let Some(fix) = &problem.fix {
            let _ = writeln!(err, "  fix: {fix}");
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
