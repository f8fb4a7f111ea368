//! `ApiErrorBody`: every non-2xx answer of the orchestrator, `{"error":{code,message,fix?}}`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{ErrorCode, Problem};

/// The body of every error response. `error.code` is a stable code from `schemas/errors.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApiErrorBody {
    pub error: Problem,
}

impl From<Problem> for ApiErrorBody {
    fn from(error: Problem) -> Self {
        Self { error }
    }
}

/// The [`ErrorCode`] whose wire name is `name`, if this build knows it.
pub fn known_code(name: &str) -> Option<ErrorCode> {
    ErrorCode::ALL.iter().copied().find(|c| c.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_shape() {
        let body = ApiErrorBody::from(
            Problem::new(ErrorCode::WorkerIdTaken, "taken").with_fix("send the token"),
        );
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["error"]["code"], "WORKER_ID_TAKEN");
        assert_eq!(json["error"]["fix"], "send the token");
        let back: ApiErrorBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn known_codes() {
        assert_eq!(known_code("RATE_LIMITED"), Some(ErrorCode::RateLimited));
        assert_eq!(known_code("NOPE"), None);
    }
}
