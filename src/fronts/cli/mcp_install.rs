//! `basis mcp install`: the CLI front of `ops::mcp_install` (CLI only; there is no MCP tool).

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::builder::PossibleValuesParser;

use super::output;
use crate::ops::mcp_install::{self, Action, CLIENT_NAMES, Input, Output, SCOPE_NAMES};

/// The flags of `basis mcp install`; its --help text is the doc comment of
/// `McpCommand::Install` in `mcp.rs`.
// Each bool is an independent on/off flag of the command line.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The MCP client to configure.
    #[arg(long, value_parser = PossibleValuesParser::new(CLIENT_NAMES))]
    pub client: String,
    /// user: every project of this user; project: the current directory (claude-code, cursor,
    /// vscode, codex, gemini) [default: user].
    #[arg(long, value_parser = PossibleValuesParser::new(SCOPE_NAMES))]
    pub scope: Option<String>,
    /// Print what would be written and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace a "basis" entry that differs from this binary's.
    #[arg(long)]
    pub force: bool,
    /// Make the client run `basis mcp --read-only` (only the read-only tools).
    #[arg(long)]
    pub read_only: bool,
    /// Print the operation's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> ExitCode {
    let input = Input {
        client: args.client,
        scope: args.scope,
        dry_run: args.dry_run,
        force: args.force,
        read_only: args.read_only,
    };
    output::render(args.json, mcp_install::run(&input), human)
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    let file = match &o.resolved_path {
        Some(real) => format!("{} (a link to {real})", o.path),
        None => o.path.clone(),
    };
    let mode = o.mode.as_deref().unwrap_or("unchanged");
    let (now, later) = match o.action {
        Action::Created => ("created", "create"),
        Action::Added => ("added basis to", "add basis to"),
        Action::Replaced => ("replaced the basis entry in", "replace the basis entry in"),
        Action::Unchanged => {
            let _ = writeln!(
                s,
                "basis is already installed for {} in {file} ({} is this binary's entry); nothing changed",
                o.client, o.key
            );
            let _ = write!(s, "next: {}", o.next_step);
            return s;
        }
    };
    if o.dry_run {
        let _ = writeln!(
            s,
            "dry run: would {later} {file} (mode {mode}) with {}:",
            o.key
        );
        let _ = writeln!(s, "{}", o.snippet.trim_end());
    } else {
        let _ = writeln!(s, "{now} {file} (mode {mode})");
        let _ = writeln!(s, "  {}: {}", o.key, o.entry);
    }
    let _ = write!(s, "next: {}", o.next_step);
    s
}
