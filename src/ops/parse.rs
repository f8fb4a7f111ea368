//! Shared parsing of raw front input into domain types, each failure a `Problem` with the
//! code and fix an agent needs. Inputs have already passed the secrets guard.

use std::path::Path;

use serde::de::DeserializeOwned;
use url::Url;

use crate::config::parse_http_url;
use crate::domain::{ErrorCode, IdError, Problem, Runtime, WalletAddress, WalletError, WorkerId};

/// A worker id; a refusal says which rules `s` breaks and suggests a valid form of it. (Inputs
/// have passed the secrets guard, so the suggestion may echo what was typed.)
pub fn worker_id(s: &str) -> Result<WorkerId, Problem> {
    WorkerId::parse(s).map_err(|e: IdError| {
        let example = suggest_worker_id(s).unwrap_or_else(|| "gpu-box-1".to_owned());
        Problem::new(ErrorCode::InvalidWorkerId, e.to_string()).with_fix(format!(
            "use 2-63 lowercase letters, digits and '-', starting with a letter or digit, \
             e.g. \"{example}\""
        ))
    })
}

/// `s` lowercased, every run of other characters one '-', cut to 63: "GPU_Box" → "gpu-box".
/// `None` when nothing valid is left.
fn suggest_worker_id(s: &str) -> Option<String> {
    let mut out = String::new();
    for c in s.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(63);
    let out = out.trim_end_matches('-');
    WorkerId::parse(out).ok().map(|w| w.to_string())
}

/// Gives a private key pasted into a wallet field its own message (docs/SECURITY.md,
/// "Identity: worker id, wallet, device key"), before the generic
/// secrets guard sees it. Call it ahead of `Guarded::check_secrets`.
pub fn refuse_key_as_wallet(s: Option<&str>) -> Result<(), Problem> {
    match s.map(WalletAddress::parse) {
        Some(Err(e @ WalletError::LooksLikePrivateKey)) => Err(wallet_problem(&e)),
        _ => Ok(()),
    }
}

pub fn wallet(s: &str) -> Result<WalletAddress, Problem> {
    WalletAddress::parse(s).map_err(|e| wallet_problem(&e))
}

/// The `Problem` for a wallet the parser refused; the code comes from the rule broken.
pub fn wallet_problem(e: &WalletError) -> Problem {
    let code = match e {
        WalletError::LooksLikePrivateKey => ErrorCode::PrivateKeyRefused,
        WalletError::BadChecksum { .. } => ErrorCode::WalletChecksumMismatch,
        WalletError::ZeroAddress => ErrorCode::ZeroWallet,
        WalletError::MissingPrefix | WalletError::WrongLength { .. } | WalletError::NotHex => {
            ErrorCode::InvalidWallet
        }
    };
    let fix = match e {
        WalletError::LooksLikePrivateKey => {
            "give the PUBLIC address shown by your wallet app (0x + 40 hex); never a private key"
        }
        WalletError::BadChecksum { .. } => {
            "copy the address again from your wallet, or give it all lowercase to skip the checksum"
        }
        _ => "give the PUBLIC address shown by your wallet app: 0x followed by 40 hex characters",
    };
    Problem::new(code, e.to_string()).with_fix(fix)
}

pub fn runtime(s: &str) -> Result<Runtime, Problem> {
    s.parse::<Runtime>().map_err(|e| {
        Problem::new(ErrorCode::UnknownRuntime, e.to_string()).with_fix(
            "use echo to prove the path without a GPU, ollama or vllm to serve real models",
        )
    })
}

pub fn http_url(field: &str, s: &str) -> Result<Url, Problem> {
    parse_http_url(s).map_err(|e| {
        Problem::new(ErrorCode::InvalidArgument, format!("{field}: {e}"))
            .with_fix(format!("give {field} as an http:// or https:// URL"))
    })
}

/// Reads the file at `path` as `T`: `IO_ERROR` when it cannot be read, `invalid` (with `fix`)
/// when it is not `what` ("JSON", "a settlement batch file", …).
pub fn json_file<T: DeserializeOwned>(
    path: &Path,
    invalid: ErrorCode,
    what: &str,
    fix: &str,
) -> Result<T, Problem> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Problem::new(
            ErrorCode::IoError,
            format!("cannot read {}: {}", path.display(), e.kind()),
        )
        .with_fix("Check the path and its permissions.")
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Problem::new(invalid, format!("{} is not {what}: {e}", path.display())).with_fix(fix)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_worker_id_gets_a_valid_suggestion_of_itself() {
        let p = worker_id("GPU_Box").unwrap_err();
        assert_eq!(p.code, ErrorCode::InvalidWorkerId);
        assert!(
            p.fix.as_deref().unwrap_or("").contains("\"gpu-box\""),
            "{p:?}"
        );
        assert_eq!(
            suggest_worker_id("-My Rig #2-"),
            Some("my-rig-2".to_owned())
        );
        assert_eq!(suggest_worker_id("x"), None);
        assert_eq!(
            suggest_worker_id(&"A".repeat(80)).map(|s| s.len()),
            Some(63)
        );
    }
}
