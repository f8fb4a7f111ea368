//! The `basis` binary: parse the command line, set up logging, run the command on a tokio
//! runtime, and turn the outcome into the process exit status. `anyhow` lives only here.

use std::process::ExitCode;

use anyhow::Context as _;
use basis::fronts::cli;

/// mimalloc instead of the system allocator: the orchestrator and the worker allocate and free
/// small buffers across threads on every request and frame, where glibc's malloc was a sixth of
/// their CPU (docs/BENCHMARKS.md, gateway overhead).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Every argument passes the secrets guard before clap sees it (fronts::cli::parse).
    let cli = match cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    basis::telemetry::init(cli.log_format, "basis=info,warn");
    match runtime(cli.threads()) {
        Ok(rt) => rt.block_on(cli::run(cli)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command's runtime ([`cli::Cli::threads`]).
fn runtime(threads: cli::Threads) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        cli::Threads::One => tokio::runtime::Builder::new_current_thread(),
        cli::Threads::PerCore => tokio::runtime::Builder::new_multi_thread(),
        cli::Threads::PerCoreButOne => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            // Tokio reads TOKIO_WORKER_THREADS only when no count is set here.
            if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
                let cores = std::thread::available_parallelism().map_or(1, usize::from);
                builder.worker_threads(cores.saturating_sub(1).max(1));
            }
            builder
        }
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
