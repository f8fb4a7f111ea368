//! Receipts anyone can check (docs/RECEIPTS.md): `verify` recomputes one receipt's hash
//! offline (from a file, or fetched by id or hash from the orchestrator), `export` writes the
//! orchestrator's receipts as a hash-chained log (JSON lines, `domain::LogWriter`), and
//! `verify_log` checks a whole log (`domain::verify_log`). The orchestrator is the env file's,
//! else the configured one; receipts need no credential.

use std::io::Write;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Context;
use super::tasks::{client, read_env};
use crate::config::WorkerEnv;
use crate::domain::{ErrorCode, LogWriter, Problem, WorkerId, verify_log, verify_receipt_json};
use crate::guard::{HostSecrets, check_free_text};
use crate::wire::{RECEIPTS_PAGE_MAX, ReceiptQuery};

/// What a verified receipt proves, in words.
const PROVES: &str = "the receipt is exactly as it was sealed: its receipt_hash is the \
     keccak256 of its canonical JSON, so no field (worker, wallet, output hash, usage, reward, \
     attestation) was changed since. It does not prove who sealed it: receipts are not signed.";

/// A receipt that verified.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Verified {
    pub receipt_id: String,
    pub receipt_hash: String,
    pub kind: String,
    pub worker_id: String,
    /// Unix seconds.
    pub issued_at: u64,
    /// Where it was read: the file, or the orchestrator's URL.
    pub source: String,
    /// What the check proves, and what it does not.
    pub proves: String,
}

/// Verifies `what`: a file holding a receipt's JSON, else a receipt id (`rcpt-…`) or hash
/// (`0x…`) fetched from the orchestrator (`url`, else the env file's, else the configured one).
pub async fn verify(ctx: &Context, what: &str, url: Option<&str>) -> Result<Verified, Problem> {
    let env = read_env(ctx, None)?;
    guard(env.as_ref(), what)?;
    let what = what.trim();
    let path = Path::new(what);
    let (value, source) = if path.is_file() {
        let value: Value = super::parse::json_file(
            path,
            ErrorCode::ReceiptInvalid,
            "JSON",
            "Give a receipt as GET /api/receipts/{id} answers it.",
        )?;
        (value, path.display().to_string())
    } else if what.starts_with("rcpt-") || what.starts_with("0x") {
        let (value, source) = fetch(ctx, env.as_ref(), url, what).await?;
        is_the_one(&value, what)?;
        (value, source)
    } else {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!("`{what}` is neither a file nor a receipt id or hash"),
        )
        .with_fix("Give a file holding a receipt, a receipt id (rcpt-…) or a hash (0x…)."));
    };
    let hash = check(&value)?;
    let text = |k: &str| value[k].as_str().unwrap_or_default().to_owned();
    Ok(Verified {
        receipt_id: text("receipt_id"),
        receipt_hash: hash.to_string(),
        kind: text("kind"),
        worker_id: text("worker_id"),
        issued_at: value["issued_at"].as_u64().unwrap_or(0),
        source,
        proves: PROVES.to_owned(),
    })
}

/// Recomputes a receipt's hash: RECEIPT_INVALID when it does not match.
fn check(value: &Value) -> Result<crate::domain::ReceiptHash, Problem> {
    verify_receipt_json(value).map_err(|e| {
        Problem::new(ErrorCode::ReceiptInvalid, e.to_string()).with_fix(
            "This receipt was changed after it was sealed, or is not a receipt: fetch it again \
             from the orchestrator (GET /api/receipts/{id}).",
        )
    })
}

/// A receipt's id or hash (or a file's path) as the guard sees free text: a receipt hash is
/// 64 hex, like a private key, so it passes unless it is labelled as a key or is one of this
/// host's secrets (its device key, a legacy token, its evaluator key, the key of its wallet).
fn guard(env: Option<&WorkerEnv>, value: &str) -> Result<(), Problem> {
    let secrets = env.map(super::tasks::host_secrets).unwrap_or_default();
    let known: Vec<&[u8]> = secrets.iter().map(|s| s.as_slice()).collect();
    let wallets: Vec<_> = env.and_then(|e| e.wallet).into_iter().collect();
    let host = HostSecrets {
        known: &known,
        wallets: &wallets,
        token_hashes: &[],
    };
    check_free_text("receipt", value, &host)?;
    Ok(())
}

/// The orchestrator answered the receipt asked for: the one with that id, or that hash (a
/// receipt that verifies but is another one proves nothing about the one asked for).
fn is_the_one(value: &Value, asked: &str) -> Result<(), Problem> {
    let field = if asked.starts_with("0x") {
        "receipt_hash"
    } else {
        "receipt_id"
    };
    let got = value[field].as_str().unwrap_or_default();
    if got.eq_ignore_ascii_case(asked) {
        return Ok(());
    }
    Err(Problem::new(
        ErrorCode::ReceiptInvalid,
        format!("the orchestrator answered another receipt than {asked} (its {field} is {got})"),
    )
    .with_fix("Do not trust this orchestrator's answer; fetch the receipt from another source."))
}

/// A receipt by id (`rcpt-…`) or hash (`0x…`) from the orchestrator, and where it came from.
async fn fetch(
    ctx: &Context,
    env: Option<&WorkerEnv>,
    url: Option<&str>,
    id: &str,
) -> Result<(Value, String), Problem> {
    let (client, url) = orchestrator(ctx, env, url)?;
    Ok((client.receipt(id).await?, url.to_string()))
}

/// The orchestrator at `url` when given, else the env file's, else the configured one.
fn orchestrator(
    ctx: &Context,
    env: Option<&WorkerEnv>,
    url: Option<&str>,
) -> Result<(crate::client::OrchestratorClient, url::Url), Problem> {
    let Some(url) = url else {
        return client(ctx, env);
    };
    let url = super::parse::http_url("url", url)?;
    let client =
        crate::client::OrchestratorClient::new(url.clone(), std::time::Duration::from_secs(30))?;
    Ok((client, url))
}

/// A receipt by id or hash from the orchestrator, verified (what `basis://receipts/{id}`
/// serves). Only ids and hashes: never a file.
pub async fn fetch_verified(ctx: &Context, id: &str) -> Result<Value, Problem> {
    let env = read_env(ctx, None)?;
    guard(env.as_ref(), id)?;
    if !(id.starts_with("rcpt-") || id.starts_with("0x")) || id.contains('/') {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            "a receipt is named by its id (rcpt- + 32 hex) or its hash (0x + 64 hex)",
        )
        .with_fix(
            "Read basis://receipts/rcpt-… with the id a gateway answer or a task settlement gave.",
        ));
    }
    let (value, _) = fetch(ctx, env.as_ref(), None, id).await?;
    check(&value)?;
    is_the_one(&value, id)?;
    Ok(value)
}

/// Which receipts to export, and where.
#[derive(Debug, Clone, Default)]
pub struct ExportInput {
    /// Only receipts issued at or after this unix second.
    pub since: Option<u64>,
    /// Only this worker's.
    pub worker: Option<String>,
    /// Write here (atomically); else to standard output.
    pub out: Option<PathBuf>,
    /// The orchestrator (else the env file's, else the configured one).
    pub url: Option<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Exported {
    pub receipts: u64,
    /// keccak256 of the end line: keep it to pin the whole log.
    pub last_line_hash: String,
    /// The file written, when not standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub orchestrator_url: String,
}

/// Pages through the orchestrator's receipts and writes them as a log.
pub async fn export(ctx: &Context, input: &ExportInput) -> Result<Exported, Problem> {
    let worker = match &input.worker {
        Some(w) => Some(WorkerId::parse(w.trim()).map_err(|e| {
            Problem::new(ErrorCode::InvalidWorkerId, e.to_string())
                .with_fix("Give a worker id as the registry shows it.")
        })?),
        None => None,
    };
    let env = read_env(ctx, None)?;
    let (client, url) = orchestrator(ctx, env.as_ref(), input.url.as_deref())?;
    let mut writer = LogWriter::default();
    let mut lines = String::new();
    let mut query = ReceiptQuery {
        since: input.since,
        worker,
        after: None,
        limit: Some(RECEIPTS_PAGE_MAX),
    };
    let mut count = 0_u64;
    loop {
        let page = client.receipts(&query).await?;
        for receipt in &page.receipts {
            lines.push_str(&writer.line(receipt));
            lines.push('\n');
            count += 1;
        }
        match page.next_after {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    lines.push_str(&writer.end());
    lines.push('\n');
    let path = if let Some(path) = &input.out {
        crate::config::atomic::write_atomic(path, lines.as_bytes(), 0o644).map_err(|e| {
            Problem::new(
                ErrorCode::IoError,
                format!("cannot write {}: {e}", path.display()),
            )
            .with_fix("Check the directory exists and is writable.")
        })?;
        Some(path.display().to_string())
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(lines.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Problem::new(ErrorCode::IoError, format!("cannot write the log: {e}")))?;
        None
    };
    Ok(Exported {
        receipts: count,
        last_line_hash: writer.last_hash().to_owned(),
        path,
        orchestrator_url: url.to_string(),
    })
}

/// A log that verified.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LogVerified {
    pub path: String,
    pub receipts: u64,
    /// keccak256 of the end line.
    pub last_line_hash: String,
}

/// Checks the log at `path`: the chain, every receipt, the end line.
pub fn verify_log_file(path: &Path) -> Result<LogVerified, Problem> {
    let file = std::fs::File::open(path).map_err(|e| {
        Problem::new(
            ErrorCode::IoError,
            format!("cannot read {}: {}", path.display(), e.kind()),
        )
        .with_fix("Check the path and its permissions.")
    })?;
    let summary = verify_log(std::io::BufReader::new(file)).map_err(|e| {
        Problem::new(ErrorCode::ReceiptLogInvalid, e.to_string()).with_fix(
            "The log was changed after it was exported: export it again (`basis receipts \
             export`) and compare.",
        )
    })?;
    Ok(LogVerified {
        path: path.display().to_string(),
        receipts: summary.receipts,
        last_line_hash: summary.last_hash,
    })
}
