//! The CLI's vocabulary: each MCP tool name → its `basis` command, each tool argument → its
//! flag, and [`cli`], which renders an operation's text (a `next_step`, a problem's message or
//! fix) in those words for human output. Operations speak the tools' language, which the MCP
//! front passes on unchanged; `--json` does too, so only human text goes through here.
//!
//! Rules of [`cli`]: whole words only, case-sensitive (so `BASIS_WORKER_ID` stays as it is);
//! text between backticks is literal and kept; a tool call followed by the command that does
//! it, `tool (`basis …`)`, `tool with its arguments (`basis …`)` or `tool / `basis …``,
//! becomes that command alone.

/// MCP tool → the `basis` command that does the same.
pub const TOOLS: &[(&str, &str)] = &[
    ("check_hardware", "basis check"),
    ("write_env", "basis write-env"),
    ("register_worker", "basis register"),
    ("rotate_key", "basis rotate-key"),
    ("network_status", "basis network"),
    ("get_leaderboard", "basis leaderboard"),
    ("get_rewards", "basis rewards"),
    ("start_worker", "basis start"),
    ("stop_worker", "basis stop"),
    ("worker_status", "basis status"),
    ("verify_online", "basis verify"),
    ("fetch_tasks", "basis tasks"),
    ("claim_task", "basis claim TASK_ID"),
    ("release_task", "basis release TASK_ID"),
    ("execute_task", "basis execute TASK_ID"),
    ("submit_output", "basis submit TASK_ID"),
    ("get_submission", "basis submission SUBMISSION_ID"),
    ("dispute_output", "basis dispute SUBMISSION_ID"),
    ("verify_output", "basis evaluate SUBMISSION_ID"),
];

/// A tool argument, its CLI form (a `--flag`, or a positional's value name), and the
/// commands that take it.
pub const ARGS: &[(&str, &str, &[&str])] = &[
    ("wait_s", "--wait", &["verify"]),
    ("worker_id", "--worker-id", &["write-env", "register"]),
    (
        "env_file",
        "--env",
        &[
            "check",
            "register",
            "network",
            "start",
            "verify",
            "tasks",
            "claim",
            "release",
            "execute",
            "submit",
            "submission",
            "evaluate",
            "dispute",
            "leaderboard",
            "rewards",
            "rotate-key",
        ],
    ),
    (
        "orchestrator_url",
        "--orchestrator-url",
        &["write-env", "register", "network"],
    ),
    ("ollama_model", "--ollama-model", &["write-env"]),
    ("ollama_url", "--ollama-url", &["write-env"]),
    ("vllm_url", "--vllm-url", &["write-env"]),
    ("multi_task", "--multi-task", &["write-env", "register"]),
    (
        "new_orchestrator",
        "--new-orchestrator",
        &["write-env", "register"],
    ),
    (
        "allow_insecure_http",
        "--allow-insecure-http",
        &["write-env", "register"],
    ),
    ("capacity", "--capacity", &["write-env"]),
    (
        "fallback_orchestrator_urls",
        "--fallback-url",
        &["write-env"],
    ),
    ("only_matching", "--matching", &["tasks"]),
    ("wallet_wide", "--wallet", &["rewards"]),
    ("min_reward", "--min-reward", &["tasks"]),
    ("deadline_buffer_s", "--deadline-buffer", &["tasks"]),
    ("output_file", "--output-file", &["submit"]),
    ("duration_ms", "--duration-ms", &["submit"]),
    ("drain_timeout_s", "--drain-timeout", &["stop"]),
    ("log_lines", "--lines", &["status"]),
    ("probe_timeout_ms", "--probe-timeout-ms", &["check"]),
    (
        "task_id",
        "TASK_ID",
        &["claim", "release", "execute", "submit"],
    ),
    (
        "submission_id",
        "SUBMISSION_ID",
        &["submission", "evaluate", "dispute"],
    ),
];

fn command_of(tool: &str) -> Option<&'static str> {
    TOOLS.iter().find(|(t, _)| *t == tool).map(|(_, c)| *c)
}

fn flag_of(arg: &str) -> Option<&'static str> {
    ARGS.iter().find(|(a, _, _)| *a == arg).map(|(_, f, _)| *f)
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `text` with tool names as `basis` commands and tool arguments as flags (see the module
/// doc for the rules).
pub fn cli(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '`' {
            let end = rest[1..].find('`').map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        if !is_word(c) {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        rest = after;
        if is_path_like(out.chars().last(), after) {
            out.push_str(word);
        } else if let Some(command) = command_of(word) {
            if let Some((given, skip)) = explicit_command(after) {
                out.push_str(given);
                rest = &after[skip..];
            } else {
                out.push('`');
                out.push_str(command);
                out.push('`');
            }
        } else if let Some(flag) = flag_of(word) {
            out.push_str(flag);
        } else {
            out.push_str(word);
        }
    }
    out
}

/// A word inside a path, a field path, a URL query or a placeholder (`record.worker_id`,
/// `?after=<worker_id>`, `/api/{id}`) is a name, not a tool or an argument.
fn is_path_like(before: Option<char>, after: &str) -> bool {
    let mut next = after.chars();
    let n1 = next.next();
    let n2 = next.next();
    matches!(
        before,
        Some('.' | '/' | '=' | '<' | '{' | '$' | '-' | '?' | '&')
    ) || matches!(n1, Some('=' | '>' | '}' | '/'))
        || (n1 == Some('.') && n2.is_some_and(is_word))
}

/// After a tool name, ` (`basis …`)`, ` with some arguments (`basis …`)` or ` / `basis …``:
/// that backticked command and how many bytes of `after` it and what leads to it span.
fn explicit_command(after: &str) -> Option<(&str, usize)> {
    if let Some(args) = after.strip_prefix(" with ") {
        let stop = args.find(" (`basis ")?;
        if args[..stop].contains(['(', ')', ';', ',', '.', ':', '`']) {
            return None;
        }
        let lead = " with ".len() + stop;
        let (command, len) = explicit_command(&after[lead..])?;
        return Some((command, lead + len));
    }
    for (open, close) in [(" (", ")"), (" / ", "")] {
        let Some(span) = after.strip_prefix(open) else {
            continue;
        };
        if !span.starts_with("`basis ") {
            continue;
        }
        let end = span[1..].find('`')? + 2;
        if span[end..].starts_with(close) {
            return Some((&span[..end], open.len() + end + close.len()));
        }
    }
    None
}

#[cfg(test)]
mod tests;
