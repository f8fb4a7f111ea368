//! `basis orchestrator tasks resolve SUBMISSION_ID --outcome completed|rejected --note TEXT`:
//! the operator's decision on a disputed submission, sent over HTTP (`--url`) with the admin
//! key from `BASIS_ADMIN_KEY` or `--admin-key-file` (never a flag value). Calls
//! `ops::resolve` and renders the settled submission (`--json`: exactly the API's
//! `Submission`).

use std::path::PathBuf;
use std::process::ExitCode;

use super::output;
use crate::config::{DEFAULT_ORCHESTRATOR_URL, ENV_ORCHESTRATOR_URL};
use crate::ops::resolve;

#[derive(Debug, clap::Subcommand)]
pub enum TasksCommand {
    /// Resolve a disputed submission: completed (the worker is credited) or rejected (the
    /// rejection stands). Needs the admin key in BASIS_ADMIN_KEY or --admin-key-file.
    Resolve(ResolveArgs),
}

#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// The disputed submission (sub- + 32 hex).
    #[arg(value_name = "SUBMISSION_ID")]
    pub submission_id: String,
    /// completed (for the worker) or rejected (against).
    #[arg(long, value_parser = ["completed", "rejected"])]
    pub outcome: String,
    /// Why, recorded with the resolution.
    #[arg(long, default_value = "")]
    pub note: String,
    /// The orchestrator's base URL.
    #[arg(long, env = ENV_ORCHESTRATOR_URL, default_value = DEFAULT_ORCHESTRATOR_URL)]
    pub url: String,
    /// A file whose first line is the admin key (default: the BASIS_ADMIN_KEY variable).
    #[arg(long, value_name = "FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// Print the settled submission as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(command: TasksCommand) -> ExitCode {
    match command {
        TasksCommand::Resolve(a) => {
            let json = a.json;
            let result = resolve::run(resolve::Input {
                submission_id: a.submission_id,
                outcome: a.outcome,
                note: a.note,
                url: a.url,
                admin_key_file: a.admin_key_file,
            })
            .await;
            output::render(json, result, |s| {
                let credit = s.credit.as_ref().map_or_else(
                    || "no credit".to_owned(),
                    |c| format!("credited {}", output::credit(c)),
                );
                format!("{} is now {}: {credit}", s.submission_id, s.status)
            })
        }
    }
}
