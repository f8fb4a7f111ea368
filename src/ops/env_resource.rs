//! `env_resource`: the worker env file as an agent may see it: every public value, the device
//! key (and any legacy token or evaluator key) only as its fingerprint, unknown keys hidden. Backs the `basis://worker/env` MCP resource.

use crate::config::WorkerEnv;
use crate::domain::Problem;

use super::Context;

/// The masked env file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The file shown (worker.env in the config directory).
    pub path: String,
    /// False when no env file has been written yet.
    pub exists: bool,
    /// The file in dotenv form with the secrets replaced by their fingerprints, or a
    /// comment saying there is no file yet and what to call.
    pub text: String,
}

/// Reads the env file at its default path and masks it. A missing file is not an error.
pub fn run(ctx: &Context) -> Result<Output, Problem> {
    let path = ctx.env_path(None);
    let shown = path.display().to_string();
    Ok(match WorkerEnv::read_optional(&path)? {
        Some(env) => Output {
            exists: true,
            text: env.masked(),
            path: shown,
        },
        None => Output {
            exists: false,
            text: format!(
                "# no worker env file at {shown} yet: call write_env (public settings only) to create it\n"
            ),
            path: shown,
        },
    })
}
