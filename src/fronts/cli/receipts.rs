//! `basis receipt verify FILE|ID` and `basis receipts export|verify-log`: receipts anyone can
//! check. Calls `ops::receipts` and renders (`--json`: the operation's output).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::receipts::{self, ExportInput};

#[derive(Debug, clap::Args)]
pub struct ReceiptArgs {
    #[command(subcommand)]
    pub command: ReceiptCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReceiptCommand {
    /// Recompute a receipt's hash offline and say what that proves: from a file, or fetched by
    /// its id (rcpt-…) or hash (0x…) from the orchestrator.
    Verify {
        /// A file holding the receipt's JSON, or its id or hash.
        #[arg(value_name = "FILE|ID")]
        what: String,
        /// The orchestrator to fetch it from [default: the env file's, else basis.toml's or
        /// BASIS_ORCHESTRATOR_URL].
        #[arg(long)]
        url: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReceiptsArgs {
    #[command(subcommand)]
    pub command: ReceiptsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReceiptsCommand {
    /// Write the orchestrator's receipts as a hash-chained log: JSON lines in issue order, each
    /// carrying the keccak256 of the line before, ending with a line that counts them.
    Export {
        /// Only receipts issued at or after this unix second.
        #[arg(long, value_name = "UNIX")]
        since: Option<u64>,
        /// Only this worker's receipts.
        #[arg(long, value_name = "ID")]
        worker: Option<String>,
        /// Write the log to this file (atomically) [default: standard output].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The orchestrator [default: the env file's, else basis.toml's or
        /// BASIS_ORCHESTRATOR_URL].
        #[arg(long)]
        url: Option<String>,
        /// Print the summary as JSON (with --out).
        #[arg(long, requires = "out")]
        json: bool,
    },
    /// Check a whole exported log: the chain, every receipt, the end line. Names the first line
    /// where it breaks.
    VerifyLog {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn receipt(ctx: &Context, args: ReceiptArgs) -> ExitCode {
    match args.command {
        ReceiptCommand::Verify { what, url, json } => {
            let result = match ctx.ops() {
                Ok(ops) => receipts::verify(&ops, &what, url.as_deref()).await,
                Err(p) => Err(p),
            };
            output::render(json, result, |v| {
                format!(
                    "{} ({}, worker {}) verifies: {}\n  {}",
                    v.receipt_id, v.kind, v.worker_id, v.receipt_hash, v.proves
                )
            })
        }
    }
}

pub async fn receipts(ctx: &Context, args: ReceiptsArgs) -> ExitCode {
    match args.command {
        ReceiptsCommand::Export {
            since,
            worker,
            out,
            url,
            json,
        } => {
            let to_file = out.is_some();
            let input = ExportInput {
                since,
                worker,
                out,
                url,
            };
            let result = match ctx.ops() {
                Ok(ops) => receipts::export(&ops, &input).await,
                Err(p) => Err(p),
            };
            // Without --out the log itself went to stdout: nothing else may go there.
            if !to_file {
                return match result {
                    Ok(e) => {
                        eprintln!(
                            "{} receipts exported; last line hash {}",
                            e.receipts, e.last_line_hash
                        );
                        ExitCode::SUCCESS
                    }
                    Err(p) => output::failure(false, &p),
                };
            }
            output::render(json, result, |e| {
                format!(
                    "{} receipts written to {}; last line hash {} (keep it to pin the log)",
                    e.receipts,
                    e.path.as_deref().unwrap_or("-"),
                    e.last_line_hash
                )
            })
        }
        ReceiptsCommand::VerifyLog { file, json } => {
            output::render(json, receipts::verify_log_file(&file), |v| {
                format!(
                    "{}: {} receipts, every line chained and every receipt verified; last line \
                     hash {}",
                    v.path, v.receipts, v.last_line_hash
                )
            })
        }
    }
}
