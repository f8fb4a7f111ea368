//! The task market's refusals as API errors: each [`Refusal`] becomes its stable code
//! (docs/TASK_MARKET.md), HTTP status, message and fix; a store failure stays a generic 500.

use axum::http::StatusCode;

use crate::domain::ErrorCode;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::store::{Refusal, TaskError};

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Refused(r) => refused(&r),
            TaskError::Store(e) => e.into(),
        }
    }
}

fn conflict(code: ErrorCode, message: impl Into<String>, fix: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message).with_fix(fix)
}

/// The answer to a refusal.
pub fn refused(r: &Refusal) -> ApiError {
    match r {
        Refusal::TaskNotFound => task_not_found(),
        Refusal::SubmissionNotFound => submission_not_found(),
        Refusal::TaskNotOpen(status) => conflict(
            ErrorCode::TaskNotOpen,
            format!("the task is {status}, not open for claims"),
            "Fetch open tasks (GET /api/tasks) and claim another one.",
        ),
        Refusal::AlreadyClaimed => conflict(
            ErrorCode::AlreadyClaimed,
            "another worker holds the claim on this task",
            "Claim another open task; this one reopens only if that claim lapses.",
        ),
        Refusal::ActiveClaimExists(other) => conflict(
            ErrorCode::ActiveClaimExists,
            format!("this worker already holds an active claim, on {other}"),
            "Submit or release that task first, or register the worker with multi_task.",
        ),
        Refusal::NotClaimHolder => conflict(
            ErrorCode::NotClaimHolder,
            "this worker does not hold the claim on this task",
            "Claim the task first (POST /api/tasks/{id}/claim); only the holder may submit or \
             release.",
        ),
        Refusal::ClaimExpired { deadline } => conflict(
            ErrorCode::ClaimExpired,
            if *deadline {
                "the task's deadline passed before the output was submitted"
            } else {
                "this worker's claim lapsed before the output was submitted"
            },
            "Claim the task again if it is open (a new lease starts), and submit before \
             claim_expiry.",
        ),
        Refusal::AlreadySubmitted(id) => conflict(
            ErrorCode::AlreadySubmitted,
            format!("this task was already submitted with a different output ({id})"),
            "A submission is final; fetch it with GET /api/submissions/{id}.",
        ),
        Refusal::AlreadyEvaluated => conflict(
            ErrorCode::AlreadyEvaluated,
            "this submission was already evaluated; an evaluation is final",
            "Fetch it with GET /api/submissions/{id}; a rejected worker may dispute instead.",
        ),
        Refusal::NotDisputable(why) => conflict(
            ErrorCode::NotDisputable,
            format!("this submission cannot be disputed: {why}"),
            "Fetch it with GET /api/submissions/{id} to see its status.",
        ),
        Refusal::DisputeWindowClosed => conflict(
            ErrorCode::DisputeWindowClosed,
            "the dispute window of this submission has closed",
            "Disputes are accepted until dispute_deadline (see GET /api/submissions/{id}).",
        ),
        Refusal::NotDisputed => conflict(
            ErrorCode::NotDisputed,
            "this submission is not under dispute",
            "Only a disputed submission can be resolved; check its status first.",
        ),
    }
}

pub fn task_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::TaskNotFound,
        "no task with this id exists on this orchestrator",
    )
    .with_fix("List tasks with GET /api/tasks and use a task_id from there.")
}

pub fn submission_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::SubmissionNotFound,
        "no submission with this id exists on this orchestrator",
    )
    .with_fix("Use the submission_id returned by the submit call.")
}

/// `GET /api/submissions/{id}` for a submission that does not exist or that the credential
/// sent may not read: the same answer, so a stranger learns nothing of which.
pub fn submission_not_readable() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::SubmissionNotFound,
        "no submission with this id is readable with the credential sent",
    )
    .with_fix(
        "Use the submission_id the submit call returned, read with the client key that posted \
         the task, an evaluator key, the submitting worker's token or the admin key.",
    )
}

pub fn worker_not_found(id: &crate::domain::WorkerId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::WorkerNotFound,
        format!("no worker `{id}` is registered with this orchestrator"),
    )
    .with_fix("Register it first (register_worker / `basis register`), or check the worker id.")
}

/// 400 `INVALID_ARGUMENT` with a fix.
pub fn invalid(message: impl Into<String>, fix: &str) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidArgument, message).with_fix(fix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SubmissionId, TaskId, TaskStatus};

    #[test]
    fn every_refusal_has_its_documented_code_and_status() {
        let cases = [
            (Refusal::TaskNotFound, ErrorCode::TaskNotFound, 404),
            (
                Refusal::SubmissionNotFound,
                ErrorCode::SubmissionNotFound,
                404,
            ),
            (
                Refusal::TaskNotOpen(TaskStatus::Expired),
                ErrorCode::TaskNotOpen,
                409,
            ),
            (Refusal::AlreadyClaimed, ErrorCode::AlreadyClaimed, 409),
            (
                Refusal::ActiveClaimExists(TaskId::generate()),
                ErrorCode::ActiveClaimExists,
                409,
            ),
            (Refusal::NotClaimHolder, ErrorCode::NotClaimHolder, 409),
            (
                Refusal::ClaimExpired { deadline: false },
                ErrorCode::ClaimExpired,
                409,
            ),
            (
                Refusal::AlreadySubmitted(SubmissionId::generate()),
                ErrorCode::AlreadySubmitted,
                409,
            ),
            (Refusal::AlreadyEvaluated, ErrorCode::AlreadyEvaluated, 409),
            (Refusal::NotDisputable("x"), ErrorCode::NotDisputable, 409),
            (
                Refusal::DisputeWindowClosed,
                ErrorCode::DisputeWindowClosed,
                409,
            ),
            (Refusal::NotDisputed, ErrorCode::NotDisputed, 409),
        ];
        for (r, code, status) in cases {
            let e = refused(&r);
            assert_eq!((e.problem.code, e.status.as_u16()), (code, status), "{r:?}");
            assert!(e.problem.fix.is_some());
        }
    }
}
