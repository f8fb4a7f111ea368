//! `basis rewards`: the CLI mirror of the `get_rewards` tool (this host's worker's rewards by
//! state, and its batches with proofs), and `basis rewards verify FILE`, which checks a
//! settlement batch file offline. Calls `ops::rewards` and renders (`--json`: the operation's
//! output).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::rewards::{self, Input, Output};

/// Shows what this host's worker has earned (accrued, pending, batched, paid) and the
/// settlement batches holding its credits, each with the wallet's leaf and Merkle proof.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<RewardsCommand>,
    /// Add up every worker paying this worker's wallet.
    #[arg(long)]
    pub wallet: bool,
    /// Env file naming this worker [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
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

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    match args.command {
        Some(RewardsCommand::Verify { file, json }) => {
            output::render(json, rewards::verify(&file), |v| {
                format!(
                    "{}: batch {} verifies: {} leaves, total {} {}\n  root:   {}\n  digest: \
                     {}\nwhat this proves: {}",
                    v.file, v.batch_id, v.leaves, v.total, v.asset, v.root, v.digest, v.proves
                )
            })
        }
        None => {
            let input = Input {
                wallet_wide: args.wallet,
                env_file: args.env,
            };
            let result = match ctx.ops() {
                Ok(ops) => rewards::view(&ops, &input).await,
                Err(p) => Err(p),
            };
            output::render(args.json, result, human)
        }
    }
}

fn human(o: &Output) -> String {
    let mut out = match o.scope {
        rewards::Scope::Worker => format!("{} (wallet {})", o.worker_id.as_str(), o.wallet),
        rewards::Scope::Wallet => format!("wallet {} (every worker paying it)", o.wallet),
    };
    let _ = write!(out, "\n  {}", o.summary);
    if o.batches.is_empty() {
        out.push_str("\n  no settlement batch holds these credits yet");
    }
    for b in &o.batches {
        let paid = b
            .tx_hash
            .as_deref()
            .map_or_else(|| "not paid yet".to_owned(), |tx| format!("paid in {tx}"));
        let _ = write!(
            out,
            "\n  batch {}: leaf {} to {} ({paid})\n    root  {}\n    proof {}",
            b.batch_id,
            b.leaf.amount,
            b.leaf.wallet,
            b.root,
            if b.leaf.proof.is_empty() {
                "(none: the only leaf is the root)".to_owned()
            } else {
                b.leaf.proof.join("\n          ")
            }
        );
    }
    for c in &o.credits {
        let _ = write!(
            out,
            "\n  credit {} {} {} ({})",
            c.created_at,
            credit_source(c),
            c.net.describe(&c.asset, c.asset_decimals),
            c.status
        );
    }
    let _ = write!(out, "\n  from {}", o.orchestrator_url);
    out
}

/// What a credit was for: `task <id>` or `job <id>`.
fn credit_source(c: &crate::wire::Credit) -> String {
    match (&c.task_id, &c.job_id) {
        (Some(task), _) => format!("task {task}"),
        (None, Some(job)) => format!("job {job}"),
        (None, None) => "(no source)".to_owned(),
    }
}
