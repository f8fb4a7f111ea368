//! What the market checks of a submitted output before the engine records it: usage within
//! JSON's safe integers, the size limit, the task's output format, the secrets guard over the
//! raw bytes as free text (the submitting worker's token and its wallet's key refused), and
//! the keccak256 output hash recomputed.

use axum::http::StatusCode;

use super::problems::invalid;
use crate::domain::{ErrorCode, MAX_SAFE_INTEGER, OutputHash};
use crate::guard::{HostSecrets, check_output as guard_bytes};
use crate::orchestrator::error::ApiError;
use crate::orchestrator::store::{TaskRow, WorkerRow};
use crate::wire::SubmitRequest;

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("the output is larger than this orchestrator accepts ({max} bytes)"),
    )
    .with_fix("Submit a smaller output, or store it elsewhere and submit its IPFS CID.")
}

/// The secrets guard over the output's raw bytes (a bytes output decoded) and whatever they
/// encode, as free text (a transaction hash passes; the submitting worker's token and its
/// wallet's private key do not), off the async threads: 422 `SECRET_REFUSED`, nothing
/// echoed. Returns the bytes.
async fn guard_output(raw: Vec<u8>, worker: &WorkerRow) -> Result<Vec<u8>, ApiError> {
    let wallets = [worker.wallet];
    let hashes = [worker.token_sha256];
    let checked = tokio::task::spawn_blocking(move || {
        let host = HostSecrets {
            known: &[],
            wallets: &wallets,
            token_hashes: &hashes,
        };
        guard_bytes("output", &raw, &host).map(|()| raw)
    })
    .await
    .map_err(|e| ApiError::internal("the output guard did not finish", &e))?;
    checked.map_err(|refused| {
        let mut e = ApiError::from(refused);
        e.status = StatusCode::UNPROCESSABLE_ENTITY;
        e
    })
}

/// Checks `req`'s output for `task`, submitted by `worker`, against `max` raw bytes: 400
/// `INVALID_ARGUMENT`, 413 `PAYLOAD_TOO_LARGE`, 422 `OUTPUT_FORMAT_INVALID`,
/// `SECRET_REFUSED` or `HASH_MISMATCH`.
pub async fn check_output(
    task: &TaskRow,
    req: &SubmitRequest,
    worker: &WorkerRow,
    max: usize,
) -> Result<(), ApiError> {
    let safe = |v: u64| v <= MAX_SAFE_INTEGER;
    if !req
        .usage
        .is_none_or(|u| safe(u.prompt_tokens) && safe(u.completion_tokens))
        || !req.duration_ms.is_none_or(safe)
    {
        return Err(invalid(
            "usage token counts and duration_ms must be below 2^53",
            "Report the runtime's token counts as they are.",
        ));
    }
    if req.metric.is_some() && task.metric.is_none() {
        return Err(invalid(
            "this task measures no metric",
            "Leave metric out; only a task posted with a metric takes one.",
        ));
    }
    if req.output.len() > max.saturating_mul(4) / 3 + 4 {
        return Err(too_large(max));
    }
    let raw = task.output_format.raw_bytes(&req.output).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::OutputFormatInvalid,
            format!(
                "the output does not fit the task's format ({}): {e}",
                task.output_format
            ),
        )
        .with_fix("Send the output in the task's output_format (bytes as standard base64).")
    })?;
    if raw.len() > max {
        return Err(too_large(max));
    }
    let raw = guard_output(raw.into_owned(), worker).await?;
    let computed = OutputHash::of(&raw);
    if computed != req.output_hash {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::HashMismatch,
            format!(
                "output_hash is not keccak256 of the output's raw bytes (the orchestrator computed {computed})"
            ),
        )
        .with_fix("Hash exactly the bytes you send (`basis hash FILE`); bytes outputs hash the decoded bytes."));
    }
    Ok(())
}
