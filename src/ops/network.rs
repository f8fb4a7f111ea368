//! `network_status`: the orchestrator's onboarding posture
//! (docs/PROTOCOL.md, "Onboarding status") and whether this host's env
//! file is complete and registered there. Read-only; an unreachable orchestrator is reported,
//! not raised, so the local half of the answer is never lost.

use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Context, parse};
use crate::client::OrchestratorClient;
use crate::config::WorkerEnv;
use crate::domain::{KeyFingerprint, Problem, TokenFingerprint, WorkerId};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::wire::{OnboardingStatus, WorkerRecord};

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The orchestrator to ask (default: the env file's, else basis.toml / BASIS_ORCHESTRATOR_URL).
    #[serde(default)]
    pub orchestrator_url: Option<String>,
    /// The env file (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.orchestrator_url.guard("orchestrator_url")?;
        self.env_file.guard("env_file")
    }
}

/// This host's env file, as far as onboarding is concerned.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EnvState {
    pub path: String,
    pub exists: bool,
    /// Worker id, wallet, runtime, models, orchestrator URL and device key (or a legacy
    /// token) all present.
    pub complete: bool,
    /// Keys that are missing.
    pub missing: Vec<String>,
    /// The device key's fingerprint (the key itself never leaves this host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<KeyFingerprint>,
    /// The file still holds a legacy BASIS_WORKER_TOKEN (register_worker moves the worker to
    /// the device key and removes it).
    pub legacy_token: bool,
    /// Why the file could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

// Each bool is an independent finding.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub orchestrator_url: String,
    pub reachable: bool,
    /// The orchestrator's posture; absent when it could not be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onboarding: Option<OnboardingStatus>,
    /// Why the orchestrator could not be asked, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_error: Option<Problem>,
    pub env: EnvState,
    /// The orchestrator knows this worker id.
    pub registered: bool,
    /// Registered AND the orchestrator holds this env file's device key (or, for a worker that
    /// has no key yet, its legacy token).
    pub credential_matches: bool,
    /// The orchestrator still knows this worker by a legacy token, not a device key:
    /// register_worker moves it to the key.
    pub legacy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerRecord>,
    pub next_step: String,
}

fn env_state(path: &Path) -> (EnvState, Option<WorkerEnv>) {
    let mut state = EnvState {
        path: path.display().to_string(),
        exists: path.exists(),
        complete: false,
        missing: Vec::new(),
        key_fingerprint: None,
        legacy_token: false,
        error: None,
    };
    let env = match WorkerEnv::read_optional(path) {
        Ok(env) => env,
        Err(e) => {
            state.error = Some(e.into());
            return (state, None);
        }
    };
    let Some(env) = env else {
        return (state, None);
    };
    let checks = [
        ("BASIS_WORKER_ID", env.worker_id.is_some()),
        ("BASIS_WORKER_WALLET", env.wallet.is_some()),
        ("BASIS_WORKER_RUNTIME", env.runtime.is_some()),
        ("BASIS_WORKER_MODELS", !env.models.is_empty()),
        ("BASIS_ORCHESTRATOR_URL", env.orchestrator_url.is_some()),
        (
            "BASIS_DEVICE_KEY",
            env.device_key.is_some() || env.token.is_some(),
        ),
    ];
    state.missing = checks
        .iter()
        .filter(|(_, present)| !present)
        .map(|(k, _)| (*k).to_owned())
        .collect();
    state.complete = state.missing.is_empty();
    state.key_fingerprint = env
        .device_key
        .as_ref()
        .map(crate::domain::DeviceKey::fingerprint);
    state.legacy_token = env.token.is_some();
    (state, Some(env))
}

/// Whether `worker` (the orchestrator's record) holds this host's credential: its device key,
/// or, for a record without a key, the legacy `token` (fingerprinted).
fn matches(
    worker: Option<&WorkerRecord>,
    env: &EnvState,
    token: Option<&TokenFingerprint>,
) -> bool {
    let Some(worker) = worker else {
        return false;
    };
    match (&worker.key_fingerprint, &env.key_fingerprint) {
        (Some(held), Some(ours)) => held == ours,
        (Some(_), None) => false,
        (None, _) => token.is_some_and(|t| worker.token_fingerprint == t.as_str()),
    }
}

/// The orchestrator at `url` did not answer: say so first, then what to check. `source` says
/// where the URL came from (see [`env_url_source`]). Shared by network_status, verify_online
/// and worker_status.
pub fn unreachable_step(url: &str, source: &str) -> String {
    format!(
        "the orchestrator at {url} cannot be reached: check that it is running (`basis \
         orchestrator` on its host) and that {source} is its address"
    )
}

/// Where an orchestrator URL read for the env file at `env_path` comes from.
pub fn env_url_source(env_path: &str) -> String {
    format!("BASIS_ORCHESTRATOR_URL in {env_path} (or `orchestrator_url` in basis.toml)")
}

/// Asks the orchestrator for its posture and this worker's record.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let path = ctx.env_path(input.env_file.as_deref());
    let (env_state, env) = env_state(&path);
    let url = match &input.orchestrator_url {
        Some(u) => parse::http_url("orchestrator_url", u)?,
        None => env
            .as_ref()
            .and_then(|e| e.orchestrator_url.clone())
            .unwrap_or_else(|| ctx.settings.orchestrator_url.clone()),
    };
    let worker_id: Option<WorkerId> = env.as_ref().and_then(|e| e.worker_id.clone());
    let client = OrchestratorClient::new(url.clone(), Duration::from_secs(5))?;
    let (onboarding, orchestrator_error) = match client.onboarding_status().await {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(Problem::from(e))),
    };
    let mut worker = None;
    let mut orchestrator_error = orchestrator_error;
    if let (Some(id), true) = (&worker_id, onboarding.is_some()) {
        match client.find_worker(id).await {
            Ok(found) => worker = found,
            Err(e) => orchestrator_error = Some(e.into()),
        }
    }
    let token = env
        .as_ref()
        .and_then(|e| e.token.as_ref())
        .map(crate::domain::WorkerToken::fingerprint);
    let credential_matches = matches(worker.as_ref(), &env_state, token.as_ref());
    let legacy = worker.as_ref().is_some_and(|w| w.key_fingerprint.is_none());
    let next_step = if onboarding.is_none() {
        format!(
            "{}; then ask again",
            unreachable_step(
                url.as_str(),
                &if input.orchestrator_url.is_some() {
                    "the orchestrator_url given".to_owned()
                } else {
                    env_url_source(&env_state.path)
                }
            )
        )
    } else if !env_state.complete {
        "write the missing settings with write_env (public values only)".to_owned()
    } else if worker.is_none() {
        "register the worker with register_worker".to_owned()
    } else if legacy && credential_matches {
        "the orchestrator still knows this worker by its legacy token: run register_worker to \
         move it to its device key (the token is then refused)"
            .to_owned()
    } else if !credential_matches {
        "the orchestrator holds another key for this worker id: run register_worker from the \
         host whose env file holds the worker's device key, or ask the operator"
            .to_owned()
    } else {
        "ready: start the worker with start_worker, then check it with verify_online".to_owned()
    };
    Ok(Output {
        orchestrator_url: url.to_string(),
        reachable: onboarding.is_some(),
        onboarding,
        orchestrator_error,
        registered: worker.is_some(),
        credential_matches,
        legacy,
        worker,
        env: env_state,
        next_step,
    })
}
