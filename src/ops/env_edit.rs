//! Changes to an existing env file's secrets that no `write_env` input can make: retiring a
//! legacy token once the orchestrator holds the device key (`register`), and a key rotation's
//! two steps (`rotate_key`). Each is one read-change-write under the file's [`EnvLock`],
//! written atomically (docs/FILES.md, "Writing and reading").

use std::path::Path;

use super::Context;
use crate::config::{EnvFileError, EnvLock, EnvTarget, WorkerEnv, env_target};
use crate::domain::Problem;

/// Reads the worker env file at `path` (already through `AllowedDirs::check`) under its lock,
/// lets `change` edit it, and writes it back when `change` returns `Some`. The file must exist
/// and be a worker env file. Returns the file as it now is and what `change` returned.
pub(crate) fn edit<T>(
    ctx: &Context,
    path: &Path,
    change: impl FnOnce(&mut WorkerEnv) -> Option<T>,
) -> Result<(WorkerEnv, Option<T>), Problem> {
    let _lock = EnvLock::acquire(path)?;
    match env_target(path)? {
        EnvTarget::WorkerEnv => {}
        EnvTarget::Missing => {
            return Err(EnvFileError::Missing {
                path: path.to_path_buf(),
            }
            .into());
        }
        EnvTarget::Foreign => {
            return Err(EnvFileError::Foreign {
                path: path.to_path_buf(),
            }
            .into());
        }
    }
    let mut env = WorkerEnv::read(path)?;
    let Some(done) = change(&mut env) else {
        return Ok((env, None));
    };
    env.write(path, &ctx.allowed)?;
    Ok((env, Some(done)))
}
