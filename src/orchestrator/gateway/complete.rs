//! A non-streamed chat completion: wait for the job's end (within its deadline) and answer one
//! `chat.completion` with the worker, job and receipt headers, or the job's error (`502
//! WORKER_LOST`, the worker's mapped `job_error`, `504 JOB_TIMEOUT`).

use axum::Json;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{
    ChatRequest, Reach, completion_id, header_value, job_error_response, job_headers, may_reroute,
    route,
};
use crate::orchestrator::hub::{CancelReason, Finished, JobEvent, JobFailure, JobHandle, Lane};
use crate::orchestrator::state::AppState;
use crate::wire::{
    AssistantMessage, ChatChoice, ChatCompletion, CompletionUsage, RECEIPT_HASH_HEADER,
    RECEIPT_ID_HEADER,
};

pub async fn respond(state: AppState, req: ChatRequest, reach: Reach, lane: Lane) -> Response {
    let timeout = std::time::Duration::from_secs(state.config.job_timeout_s);
    let mut attempt = 0;
    loop {
        let mut job = match route(&state, &req, reach, lane).await {
            Ok(job) => job,
            Err(answer) => return answer,
        };
        let end = tokio::select! {
            end = wait(&mut job) => end,
            () = tokio::time::sleep(timeout) => {
                job.cancel(CancelReason::Deadline);
                Err(JobFailure::timeout())
            }
        };
        match end {
            Ok(finished) => return answer(&job, &finished),
            Err(f) if may_reroute(&f, attempt) => attempt += 1,
            Err(f) => return job_error_response(&job, &f),
        }
    }
}

/// The job's terminal event (chunks are not forwarded for non-streamed jobs).
async fn wait(job: &mut JobHandle) -> Result<Box<Finished>, JobFailure> {
    loop {
        match job.next().await {
            JobEvent::Chunk(_) => {}
            JobEvent::Done(finished) => return Ok(finished),
            JobEvent::Failed(f) => return Err(f),
        }
    }
}

fn answer(job: &JobHandle, f: &Finished) -> Response {
    let r = &f.receipt;
    let body = ChatCompletion {
        id: completion_id(job),
        object: "chat.completion".into(),
        created: job.created_unix,
        model: job.model.clone(),
        choices: vec![ChatChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                content: f.text.clone(),
            },
            finish_reason: "stop".into(),
        }],
        usage: usage(f),
        basis_receipt_id: Some(r.receipt.receipt_id.clone()),
        basis_receipt_hash: Some(r.receipt_hash),
    };
    let receipt_headers = [
        (
            HeaderName::from_static(RECEIPT_ID_HEADER),
            header_value(r.receipt.receipt_id.as_str()),
        ),
        (
            HeaderName::from_static(RECEIPT_HASH_HEADER),
            header_value(&r.receipt_hash.to_string()),
        ),
    ];
    (
        StatusCode::OK,
        job_headers(job),
        receipt_headers,
        Json(body),
    )
        .into_response()
}

pub fn usage(f: &Finished) -> CompletionUsage {
    CompletionUsage {
        prompt_tokens: f.usage.prompt_tokens,
        completion_tokens: f.usage.completion_tokens,
        total_tokens: f
            .usage
            .prompt_tokens
            .saturating_add(f.usage.completion_tokens),
    }
}
