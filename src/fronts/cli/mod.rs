//! The CLI front: clap definitions and human/JSON rendering. Every command parses its flags,
//! calls one operation in `crate::ops`, and renders the result; no logic lives here.

mod args_guard;
mod canary;
mod check;
mod claim;
mod erc8004;
mod evaluate;
mod execute;
mod hash;
mod leaderboard;
mod logs;
mod mcp;
mod mcp_install;
mod network;
mod orchestrator;
mod orchestrator_keys;
mod orchestrator_settle;
mod orchestrator_tasks;
mod output;
mod receipts;
mod register;
mod rewards;
mod rotate_key;
mod service;
mod start;
mod status;
mod stop;
mod submission;
mod submit;
mod supervise;
mod tasks;
mod verify;
mod vocab;
mod worker;
mod write_env;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;
pub use args_guard::parse;

/// basis: turn an idle GPU into a worker of a compute network, operated safely by an AI agent.
///
/// Your agent (or you) checks the hardware, writes the local 0600 config, registers the
/// worker with a PUBLIC reward address and supervises it. basis never needs a private key,
/// a seed phrase or an API key.
#[derive(Debug, Parser)]
#[command(
    name = "basis",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log line format on stderr (filter with RUST_LOG, e.g. RUST_LOG=basis=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Use this basis.toml instead of the one in the config directory.
    #[arg(long, global = true, env = "BASIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The end-to-end proof on one machine: orchestrator, worker, gateway, receipts.
    Canary(canary::Args),
    /// Check GPUs, drivers, containers and runtimes: what can this machine serve?
    Check(check::Args),
    /// Write the worker's env file (0600, atomic): public settings plus a host-generated device
    /// key.
    WriteEnv(write_env::Args),
    /// Register this host's worker with the orchestrator (sends the device key's public half,
    /// signed by it; the private key never leaves this host).
    Register(register::Args),
    /// Replace this worker's device key (the old key signs the new one); restart the worker
    /// afterwards.
    RotateKey(rotate_key::Args),
    /// Show the orchestrator's onboarding posture and this host's registration.
    Network(network::Args),
    /// Print the output hash (keccak256 of the raw bytes) of a file or of stdin.
    Hash(hash::Args),
    /// Verify a receipt offline (from a file, or by id or hash from the orchestrator).
    Receipt(receipts::ReceiptArgs),
    /// Export the orchestrator's receipts as a hash-chained log, or verify such a log.
    Receipts(receipts::ReceiptsArgs),
    /// What this worker earned (pending, batched, paid, with Merkle proofs); `verify FILE`
    /// checks a settlement batch file offline.
    Rewards(rewards::Args),
    /// Show how workers rank by what the orchestrator observed, and this worker's rank.
    Leaderboard(leaderboard::Args),
    /// ERC-8004: prepare this worker's on-chain registration for the owner's wallet, record
    /// its agent id, export evaluator attestations as reputation feedback.
    Erc8004(erc8004::Args),
    /// Run the MCP server (stdio by default; --http ADDR for streamable HTTP at /mcp), or add
    /// it to an MCP client's config with `basis mcp install --client NAME`.
    Mcp(mcp::Args),
    /// Run the self-hostable orchestrator (worker registry), or manage its API keys.
    Orchestrator(orchestrator::Args),
    /// Start the worker under a detached supervisor (restarts with backoff, redacted logs).
    Start(start::Args),
    /// Stop the worker (it drains in-flight jobs first) and its supervisor.
    Stop(stop::Args),
    /// Keep the worker running across reboots: install, remove or inspect a systemd unit
    /// (Linux) or launchd agent (macOS) that runs the supervisor.
    Service(service::Args),
    /// Verify the worker is really online (a checklist with a fix for each failure).
    Verify(verify::Args),
    /// Show the supervisor, the worker's state, recent exits and the last log lines.
    Status(status::Args),
    /// Show the worker log (secrets redacted), or follow it.
    Logs(logs::Args),
    /// List tasks on the market, marked by whether this worker can do them.
    Tasks(tasks::Args),
    /// Claim an open task for this worker (an exclusive lease).
    Claim(claim::Args),
    /// Give back this worker's claim on a task.
    Release(claim::ReleaseArgs),
    /// Run a claimed task's inference input on this host's runtime (does not submit).
    Execute(execute::Args),
    /// Submit output for a claimed task (keccak256 output hash computed here).
    Submit(submit::Args),
    /// Show a submission: status, evaluation, attestation, credit.
    Submission(submission::Args),
    /// Review a submission (hash checked), or post a verdict with the evaluator key.
    Evaluate(evaluate::Args),
    /// Dispute the rejection of this worker's submission.
    Dispute(submission::DisputeArgs),
    /// Run the supervisor itself (`basis start` starts it detached).
    Supervise(supervise::Args),
    /// Run the worker daemon: connect to the orchestrator and serve jobs on the runtime
    /// (normally started by `basis start` through the supervisor).
    Worker(worker::Args),
}

/// How many threads a command's async runtime has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// Tokio's current-thread runtime: everything on the thread that runs the command.
    One,
    /// Tokio's multi-thread runtime: a worker thread per core.
    PerCore,
    /// Tokio's multi-thread runtime with a worker thread per core but one (at least one),
    /// which is left to a busy thread of the command's own; `TOKIO_WORKER_THREADS` overrides.
    PerCoreButOne,
}

impl Cli {
    /// The runtime this command runs on (docs/BENCHMARKS.md, "The worker on one thread
    /// (2026-12-04, fourth session)" and "The orchestrator's runtime beside its writer
    /// (2026-12-04, fourth session)").
    ///
    /// - `basis worker` relays between one WebSocket and one runtime's HTTP API, a few tens of
    ///   µs of CPU per job while the model runs in another process: one thread is plenty, and
    ///   it spares the cross-thread wake-ups a multi-thread runtime pays on every frame (a
    ///   quarter of the worker's CPU per gateway job). Nothing in the worker may block its
    ///   thread: file writes go through `spawn_blocking`.
    /// - `basis orchestrator` on its `SQLite` file leaves a core to the store's writer thread,
    ///   which commits every write (about 40 % of the orchestrator's CPU): a runtime thread
    ///   on every core as well would preempt it (15 % of the orchestrator's CPU per gateway
    ///   job). On PostgreSQL there is no such thread, and it keeps every core.
    /// - Every other command gets a thread per core.
    pub fn threads(&self) -> Threads {
        match &self.command {
            Command::Worker(_) => Threads::One,
            Command::Orchestrator(args) if orchestrator::serves_sqlite(args) => {
                Threads::PerCoreButOne
            }
            _ => Threads::PerCore,
        }
    }
}

/// Runs the parsed command and returns the process exit status.
pub async fn run(cli: Cli) -> ExitCode {
    let ctx = Context {
        config_file: cli.config,
    };
    match cli.command {
        Command::Canary(args) => Box::pin(canary::run(args)).await,
        Command::Check(args) => check::run(&ctx, args).await,
        Command::WriteEnv(args) => write_env::run(&ctx, args),
        Command::Register(args) => register::run(&ctx, args).await,
        Command::RotateKey(args) => rotate_key::run(&ctx, args).await,
        Command::Network(args) => network::run(&ctx, args).await,
        Command::Hash(args) => hash::run(&args),
        Command::Receipt(args) => receipts::receipt(&ctx, args).await,
        Command::Receipts(args) => receipts::receipts(&ctx, args).await,
        Command::Leaderboard(args) => leaderboard::run(&ctx, args).await,
        Command::Rewards(args) => rewards::run(&ctx, args).await,
        Command::Erc8004(args) => erc8004::run(&ctx, args).await,
        Command::Orchestrator(args) => orchestrator::run(args).await,
        Command::Mcp(args) => mcp::run(&ctx, args).await,
        Command::Start(args) => start::run(&ctx, args).await,
        Command::Stop(args) => stop::run(&ctx, args).await,
        Command::Service(args) => service::run(&ctx, args).await,
        Command::Status(args) => status::run(&ctx, args).await,
        Command::Verify(args) => verify::run(&ctx, args).await,
        Command::Logs(args) => logs::run(&ctx, args).await,
        Command::Tasks(args) => tasks::run(&ctx, args).await,
        Command::Claim(args) => claim::run(&ctx, args).await,
        Command::Release(args) => claim::release(&ctx, args).await,
        Command::Execute(args) => execute::run(&ctx, args).await,
        Command::Submit(args) => submit::run(&ctx, args).await,
        Command::Submission(args) => submission::run(&ctx, args).await,
        Command::Evaluate(args) => evaluate::run(&ctx, args).await,
        Command::Dispute(args) => submission::dispute(&ctx, args).await,
        Command::Supervise(args) => supervise::run(&ctx, args).await,
        Command::Worker(args) => worker::run(&ctx, args).await,
    }
}

/// What every command may need besides its own flags.
#[derive(Debug, Clone)]
pub struct Context {
    pub config_file: Option<PathBuf>,
}

impl Context {
    /// The operations' context: `basis.toml`, environment and directories resolved once.
    pub fn ops(&self) -> Result<crate::ops::Context, crate::ops::Problem> {
        crate::ops::Context::load(
            self.config_file.as_deref(),
            &crate::config::Overrides::default(),
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Threads};

    /// The worker daemon runs on one thread; the orchestrator on `SQLite` on every core but the
    /// writer's; the orchestrator on PostgreSQL and the rest on every core.
    #[test]
    fn each_command_gets_the_runtime_its_work_needs() {
        let threads = |args: &[&str]| Cli::try_parse_from(args).map(|c| c.threads());
        assert_eq!(threads(&["basis", "worker"]).ok(), Some(Threads::One));
        let db = tempfile::tempdir().unwrap();
        let db = db.path().join("orchestrator.db");
        let db = db.to_str().unwrap();
        assert_eq!(
            threads(&["basis", "orchestrator", "--db", db]).ok(),
            Some(Threads::PerCoreButOne)
        );
        assert_eq!(
            threads(&[
                "basis",
                "orchestrator",
                "--database-url",
                "postgres://basis@127.0.0.1/basis"
            ])
            .ok(),
            Some(Threads::PerCore)
        );
        assert_eq!(
            threads(&["basis", "orchestrator", "keys", "hash"]).ok(),
            Some(Threads::PerCore)
        );
        assert_eq!(threads(&["basis", "status"]).ok(), Some(Threads::PerCore));
    }
}
