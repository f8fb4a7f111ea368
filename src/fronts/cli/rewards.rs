//! `basis rewards verify FILE`: checks a settlement batch file offline. Calls
//! `ops::rewards` and renders (`--json`: the operation's output).

use std::path::PathBuf;
use std::process::ExitCode;

use super::output;
use crate::ops::rewards;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: RewardsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RewardsCommand {
    /// Check a settlement batch file offline: every proof against the root, the total
    /// against the leaves, the EIP-712 typed data and its digest.
    Verify {
        /// The batch file (JSON).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> ExitCode {
    match args.command {
        RewardsCommand::Verify { file, json } => {
            output::render(json, rewards::verify(&file), |v| {
                format!(
                    "{}: batch {} verifies: {} leaves, total {} {}\n  root:   {}\n  digest: \
                     {}\nwhat this proves: {}",
                    v.file, v.batch_id, v.leaves, v.total, v.asset, v.root, v.digest, v.proves
                )
            })
        }
    }
}
