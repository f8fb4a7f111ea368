//! The supervisor's typed failures and their [`Problem`] forms. No message holds a value read
//! from the env file or a line of worker output.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::{ErrorCode, Problem};

/// Running, reaching or starting a supervisor failed.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("another supervisor is already running (it holds {})", .lock.display())]
    AlreadyRunning { lock: PathBuf },
    #[error("cannot {op} {}: {source}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot reach the supervisor at {}: {source}", .path.display())]
    Connect { path: PathBuf, source: io::Error },
    #[error("the supervisor did not answer within {} ms", .after.as_millis())]
    Timeout { after: Duration },
    #[error("the supervisor's answer could not be understood: {0}")]
    Protocol(String),
    #[error("invalid supervisor tuning: {0}")]
    Tuning(String),
    #[error("{} is not a supervisor state file: {reason}", .path.display())]
    CorruptPidfile { path: PathBuf, reason: String },
}

impl SupervisorError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl From<SupervisorError> for Problem {
    fn from(err: SupervisorError) -> Self {
        let message = err.to_string();
        let (code, fix) = match &err {
            SupervisorError::AlreadyRunning { .. } => (
                ErrorCode::WorkerAlreadyRunning,
                "see it with worker_status (`basis status`); stop it first with stop_worker (`basis stop`) to restart",
            ),
            SupervisorError::Io { .. } => (
                ErrorCode::IoError,
                "check that the state directory exists, is writable and belongs to this user",
            ),
            SupervisorError::Connect { .. }
            | SupervisorError::Timeout { .. }
            | SupervisorError::Protocol(_) => (
                ErrorCode::SupervisorUnreachable,
                "check `basis status`; if the supervisor hangs, `basis stop` ends it (and its worker)",
            ),
            SupervisorError::Tuning(_) => (
                ErrorCode::InvalidArgument,
                "unset BASIS_SUPERVISE_TUNING (it is for tests only)",
            ),
            SupervisorError::CorruptPidfile { .. } => (
                ErrorCode::IoError,
                "`basis start` replaces it; or remove it if no `basis supervise` process runs",
            ),
        };
        Problem::new(code, message).with_fix(fix)
    }
}
