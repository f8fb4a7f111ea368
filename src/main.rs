//! The `basis` binary: parse the command line, set up logging, run the command on a tokio
//! runtime, and turn the outcome into the process exit status. `anyhow` lives only here.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

use basis::fronts::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    basis::telemetry::init(cli.log_format, "basis=info,warn");
    match runtime() {
        Ok(rt) => rt.block_on(cli::run(cli)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
