//! `WorkerError`: why the worker cannot start, and its [`Problem`] form. Connection failures
//! are not errors here: the daemon retries them and records them in the status file.

use crate::config::EnvFileError;
use crate::domain::{ErrorCode, Problem};
use crate::runtime::RuntimeError;

/// The worker cannot start (or keep running).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The env file lacks keys the worker needs.
    #[error("the env file is incomplete for a worker: {} missing", .missing.join(", "))]
    Incomplete { missing: Vec<&'static str> },
    /// The env file cannot be read or parsed.
    #[error(transparent)]
    Env(#[from] EnvFileError),
    /// A value (flag, environment variable or env-file key) is invalid.
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// The runtime client cannot be built.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Signal handlers cannot be installed.
    #[error("cannot listen for SIGTERM/SIGINT: {0}")]
    Signals(std::io::Error),
}

impl From<WorkerError> for Problem {
    fn from(err: WorkerError) -> Self {
        match err {
            WorkerError::Env(e) => e.into(),
            WorkerError::Incomplete { .. } => {
                Problem::new(ErrorCode::EnvIncomplete, err.to_string()).with_fix(
                    "complete the env file with `basis write-env` (worker id, runtime, models, \
                     orchestrator URL and a generated device key), then `basis register`",
                )
            }
            WorkerError::Invalid { .. } => {
                Problem::new(ErrorCode::InvalidArgument, err.to_string())
                    .with_fix("correct the value named in the message")
            }
            WorkerError::Runtime(_) => Problem::new(ErrorCode::Internal, err.to_string())
                .with_fix("check the runtime URL in the env file (OLLAMA_URL or VLLM_URL)"),
            WorkerError::Signals(_) => Problem::new(ErrorCode::Internal, err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_names_the_keys() {
        let p = Problem::from(WorkerError::Incomplete {
            missing: vec!["BASIS_WORKER_TOKEN", "BASIS_ORCHESTRATOR_URL"],
        });
        assert_eq!(p.code, ErrorCode::EnvIncomplete);
        assert!(
            p.message
                .contains("BASIS_WORKER_TOKEN, BASIS_ORCHESTRATOR_URL")
        );
        assert!(p.fix.is_some());
    }
}
