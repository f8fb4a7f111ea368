//! Reading a registration body field by field, so every bad value gets its own stable code
//! (`INVALID_WALLET` with the checksummed suggestion, `PRIVATE_KEY_REFUSED`, `UNKNOWN_RUNTIME`…)
//! and the secrets guard sees every free-text field before anything else does. No message
//! echoes a submitted value.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::extract::describe;
use crate::domain::{
    DevicePublicKey, ErrorCode, Runtime, TokenSha256, WalletAddress, WalletError, WorkerId,
};
use crate::guard;
use crate::wire::{
    HardwareSummary, MAX_HARDWARE_GPUS, MAX_MODEL_LEN, MAX_MODELS, MAX_TEXT_LEN, MAX_VERSION_LEN,
    RegisterRequest, known_code,
};

/// Validates a `POST /api/workers/register` body. Unknown fields are ignored (newer clients may
/// send more) but still pass through the secrets guard.
pub fn parse_register(body: &Value) -> Result<RegisterRequest, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid_json(
            "the body must be a JSON object with worker_id, wallet, runtime, models, token_sha256 and version",
        ));
    };
    // The wallet first: a private key there gets its own message.
    let wallet = wallet(required_str(obj, "wallet")?)?;
    for (name, value) in obj {
        if !matches!(name.as_str(), "wallet" | "token_sha256" | "public_key") {
            guard::check_json(name, value)?;
        }
    }
    let worker_id = WorkerId::parse(required_str(obj, "worker_id")?)
        .map_err(|e| ApiError::bad_request(ErrorCode::InvalidWorkerId, e.to_string()))?;
    let runtime = required_str(obj, "runtime")?
        .parse::<Runtime>()
        .map_err(|e| ApiError::bad_request(ErrorCode::UnknownRuntime, e.to_string()))?;
    let public_key = match obj.get("public_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(DevicePublicKey::parse(k).map_err(|e| {
            ApiError::bad_request(ErrorCode::InvalidArgument, format!("public_key: {e}")).with_fix(
                "Send the device public key basis generated (write_env), never a private key.",
            )
        })?),
        Some(_) => return Err(ApiError::invalid_json("`public_key` must be a string")),
    };
    let token_sha256 = match (obj.get("token_sha256"), public_key) {
        (None | Some(Value::Null), Some(key)) => TokenSha256::sha256(key.as_bytes()),
        _ => TokenSha256::parse(required_str(obj, "token_sha256")?).map_err(|_| {
            ApiError::bad_request(
                ErrorCode::InvalidArgument,
                "token_sha256 must be 0x followed by 64 hex characters: the sha256 of the worker's public key (or legacy token), never a secret",
            )
        })?,
    };
    if public_key.is_some_and(|k| !TokenSha256::sha256(k.as_bytes()).ct_eq(&token_sha256)) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            "token_sha256 must be the sha256 of public_key's 32 bytes when both are sent",
        ));
    }
    let version = required_str(obj, "version")?;
    check_text("version", version, MAX_VERSION_LEN)?;
    Ok(RegisterRequest {
        worker_id,
        wallet,
        runtime,
        models: models(obj.get("models"))?,
        token_sha256,
        public_key,
        hardware: hardware(obj.get("hardware"))?,
        version: version.to_owned(),
        multi_task: match obj.get("multi_task") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::invalid_json("`multi_task` must be true or false")),
        },
        labels: labels(obj.get("labels"))?,
    })
}

/// Optional `labels`: an array of labels in the one grammar (`domain::check_label`).
fn labels(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid_json(
                "`labels` must be an array of strings",
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(label) = item else {
            return Err(ApiError::invalid_json(format!(
                "`labels[{i}]` must be a string"
            )));
        };
        out.push(label.clone());
    }
    crate::domain::check_labels(&out).map_err(|e| {
        ApiError::bad_request(ErrorCode::InvalidArgument, format!("`labels`: {e}"))
            .with_fix("Fix BASIS_WORKER_LABELS in the env file, e.g. region=eu,tier:gold.")
    })?;
    Ok(out)
}

fn required_str<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(ApiError::invalid_json(format!("`{name}` is required"))),
        Some(_) => Err(ApiError::invalid_json(format!("`{name}` must be a string"))),
    }
}

fn wallet(text: &str) -> Result<WalletAddress, ApiError> {
    let err = match WalletAddress::parse(text) {
        Ok(w) => return Ok(w),
        Err(e) => e,
    };
    if err != WalletError::LooksLikePrivateKey {
        // Not an address: maybe a mnemonic or an API key, which get the guard's message.
        guard::check_text("wallet", text)?;
    }
    let code = known_code(err.code()).unwrap_or(ErrorCode::InvalidWallet);
    let fix = match &err {
        WalletError::BadChecksum { checksummed } => format!(
            "If {checksummed} is your wallet's PUBLIC address (compare it with your wallet app, \
             character by character), register with that form."
        ),
        WalletError::LooksLikePrivateKey => "Give the wallet's PUBLIC address (0x + 40 hex). \
             Never paste a private key anywhere; if it was shared, move the funds to a new wallet."
            .to_owned(),
        _ => "Give the wallet's PUBLIC address: 0x followed by 40 hex characters.".to_owned(),
    };
    Err(ApiError::bad_request(code, err.to_string()).with_fix(fix))
}

/// A short, single-line, non-empty text.
fn check_text(name: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let len = value.chars().count();
    if len == 0 || len > max {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            format!("`{name}` must be 1 to {max} characters (got {len})"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            format!("`{name}` must not contain control characters"),
        ));
    }
    Ok(())
}

fn models(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let Some(Value::Array(items)) = value else {
        return Err(ApiError::invalid_json(
            "`models` is required: an array of model names (may be empty)",
        ));
    };
    if items.len() > MAX_MODELS {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            format!(
                "`models` holds at most {MAX_MODELS} names (got {})",
                items.len()
            ),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(name) = item else {
            return Err(ApiError::invalid_json(format!(
                "`models[{i}]` must be a string"
            )));
        };
        check_text(&format!("models[{i}]"), name, MAX_MODEL_LEN)?;
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

fn hardware(value: Option<&Value>) -> Result<Option<HardwareSummary>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let hw: HardwareSummary = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = format!("hardware.{}", e.path());
        describe(e.inner(), &path)
    })?;
    if hw.gpus.len() > MAX_HARDWARE_GPUS {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidArgument,
            format!("`hardware.gpus` holds at most {MAX_HARDWARE_GPUS} entries"),
        ));
    }
    let texts = [("hardware.os", &hw.os), ("hardware.arch", &hw.arch)];
    for (name, text) in texts {
        if let Some(t) = text {
            check_text(name, t, MAX_TEXT_LEN)?;
        }
    }
    for (i, gpu) in hw.gpus.iter().enumerate() {
        check_text(
            &format!("hardware.gpus[{i}].vendor"),
            &gpu.vendor,
            MAX_TEXT_LEN,
        )?;
        for t in [&gpu.name, &gpu.compute_capability].into_iter().flatten() {
            check_text(&format!("hardware.gpus[{i}]"), t, MAX_TEXT_LEN)?;
        }
    }
    Ok(Some(hw))
}

#[cfg(test)]
mod tests;
