//! `RuntimeError`: why a job failed on a runtime, each variant mapped to the `job_error` code
//! the orchestrator sees. Messages never contain the request or the answer.

use crate::domain::Runtime;
use crate::wire::JobErrorCode;

/// A runtime could not produce a completion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime does not serve the model.
    #[error("the {runtime} runtime does not serve the model {model:?}")]
    ModelNotFound { runtime: Runtime, model: String },
    /// The runtime is not reachable (connection refused, DNS, TLS, or no client).
    #[error("the {runtime} runtime is not reachable: {reason}")]
    Down { runtime: Runtime, reason: String },
    /// The runtime (or the job's deadline) ran out of time.
    #[error("the {runtime} runtime did not answer within {after_ms} ms")]
    Timeout { runtime: Runtime, after_ms: u64 },
    /// The runtime answered, but not with a valid completion.
    #[error("the {runtime} runtime answered something that is not a valid completion: {reason}")]
    BadResponse { runtime: Runtime, reason: String },
    /// The request itself is invalid (no messages, not a JSON object, refused by the runtime).
    #[error("invalid chat request: {reason}")]
    BadRequest { reason: String },
    /// The job was cancelled (or whoever consumed its chunks went away).
    #[error("the job was cancelled")]
    Cancelled,
}

impl RuntimeError {
    /// The `job_error` code for this failure.
    pub fn code(&self) -> JobErrorCode {
        match self {
            Self::ModelNotFound { .. } => JobErrorCode::ModelNotFound,
            Self::Down { .. } => JobErrorCode::RuntimeDown,
            Self::Timeout { .. } => JobErrorCode::Timeout,
            Self::BadResponse { .. } => JobErrorCode::BadResponse,
            Self::BadRequest { .. } => JobErrorCode::BadRequest,
            Self::Cancelled => JobErrorCode::Cancelled,
        }
    }

    pub(crate) fn bad_request(reason: impl Into<String>) -> Self {
        Self::BadRequest {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_code() {
        let r = Runtime::Vllm;
        let cases = [
            (
                RuntimeError::ModelNotFound {
                    runtime: r,
                    model: "m".into(),
                },
                JobErrorCode::ModelNotFound,
            ),
            (
                RuntimeError::Down {
                    runtime: r,
                    reason: "x".into(),
                },
                JobErrorCode::RuntimeDown,
            ),
            (
                RuntimeError::Timeout {
                    runtime: r,
                    after_ms: 5,
                },
                JobErrorCode::Timeout,
            ),
            (
                RuntimeError::BadResponse {
                    runtime: r,
                    reason: "x".into(),
                },
                JobErrorCode::BadResponse,
            ),
            (RuntimeError::bad_request("x"), JobErrorCode::BadRequest),
            (RuntimeError::Cancelled, JobErrorCode::Cancelled),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code, "{err}");
        }
    }
}
