//! `basis orchestrator settle close|list|show|export|mark-paid`: the operator's settlement on
//! a running orchestrator (`--url`, admin key from `BASIS_ADMIN_KEY` or `--admin-key-file`).
//! Calls `ops::settle` and renders (`--json`: exactly the API's JSON).

use std::path::PathBuf;
use std::process::ExitCode;

use super::orchestrator_keys::AdminArgs;
use super::output;
use crate::ops::keys::Admin;
use crate::ops::settle;
use crate::wire::{BATCH_PAGE_DEFAULT, BatchStatus, SettlementBatchInfo};

#[derive(Debug, clap::Subcommand)]
pub enum SettleCommand {
    /// Close a batch: every pending credit made before --until (default: now) moves into one
    /// new batch, one leaf per wallet under a Merkle root. Closing again with the same --until
    /// returns the same batch.
    Close {
        /// The watermark: unix seconds, or an RFC 3339 time (2026-12-01T00:00:00Z).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        until: Option<u64>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List batches, newest first.
    List {
        /// Only batches with an id below this (the previous page's last).
        #[arg(long, value_name = "BATCH")]
        before: Option<u64>,
        #[arg(long, default_value_t = BATCH_PAGE_DEFAULT)]
        limit: usize,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show one batch: period, total, root, the EIP-712 digest to sign, its payment.
    Show {
        #[arg(value_name = "BATCH")]
        id: u64,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Write the batch file (leaves with Merkle proofs, root, EIP-712 typed data and digest),
    /// checked before it is written: what the operator's wallet signs and pays.
    Export {
        #[arg(value_name = "BATCH")]
        id: u64,
        /// Where to write it (atomically); default: stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Record that the batch was paid, by its transaction's hash (basis never pays).
    MarkPaid {
        #[arg(value_name = "BATCH")]
        id: u64,
        /// The payment transaction's hash: 0x + 64 hex digits.
        #[arg(long, value_name = "0x…")]
        tx_hash: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Unix seconds, or RFC 3339.
fn parse_time(s: &str) -> Result<u64, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs);
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
        "give unix seconds or an RFC 3339 time such as 2026-12-01T00:00:00Z".to_owned()
    })?;
    u64::try_from(t.timestamp()).map_err(|_| "the time is before 1970".to_owned())
}

fn admin(a: &AdminArgs) -> Admin {
    Admin {
        url: a.url.clone(),
        admin_key_file: a.admin_key_file.clone(),
    }
}

fn line(b: &SettlementBatchInfo) -> String {
    let units = b.total.describe(&b.asset, b.asset_decimals);
    let state = match (b.status, b.tx_hash.as_deref()) {
        (BatchStatus::Paid, Some(tx)) => format!("paid in {tx}"),
        _ => "not paid yet".to_owned(),
    };
    format!(
        "batch {}: {units} to {} wallets ({} credits), period {}..{}, {state}",
        b.batch_id, b.leaves, b.credits, b.period_start, b.period_end
    )
}

fn detail(b: &SettlementBatchInfo) -> String {
    format!(
        "{}\n  root    {}\n  digest  {} (EIP-712, chain {}, verifying contract {})\n  token   {}",
        line(b),
        b.root,
        b.digest,
        b.chain_id,
        b.verifying_contract,
        b.token
    )
}

pub async fn run(command: SettleCommand) -> ExitCode {
    match command {
        SettleCommand::Close { until, admin: a } => {
            output::render(a.json, settle::close(&admin(&a), until).await, |r| {
                let what = if r.created {
                    "closed a new batch"
                } else {
                    "this watermark already closed a batch (unchanged)"
                };
                format!(
                    "{what} (watermark --until {})\n{}\nnext: basis orchestrator settle export {} \
                     --out batch-{}.json",
                    r.batch.period_end,
                    detail(&r.batch),
                    r.batch.batch_id,
                    r.batch.batch_id
                )
            })
        }
        SettleCommand::List {
            before,
            limit,
            admin: a,
        } => output::render(a.json, settle::list(&admin(&a), before, limit).await, |l| {
            if l.batches.is_empty() {
                return "no batches yet: close one with `basis orchestrator settle close`"
                    .to_owned();
            }
            let mut text: Vec<String> = l.batches.iter().map(line).collect();
            if let Some(next) = l.next_before {
                text.push(format!("more: --before {next}"));
            }
            text.join("\n")
        }),
        SettleCommand::Show { id, admin: a } => {
            output::render(a.json, settle::show(&admin(&a), id).await, detail)
        }
        SettleCommand::Export { id, out, admin: a } => {
            match settle::export(&admin(&a), id, out.as_deref()).await {
                // To stdout: the file itself, whatever --json says.
                Ok((_, Some(file))) => output::render(true, Ok(file), |_| String::new()),
                result => output::render(a.json, result.map(|(e, _)| e), |e| {
                    format!(
                        "wrote {}: batch {}, {} leaves, total {}\n  root   {}\n  digest {}\n\
                         sign the digest's typed data with the paying wallet, pay, then: basis \
                         orchestrator settle mark-paid {} --tx-hash 0x…",
                        e.file.as_deref().unwrap_or("-"),
                        e.batch_id,
                        e.leaves,
                        e.total,
                        e.root,
                        e.digest,
                        e.batch_id
                    )
                }),
            }
        }
        SettleCommand::MarkPaid {
            id,
            tx_hash,
            admin: a,
        } => output::render(
            a.json,
            settle::mark_paid(&admin(&a), id, &tx_hash).await,
            |b| format!("recorded\n{}", line(b)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn until_takes_unix_seconds_or_rfc3339() {
        assert_eq!(parse_time("1764547200"), Ok(1_764_547_200));
        assert_eq!(parse_time("2025-12-01T00:00:00Z"), Ok(1_764_547_200));
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
