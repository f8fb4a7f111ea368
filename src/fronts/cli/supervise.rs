//! `basis supervise --env PATH`: the supervisor process itself. `basis start` (`start_worker`)
//! starts it detached; a unit written by `basis service install` runs it in the foreground
//! under systemd or launchd (it never forks). Resolves its config and runs
//! `crate::supervisor::run` until stopped.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Context, output};
use crate::domain::{ErrorCode, Problem};
use crate::supervisor::child::WORKER_CMD_ENV;
use crate::supervisor::tuning::TUNING_ENV;
use crate::supervisor::{self, ManagedBy, SuperviseConfig, Tuning, WorkerCommand, launch};

/// Keeps one worker (`basis worker --env PATH`) alive: restarts it with backoff, stops
/// restarting in a crash loop, writes redacted rotated logs and answers a 0600 control socket.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The worker env file.
    #[arg(long, value_name = "PATH")]
    pub env: PathBuf,
    /// The state directory (set by `basis start`) [default: from `BASIS_HOME` / basis.toml].
    #[arg(long, value_name = "DIR", hide = true)]
    pub state_dir: Option<PathBuf>,
    /// The service manager running this supervisor (set in the unit `basis service install`
    /// writes; `basis stop` then says how to stop the service for good).
    #[arg(long, value_name = "MANAGER", hide = true)]
    pub managed_by: Option<ManagedBy>,
    /// Tests only: a shell command to run as the worker instead of `basis worker`
    /// (`/bin/sh -c CMD basis-worker --env PATH`).
    #[arg(long, value_name = "CMD", hide = true, env = WORKER_CMD_ENV, hide_env = true)]
    pub worker_cmd: Option<String>,
    /// Tests only: shorter durations and limits, e.g. `backoff_initial_ms=100,crash_max_exits=3`.
    #[arg(long, value_name = "SPEC", hide = true, env = TUNING_ENV, hide_env = true)]
    pub tuning: Option<String>,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let config = match resolve(ctx, args) {
        Ok(config) => config,
        Err(problem) => return output::failure(false, &problem),
    };
    match supervisor::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::failure(false, &Problem::from(e)),
    }
}

fn resolve(ctx: &Context, args: Args) -> Result<SuperviseConfig, Problem> {
    let mut dirs = ctx.ops()?.dirs().clone();
    if let Some(state_dir) = args.state_dir {
        dirs = dirs.with_state_dir(state_dir);
    }
    let env_path = std::path::absolute(&args.env).map_err(|e| {
        Problem::new(ErrorCode::InvalidArgument, format!("--env: {e}"))
            .with_fix("give the env file's path")
    })?;
    let worker = match args.worker_cmd.filter(|c| !c.is_empty()) {
        Some(script) => WorkerCommand::Shell(script),
        None => WorkerCommand::Basis {
            exe: launch::basis_exe()?,
        },
    };
    let tuning = match args.tuning.filter(|t| !t.is_empty()) {
        Some(spec) => spec.parse::<Tuning>()?,
        None => Tuning::default(),
    };
    Ok(SuperviseConfig {
        env_path,
        dirs,
        worker,
        tuning,
        managed_by: args.managed_by,
    })
}
