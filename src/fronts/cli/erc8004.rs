//! `basis erc8004 prepare | link | feedback`: ERC-8004 registration of this host's worker and
//! evaluator attestations as reputation feedback (docs/DISCOVERY.md). basis prepares
//! unsigned calls; the owner's (or the evaluator's) own wallet signs and sends them.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::discovery::{erc8004, feedback};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Erc8004Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Erc8004Command {
    /// Print this worker's registration file and the unsigned `register(agentURI)` call of
    /// an ERC-8004 Identity Registry, for the owner's own wallet to send.
    Prepare {
        /// The Identity Registry's address [default: the registry the network is in].
        #[arg(long, value_name = "0xADDRESS", requires = "chain_id")]
        registry: Option<String>,
        /// The registry's chain id.
        #[arg(long, value_name = "N", requires = "registry")]
        chain_id: Option<u64>,
        /// Where the file will be read from [default: the orchestrator's URL of it].
        #[arg(long, value_name = "URI")]
        agent_uri: Option<String>,
        /// Env file naming this worker [default: worker.env in the config directory].
        #[arg(long, value_name = "PATH")]
        env: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record the agent id the registration transaction returned, so the worker's file lists
    /// it under `registrations`.
    Link {
        /// The agent id (the ERC-721 token id the Identity Registry minted).
        #[arg(long, value_name = "N")]
        agent_id: u64,
        #[arg(long, value_name = "0xADDRESS", requires = "chain_id")]
        registry: Option<String>,
        #[arg(long, value_name = "N", requires = "registry")]
        chain_id: Option<u64>,
        #[arg(long, value_name = "PATH")]
        env: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Export an evaluated submission's attestation as an ERC-8004 feedback payload
    /// (feedbackHash = the attestation hash), with the unsigned `giveFeedback` call when a
    /// Reputation Registry is given.
    Feedback {
        /// The evaluated submission (sub- + 32 hex).
        #[arg(value_name = "SUBMISSION_ID")]
        submission_id: String,
        /// The Reputation Registry's address.
        #[arg(long, value_name = "0xADDRESS", requires = "chain_id")]
        reputation_registry: Option<String>,
        #[arg(long, value_name = "N", requires = "reputation_registry")]
        chain_id: Option<u64>,
        #[arg(long, value_name = "PATH")]
        env: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let ops = match ctx.ops() {
        Ok(ops) => ops,
        Err(p) => return output::render(false, Err::<(), _>(p), |()| String::new()),
    };
    match args.command {
        Erc8004Command::Prepare {
            registry,
            chain_id,
            agent_uri,
            env,
            json,
        } => {
            let input = erc8004::PrepareInput {
                registry,
                chain_id,
                agent_uri,
                env_file: env,
            };
            output::render(json, erc8004::prepare(&ops, &input).await, |o| {
                format!(
                    "registration file of {} (served at {}):\n{}\n\nunsigned call for the \
                     owner's wallet ({} in {}):\n  to:       {}\n  chain id: {}\n  value:    \
                     {}\n  data:     {}\n{}",
                    o.worker_id,
                    o.agent_uri,
                    pretty(&o.registration),
                    o.transaction.function,
                    o.agent_registry,
                    o.transaction.to,
                    o.transaction.chain_id,
                    o.transaction.value,
                    o.transaction.data,
                    o.next_step
                )
            })
        }
        Erc8004Command::Link {
            agent_id,
            registry,
            chain_id,
            env,
            json,
        } => {
            let input = erc8004::LinkInput {
                agent_id,
                registry,
                chain_id,
                env_file: env,
            };
            output::render(json, erc8004::link(&ops, &input).await, |o| {
                format!(
                    "linked {} to agent {} in {}; its registration file now lists {} \
                     registration(s)",
                    o.worker_id,
                    o.agent_id,
                    o.agent_registry,
                    o.registration.registrations.len()
                )
            })
        }
        Erc8004Command::Feedback {
            submission_id,
            reputation_registry,
            chain_id,
            env,
            json,
        } => {
            let input = feedback::Input {
                submission_id,
                reputation_registry,
                chain_id,
                env_file: env,
            };
            output::render(json, feedback::run(&ops, &input).await, |o| {
                let mut s = format!("feedback payload:\n{}\n", pretty(&o.feedback));
                if let Some(tx) = &o.transaction {
                    let _ = write!(
                        s,
                        "unsigned giveFeedback call:\n  to:       {}\n  chain id: {}\n  data:     {}\n",
                        tx.to, tx.chain_id, tx.data
                    );
                }
                s.push_str(&o.next_step);
                s
            })
        }
    }
}
