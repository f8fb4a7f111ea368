//! `rotate_key`: replace this host's device key (docs/SECURITY.md, "Registration"). Crash-safe,
//! each step durable before the next:
//!
//! 1. a new key is generated into `BASIS_DEVICE_KEY_NEXT` (an atomic write under the env
//!    file's lock), before the orchestrator hears of it, so no crash can lose a key the
//!    orchestrator may come to hold;
//! 2. the orchestrator registers the new public key, the request signed by the new key
//!    (`basis`) and by the current one (`previous`), which authorises the change; from then on
//!    the old key is refused;
//! 3. the new key becomes `BASIS_DEVICE_KEY` and `BASIS_DEVICE_KEY_NEXT` is removed.
//!
//! A rerun after a crash reuses the pending key; when the orchestrator already holds it (the
//! crash fell between 2 and 3), it only promotes it.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::register::registration;
use super::{Context, env_edit};
use crate::client::{OrchestratorClient, RegisterAuth};
use crate::config::{KEY_DEVICE_KEY, KEY_DEVICE_KEY_NEXT};
use crate::domain::{DeviceKey, ErrorCode, KeyFingerprint, Problem};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::wire::WorkerRecord;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The env file holding the key (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.env_file.guard("env_file")
    }
}

/// The rotation done. Shows fingerprints only; no key ever leaves this host.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// The registration as the orchestrator now holds it (its key_fingerprint is the new key's).
    pub record: WorkerRecord,
    /// The key replaced, refused by the orchestrator from now on.
    pub previous_key_fingerprint: KeyFingerprint,
    /// The key now in BASIS_DEVICE_KEY.
    pub key_fingerprint: KeyFingerprint,
    /// True when this call finished a rotation an earlier one began (its pending key was
    /// reused).
    pub resumed: bool,
    pub env_file: String,
    pub orchestrator_url: String,
    pub next_step: String,
}

/// Rotates the key (see the module doc).
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let path = ctx
        .allowed
        .check(&ctx.env_path(input.env_file.as_deref()))?;
    // 1. The pending key, durable before anyone else hears of it.
    let (env, fresh) = env_edit::edit(ctx, &path, |env| {
        let ready = env.device_key.is_some() && env.worker_id.is_some();
        (ready && env.device_key_next.is_none())
            .then(|| env.device_key_next = Some(DeviceKey::generate()))
    })?;
    let (Some(id), Some(old), Some(next)) = (
        env.worker_id.clone(),
        env.device_key.clone(),
        env.device_key_next.clone(),
    ) else {
        return Err(Problem::new(
            ErrorCode::EnvIncomplete,
            format!(
                "{} has no {KEY_DEVICE_KEY} or no worker id: there is no key to rotate",
                path.display()
            ),
        )
        .with_fix(
            "register the worker first with register_worker (it creates the device key, and \
             moves a worker that still uses a token to it); rotate afterwards",
        ));
    };
    let url = env
        .orchestrator_url
        .clone()
        .unwrap_or_else(|| ctx.settings.orchestrator_url.clone());
    let client = OrchestratorClient::new(url.clone(), Duration::from_secs(10))?;
    // 2. The orchestrator moves to the new key, unless an interrupted run already did that.
    let held = client.find_worker(&id).await?;
    let record = match held {
        Some(record) if record.key_fingerprint.as_ref() == Some(&next.fingerprint()) => record,
        Some(_) => {
            let request = registration(ctx, &env, &next.public()).await?;
            let auth = RegisterAuth {
                key: Some(&next),
                previous_key: Some(&old),
                ..RegisterAuth::default()
            };
            client.register_with(&request, auth).await?.record
        }
        None => {
            return Err(Problem::new(
                ErrorCode::WorkerNotFound,
                format!("worker `{id}` is not registered at {url}: there is no key to rotate"),
            )
            .with_fix("register it with register_worker; rotate afterwards"));
        }
    };
    // 3. The new key becomes the key.
    let (_, promoted) = env_edit::edit(ctx, &path, |env| {
        let pending = env.device_key_next.as_ref()?;
        (pending.public() == next.public()).then(|| env.device_key = env.device_key_next.take())
    })?;
    if promoted.is_none() {
        return Err(Problem::new(
            ErrorCode::Internal,
            format!(
                "{KEY_DEVICE_KEY_NEXT} in {} changed during the rotation; the orchestrator holds \
                 the key {}",
                path.display(),
                next.fingerprint()
            ),
        )
        .with_fix("run rotate_key again: it finishes the rotation the file now describes"));
    }
    tracing::info!(
        worker_id = %id,
        previous = %old.fingerprint(),
        key = %next.fingerprint(),
        "rotated the device key"
    );
    Ok(Output {
        record,
        previous_key_fingerprint: old.fingerprint(),
        key_fingerprint: next.fingerprint(),
        resumed: fresh.is_none(),
        env_file: path.display().to_string(),
        orchestrator_url: url.to_string(),
        next_step: "restart the worker so it connects with the new key (stop_worker, then \
                    start_worker); the orchestrator refuses the old key from now on"
            .to_owned(),
    })
}
