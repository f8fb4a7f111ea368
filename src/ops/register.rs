//! `register_worker`: register this host's worker with the orchestrator. The token is made
//! (or kept) in the env file here, and only its sha256 leaves the host.

use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{Context, parse, write_env};
use crate::client::{ClientError, OrchestratorClient, RegisterAuth};
use crate::config::WorkerEnv;
use crate::domain::{ErrorCode, Problem, TokenFingerprint, WorkerToken};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::hardware::{self, CheckOptions, HardwareReport};
use crate::wire::{GpuSummary, HardwareSummary, MAX_TEXT_LEN, RegisterRequest, WorkerRecord};

/// The variable (in the process environment or the env file) holding the operator's
/// enrollment key when registration is gated. Never a tool argument.
pub const ENROLLMENT_KEY_VAR: &str = "BASIS_ENROLLMENT_KEY";

/// Public settings to register with. Omitted fields come from the env file (written by
/// write_env); given ones are saved there first, except orchestrator_url, which is saved only
/// once that orchestrator has answered. No key or token is ever an argument.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The PUBLIC EVM reward address (0x + 40 hex). Never a private key.
    #[serde(default)]
    pub wallet: Option<String>,
    /// The worker's name: 2-63 lowercase letters, digits and '-'.
    #[serde(default)]
    pub worker_id: Option<String>,
    /// echo, ollama or vllm.
    #[serde(default)]
    pub runtime: Option<String>,
    /// Models served.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// The orchestrator to register with (saved in the env file once it has answered).
    #[serde(default)]
    pub orchestrator_url: Option<String>,
    /// Let this worker hold several task claims at once (saved in the env file; default
    /// false: one claim at a time).
    #[serde(default)]
    pub multi_task: Option<bool>,
    /// The env file (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.wallet.guard("wallet")?;
        self.worker_id.guard("worker_id")?;
        self.runtime.guard("runtime")?;
        self.models.guard("models")?;
        self.orchestrator_url.guard("orchestrator_url")?;
        self.env_file.guard("env_file")
    }
}

/// The registration as the orchestrator holds it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub record: WorkerRecord,
    /// True when this call created the registration; false when it was already there.
    pub created: bool,
    /// First 8 hex of sha256 of the token in the env file (matches `record.token_fingerprint`).
    pub token_fingerprint: TokenFingerprint,
    pub env_file: String,
    pub orchestrator_url: String,
    pub next_step: String,
}

/// Saves the given settings, then registers with the token's sha256 (proving possession of
/// the current token, so re-running is idempotent).
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    parse::refuse_key_as_wallet(input.wallet.as_deref())?;
    input.check_secrets()?;
    let given_url = input
        .orchestrator_url
        .as_deref()
        .map(|u| parse::http_url("orchestrator_url", u))
        .transpose()?;
    // The token comes from the file as `update` wrote it under the env file's lock: a
    // concurrent first write_env or register_worker either created the file before (and this
    // keeps its token) or waits and keeps this one. The lock is not held across the network
    // call below: basis never replaces a token that exists, so nothing can change it meanwhile.
    let (written, env) = write_env::update(
        ctx,
        &write_env::Input {
            wallet: input.wallet.clone(),
            worker_id: input.worker_id.clone(),
            runtime: input.runtime.clone(),
            models: input.models.clone(),
            multi_task: input.multi_task,
            out: input.env_file.clone(),
            ..write_env::Input::default()
        },
    )?;
    let token = env.token.as_ref().ok_or_else(|| {
        Problem::new(
            ErrorCode::Internal,
            "the env file has no token after writing it",
        )
    })?;
    let url = given_url
        .clone()
        .or_else(|| env.orchestrator_url.clone())
        .unwrap_or_else(|| ctx.settings.orchestrator_url.clone());
    let request = RegisterRequest {
        worker_id: written.worker_id.clone(),
        wallet: written.wallet,
        runtime: written.runtime,
        models: written.models.clone(),
        token_sha256: token.sha256(),
        hardware: Some(hardware_summary(ctx).await),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        multi_task: env.multi_task.unwrap_or(false),
        labels: env.labels.clone(),
    };
    let client = OrchestratorClient::new(url.clone(), Duration::from_secs(10))?;
    let enrollment = enrollment_key(&env);
    let outcome = client
        .register_with(
            &request,
            RegisterAuth {
                proof: Some(token),
                enrollment_key: enrollment.as_ref(),
                admin_key: None,
            },
        )
        .await;
    // A new URL is saved only when an orchestrator answered there (a registration or its own
    // refusal): one that cannot be reached, or is not an orchestrator, must not replace the
    // saved one.
    let answered = matches!(
        &outcome,
        Ok(_) | Err(ClientError::Api { .. } | ClientError::UnknownCode { .. })
    );
    if answered && given_url.is_some_and(|u| env.orchestrator_url.as_ref() != Some(&u)) {
        write_env::run(
            ctx,
            &write_env::Input {
                orchestrator_url: input.orchestrator_url.clone(),
                out: input.env_file.clone(),
                ..write_env::Input::default()
            },
        )?;
    }
    let outcome = outcome?;
    tracing::info!(
        worker_id = %written.worker_id,
        orchestrator = %url,
        created = outcome.created,
        token_fingerprint = %WorkerToken::fingerprint(token),
        "registered with the orchestrator"
    );
    Ok(Output {
        record: outcome.record,
        created: outcome.created,
        token_fingerprint: WorkerToken::fingerprint(token),
        env_file: written.path,
        orchestrator_url: url.to_string(),
        next_step: "start the worker with start_worker, then check it with verify_online"
            .to_owned(),
    })
}

/// What the orchestrator learns about this machine: a quick hardware check, summarised.
async fn hardware_summary(ctx: &Context) -> HardwareSummary {
    let mut opts = CheckOptions::new(ctx.dirs().state_dir.clone());
    opts.probe_timeout = Duration::from_millis(800);
    summarise(&hardware::check(&opts).await)
}

fn summarise(report: &HardwareReport) -> HardwareSummary {
    let text = |s: &str| s.chars().take(MAX_TEXT_LEN).collect::<String>();
    HardwareSummary {
        gpus: report
            .gpus
            .iter()
            .map(|g| GpuSummary {
                vendor: serde_json::to_value(g.vendor)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                name: g.name.as_deref().map(text),
                vram_total_mib: g.vram_total_mib,
                compute_capability: g.compute_capability.as_deref().map(text),
            })
            .collect(),
        cpu_threads: report.host.cpu_threads,
        memory_total_mib: report.host.memory_total_mib,
        os: report.host.os.as_deref().map(text),
        arch: Some(text(&report.host.arch)),
    }
}

/// The enrollment key from the process environment, else from the env file's extra keys.
fn enrollment_key(env: &WorkerEnv) -> Option<SecretString> {
    std::env::var(ENROLLMENT_KEY_VAR)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            env.extra
                .iter()
                .find(|(k, _)| k == ENROLLMENT_KEY_VAR)
                .map(|(_, v)| v.clone())
        })
        .map(SecretString::from)
}
