//! The task market's refusals as API errors: each [`Refusal`] becomes its stable code
//! (docs/TASK_MARKET.md), HTTP status, message and fix; a store failure stays a generic 500.

use axum::http::StatusCode;

use super::engine::{Refusal, TaskError};
use crate::domain::ErrorCode;
use crate::orchestrator::error::ApiError;

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::Refused(r) => refused(&r),
            TaskError::Store(e) => e.into(),
        }
    }
}

fn conflict(code: ErrorCode, message: impl Into<String>, fix: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message).with_fix(fix)
}

/// The answer to a refusal. Its fix names the basis tool and command that act on it (the
/// callers are basis workers and agents; the token never passes through their hands).
pub fn refused(r: &Refusal) -> ApiError {
    match r {
        Refusal::TaskNotFound => task_not_found(),
        Refusal::SubmissionNotFound => submission_not_found(),
        Refusal::TaskNotOpen(status) => conflict(
            ErrorCode::TaskNotOpen,
            format!("the task is {status}, not open for claims"),
            "List open tasks with fetch_tasks (`basis tasks`) and claim another one.",
        ),
        Refusal::AlreadyClaimed => conflict(
            ErrorCode::AlreadyClaimed,
            "another worker holds the claim on this task",
            "Claim another open task: fetch_tasks (`basis tasks`) lists them. This one reopens \
             only if that claim lapses.",
        ),
        Refusal::ActiveClaimExists(other) => conflict(
            ErrorCode::ActiveClaimExists,
            format!("this worker already holds an active claim, on {other}"),
            format!(
                "Finish that task first: submit its output with submit_output (`basis submit \
                 {other}`), or give it back with release_task (`basis release {other}`). To \
                 hold several claims at once, register this worker again with register_worker \
                 with multi_task true (`basis register --multi-task`)."
            ),
        ),
        Refusal::CapabilityMismatch(missing) => conflict(
            ErrorCode::CapabilityMismatch,
            format!(
                "this worker lacks what the task requires: {}",
                missing.join(", ")
            ),
            "Claim a task this worker can do: fetch_tasks (`basis tasks`) shows only those by \
             default. Labels come from BASIS_WORKER_LABELS (write_env labels, `basis write-env \
             --label`), hardware from check_hardware at registration (`basis register`).",
        ),
        Refusal::NotClaimHolder => conflict(
            ErrorCode::NotClaimHolder,
            "this worker does not hold the claim on this task",
            "Claim the task first with claim_task (`basis claim TASK_ID`); only the claim holder \
             may submit or release it.",
        ),
        Refusal::ClaimExpired { deadline } => conflict(
            ErrorCode::ClaimExpired,
            if *deadline {
                "the task's deadline passed before the output was submitted"
            } else {
                "this worker's claim lapsed before the output was submitted"
            },
            "If the task is still open, claim it again with claim_task (`basis claim TASK_ID`) \
             and submit before the new claim expires.",
        ),
        Refusal::AlreadySubmitted(id) => conflict(
            ErrorCode::AlreadySubmitted,
            format!("this task was already submitted with a different output ({id})"),
            format!("A submission is final; see it with get_submission (`basis submission {id}`)."),
        ),
        Refusal::AlreadyEvaluated => conflict(
            ErrorCode::AlreadyEvaluated,
            "this submission was already evaluated; an evaluation is final",
            "See it with get_submission (`basis submission SUBMISSION_ID`); if it was rejected, \
             its worker may dispute it with dispute_output (`basis dispute SUBMISSION_ID`).",
        ),
        Refusal::NotDisputable(why) => conflict(
            ErrorCode::NotDisputable,
            format!("this submission cannot be disputed: {why}"),
            "See its status with get_submission (`basis submission SUBMISSION_ID`).",
        ),
        Refusal::DisputeWindowClosed => conflict(
            ErrorCode::DisputeWindowClosed,
            "the dispute window of this submission has closed",
            "Disputes are accepted until the submission's dispute deadline, which get_submission \
             (`basis submission SUBMISSION_ID`) shows.",
        ),
        Refusal::NotDisputed => conflict(
            ErrorCode::NotDisputed,
            "this submission is not under dispute",
            "Only a disputed submission can be resolved; check its status with get_submission \
             (`basis submission SUBMISSION_ID`) first.",
        ),
        Refusal::NoMetric => invalid(
            "this task measures no metric, so an evaluation cannot confirm one",
            "Leave metric out of the evaluation (`basis evaluate SUBMISSION_ID` without \
             --metric); only a task posted with a metric has one.",
        ),
    }
}

pub fn task_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::TaskNotFound,
        "no task with this id exists on this orchestrator",
    )
    .with_fix("List tasks with fetch_tasks (`basis tasks`) and use a task_id from there.")
}

pub fn submission_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::SubmissionNotFound,
        "no submission with this id exists on this orchestrator",
    )
    .with_fix("Use the submission_id that submit_output (`basis submit`) returned.")
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
    .with_fix(
        "Register it first with register_worker (`basis register`), or check BASIS_WORKER_ID \
         in the env file.",
    )
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
                Refusal::CapabilityMismatch(vec!["gpu".into()]),
                ErrorCode::CapabilityMismatch,
                409,
            ),
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
            (Refusal::NoMetric, ErrorCode::InvalidArgument, 400),
        ];
        for (r, code, status) in cases {
            let e = refused(&r);
            assert_eq!((e.problem.code, e.status.as_u16()), (code, status), "{r:?}");
            let fix = e.problem.fix.unwrap_or_default();
            // Callers are basis workers and agents: a fix names the command, not a route.
            assert!(fix.contains("(`basis "), "{r:?}: {fix}");
            assert!(
                !fix.contains("/api/") && !fix.contains("Bearer"),
                "{r:?}: {fix}"
            );
        }
    }
}
