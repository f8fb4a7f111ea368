//! `basis orchestrator keys list|revoke|set-limits` and `workers revoke`: the operator manages a
//! running orchestrator's API keys and workers over its HTTP API with the admin key, read from `BASIS_ADMIN_KEY`
//! or a file (`--admin-key-file`), never from an argument, and never printed. Going through
//! the running orchestrator (not its database file) is what makes a revocation take effect at
//! once: the replica that handles it forgets the key and tells the others.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::resolve::admin_key;
use crate::client::OrchestratorClient;
use crate::domain::{ErrorCode, Problem, WorkerId};
use crate::guard::{HostSecrets, check_free_text};
use crate::wire::{ApiKey, KeyLimits, KeyList, KeyUsageReport, SetLimitsRequest, WorkerRecord};
use secrecy::{ExposeSecret as _, SecretString};

/// Which orchestrator, and where the admin key is.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The orchestrator's base URL.
    pub url: String,
    /// A file whose first line is the admin key (else `BASIS_ADMIN_KEY`).
    pub admin_key_file: Option<PathBuf>,
}

fn invalid(message: impl Into<String>, fix: &str) -> Problem {
    Problem::new(ErrorCode::InvalidArgument, message).with_fix(fix)
}

pub(crate) fn connect(
    admin: &Admin,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(OrchestratorClient, SecretString), Problem> {
    let url = Url::parse(&admin.url).map_err(|_| {
        invalid(
            "--url is not a URL",
            "Give the orchestrator's base URL, e.g. http://127.0.0.1:8787.",
        )
    })?;
    let key = admin_key(admin.admin_key_file.as_ref(), env)?;
    let client = OrchestratorClient::new(url, Duration::from_secs(30)).map_err(Problem::from)?;
    Ok((client, key))
}

/// The id as given, checked. `keys list` shows a key's whole sha256 (`0x` + 64 hex), which
/// may be given as its id: it passes the guard as a hash does, unless it is the admin key
/// itself.
fn key_id<'a>(id: &'a str, admin_key: &SecretString) -> Result<&'a str, Problem> {
    let known = [admin_key.expose_secret().as_bytes()];
    let host = HostSecrets {
        known: &known,
        ..HostSecrets::NONE
    };
    check_free_text("key id", id, &host)?;
    let id = id.trim();
    if id.is_empty() {
        return Err(invalid(
            "no key id was given",
            "Give the key's id as `basis orchestrator keys list` shows it (key: + hex).",
        ));
    }
    Ok(id)
}

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Every key with its quotas and today's usage.
pub async fn list(admin: &Admin) -> Result<KeyList, Problem> {
    let (client, key) = connect(admin, &env)?;
    client.keys(&key).await.map_err(Problem::from)
}

/// The key `id`'s usage and charged amount per UTC day over the last `days` days.
pub async fn usage(admin: &Admin, id: &str, days: u32) -> Result<KeyUsageReport, Problem> {
    let (client, key) = connect(admin, &env)?;
    let id = key_id(id, &key)?;
    client
        .key_usage(id, days, &key)
        .await
        .map_err(Problem::from)
}

/// Revokes the key `id`: it stops working at once on every route.
pub async fn revoke(admin: &Admin, id: &str) -> Result<ApiKey, Problem> {
    let (client, key) = connect(admin, &env)?;
    let id = key_id(id, &key)?;
    client.revoke_key(id, &key).await.map_err(Problem::from)
}

/// Replaces the client key `id`'s quotas (a limit left out is removed).
pub async fn set_limits(admin: &Admin, id: &str, limits: KeyLimits) -> Result<ApiKey, Problem> {
    let (client, key) = connect(admin, &env)?;
    let id = key_id(id, &key)?;
    if limits.requests_per_minute == Some(0) || limits.tokens_per_day == Some(0) {
        return Err(invalid(
            "a limit must be at least 1",
            "Leave a limit out to remove it; revoke the key to stop it altogether.",
        ));
    }
    client
        .set_key_limits(id, &SetLimitsRequest::from(limits), &key)
        .await
        .map_err(Problem::from)
}

/// Revokes worker `id`: its key stops working at once on every route (and every replica), and
/// its open channel closes; an admin re-registration lifts it.
pub async fn revoke_worker(admin: &Admin, id: &str) -> Result<WorkerRecord, Problem> {
    let id = WorkerId::parse(id.trim()).map_err(|e| {
        Problem::new(ErrorCode::InvalidWorkerId, e.to_string())
            .with_fix("Give the worker id as `GET /api/workers` lists it.")
    })?;
    let (client, key) = connect(admin, &env)?;
    client.revoke_worker(&id, &key).await.map_err(Problem::from)
}
