//! `basis worker --env PATH`: run the worker daemon in the foreground until SIGTERM/SIGINT
//! (drain, then exit 0). Usually started by the supervisor rather than by hand.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{Context, output};
use crate::worker::{self, MAX_CAPACITY, Options};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The worker's env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<PathBuf>,
    /// Jobs run at once, for this run only [default: the env file's BASIS_WORKER_CAPACITY,
    /// else the runtime's: vllm 32, ollama OLLAMA_NUM_PARALLEL or 4, echo 16].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CAPACITY)))]
    pub capacity: Option<u32>,
    /// On SIGTERM, how long in-flight jobs may take to finish before they are cancelled.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub drain_timeout_s: u64,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let ops = match ctx.ops() {
        Ok(ops) => ops,
        Err(problem) => return output::failure(false, &problem),
    };
    let env_path = args.env.unwrap_or_else(|| ops.dirs().env_file());
    let mut options = Options::new(ops.dirs().worker_status_json());
    options.capacity = args.capacity;
    options.drain_timeout = Duration::from_secs(args.drain_timeout_s);
    match worker::run_from_env_file(&env_path, options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::failure(false, &e.into()),
    }
}
