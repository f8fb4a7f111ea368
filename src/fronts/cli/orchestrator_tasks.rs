//! `basis orchestrator tasks resolve SUBMISSION_ID --outcome completed|rejected --note TEXT`:
//! the operator's decision on a disputed submission, sent over HTTP (`--url`) with the admin
//! key from `BASIS_ADMIN_KEY` or `--admin-key-file` (never a flag value). Calls
//! `ops::resolve` and renders the settled submission (`--json`: exactly the API's
//! `Submission`).

use std::process::ExitCode;

use super::orchestrator_keys::AdminArgs;
use super::output;
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
    #[command(flatten)]
    pub admin: AdminArgs,
}

pub async fn run(command: TasksCommand) -> ExitCode {
    match command {
        TasksCommand::Resolve(a) => {
            let json = a.admin.json;
            let result = resolve::run(resolve::Input {
                submission_id: a.submission_id,
                outcome: a.outcome,
                note: a.note,
                url: a.admin.url,
                admin_key_file: a.admin.admin_key_file,
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
