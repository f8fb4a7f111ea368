//! `register_worker`: register this host's worker with the orchestrator (docs/SECURITY.md,
//! "Registration"). The device key is made (or kept) in the env file here; only its public key
//! and the request's signature by it leave the host. A legacy env file's token is sent once, as
//! the proof that moves the worker to its key, and removed from the file once the orchestrator
//! holds the key.

use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::resolve::ENV_ADMIN_KEY;
use super::{Context, env_edit, parse, write_env};
use crate::client::{ClientError, OrchestratorClient, RegisterAuth};
use crate::config::WorkerEnv;
use crate::domain::{
    DevicePublicKey, ErrorCode, KeyFingerprint, Problem, TokenSha256, WorkerToken,
};
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
    /// Another than the one the env file names needs new_orchestrator.
    #[serde(default)]
    pub orchestrator_url: Option<String>,
    /// Confirms moving this worker to a different orchestrator than the one its env file
    /// names (default false: such a change is refused).
    #[serde(default)]
    pub new_orchestrator: Option<bool>,
    /// Accept a plain http:// orchestrator that is not on this machine (default false: refused,
    /// since jobs and outputs would travel in clear; use https://).
    #[serde(default)]
    pub allow_insecure_http: Option<bool>,
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
    /// The fingerprint of the device key in the env file (matches `record.key_fingerprint`).
    /// The private key never leaves this host.
    pub key_fingerprint: KeyFingerprint,
    /// True when this call moved the worker from its legacy token to the device key: the
    /// token was proven once and removed from the env file; the orchestrator refuses it now.
    pub migrated: bool,
    /// The orchestrator the env file named before, when this call moved the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_orchestrator_url: Option<String>,
    pub env_file: String,
    pub orchestrator_url: String,
    pub next_step: String,
}

/// Saves the given settings, then registers the device key's public half, signed by the key
/// (proving possession, so re-running is idempotent).
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    parse::refuse_key_as_wallet(input.wallet.as_deref())?;
    input.check_secrets()?;
    let given_url = input
        .orchestrator_url
        .as_deref()
        .map(|u| write_env::orchestrator_url("orchestrator_url", u, input.allow_insecure_http))
        .transpose()?;
    let write_env::Written {
        output: written,
        env,
        file_url,
    } = save_settings(ctx, input, given_url.as_ref())?;
    let key = env.device_key.as_ref().ok_or_else(|| {
        Problem::new(
            ErrorCode::Internal,
            "the env file has no device key after writing it",
        )
    })?;
    // Only the orchestrator the file named before counts: a default this call filled in is no
    // choice the user made.
    let moved_from = write_env::check_move(
        &written.path,
        file_url.as_ref(),
        given_url.as_ref(),
        input.new_orchestrator.unwrap_or(false),
    )?;
    let url = given_url
        .clone()
        .or_else(|| env.orchestrator_url.clone())
        .unwrap_or_else(|| ctx.settings.orchestrator_url.clone());
    let request = registration(ctx, &env, &key.public()).await?;
    let client = OrchestratorClient::new(url.clone(), Duration::from_secs(10))?;
    let enrollment = enrollment_key(&env);
    // A legacy token and the admin key are proof that only the orchestrator this host already
    // used may see: never sent to an orchestrator the call moves to (an agent can be talked
    // into naming a hostile one), and a token is retired only after that orchestrator moved it.
    let home = file_url
        .clone()
        .unwrap_or_else(|| ctx.settings.orchestrator_url.clone());
    let at_home = url == home;
    let admin = admin_key().filter(|_| at_home);
    let outcome = client
        .register_with(
            &request,
            RegisterAuth {
                key: Some(key),
                previous_key: None,
                // A legacy worker proves its token once, moving to the key.
                proof: env.token.as_ref().filter(|_| at_home),
                enrollment_key: enrollment.as_ref(),
                admin_key: admin.as_ref(),
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
        save_url(ctx, input)?;
    }
    let outcome = outcome.map_err(|e| refusal(e, &env))?;
    let fingerprint = key.fingerprint();
    let migrated = match &env.token {
        Some(token) if at_home && outcome.record.key_fingerprint.as_ref() == Some(&fingerprint) => {
            retire_token(ctx, Path::new(&written.path), token, &fingerprint)?
        }
        _ => false,
    };
    tracing::info!(
        worker_id = %written.worker_id,
        orchestrator = %url,
        created = outcome.created,
        migrated,
        key_fingerprint = %fingerprint,
        "registered with the orchestrator"
    );
    let next_step = if migrated {
        "the worker now authenticates with its device key and its old token is refused: if it \
         is running, restart it (stop_worker, then start_worker) so it connects with the key; \
         else start it with start_worker, then check it with verify_online"
    } else {
        "start the worker with start_worker, then check it with verify_online"
    };
    Ok(Output {
        record: outcome.record,
        created: outcome.created,
        key_fingerprint: fingerprint,
        migrated,
        previous_orchestrator_url: moved_from.map(|u| u.as_str().trim_end_matches('/').to_owned()),
        env_file: written.path,
        orchestrator_url: url.to_string(),
        next_step: next_step.to_owned(),
    })
}

/// Saves the given settings in the env file (creating it, and its device key, if needed) and
/// returns it as written. A file that names no orchestrator yet gets `given_url` (so of racing
/// first writes, the one that creates the file picks the URL the others are checked against).
/// The key comes from the file as written under its lock: a concurrent first write_env or
/// register_worker either created the file before (and this keeps its key) or waits and keeps
/// this one. The lock is not held across the network call that follows: basis never replaces
/// a key that exists (only rotate_key does, under the lock).
fn save_settings(
    ctx: &Context,
    input: &Input,
    given_url: Option<&url::Url>,
) -> Result<write_env::Written, Problem> {
    write_env::update(
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
        given_url,
    )
}

/// Saves the orchestrator URL given (which answered) in the env file.
fn save_url(ctx: &Context, input: &Input) -> Result<(), Problem> {
    write_env::run(
        ctx,
        &write_env::Input {
            orchestrator_url: input.orchestrator_url.clone(),
            new_orchestrator: Some(true),
            allow_insecure_http: input.allow_insecure_http,
            out: input.env_file.clone(),
            ..write_env::Input::default()
        },
    )
    .map(|_| ())
}

/// The registration of the worker `env` describes (`write_env::update` completed it), with
/// `key` as its device key.
pub(super) async fn registration(
    ctx: &Context,
    env: &WorkerEnv,
    key: &DevicePublicKey,
) -> Result<RegisterRequest, Problem> {
    let (Some(worker_id), Some(wallet), Some(runtime)) =
        (env.worker_id.clone(), env.wallet, env.runtime)
    else {
        return Err(Problem::new(
            ErrorCode::EnvIncomplete,
            "the env file lacks the worker id, the wallet or the runtime",
        )
        .with_fix("complete it with write_env (public values only)"));
    };
    Ok(RegisterRequest {
        worker_id,
        wallet,
        runtime,
        models: env.models.clone(),
        token_sha256: TokenSha256::sha256(key.as_bytes()),
        public_key: Some(*key),
        hardware: Some(hardware_summary(ctx).await),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        multi_task: env.multi_task.unwrap_or(false),
        labels: env.labels.clone(),
    })
}

/// Removes the legacy `token` from the env file at `path` now that the orchestrator holds the
/// device key with `fingerprint` (only if the file still holds both). Whether it did.
fn retire_token(
    ctx: &Context,
    path: &Path,
    token: &WorkerToken,
    fingerprint: &KeyFingerprint,
) -> Result<bool, Problem> {
    let (_, done) = env_edit::edit(ctx, path, |env| {
        let same_token = env.token.as_ref().is_some_and(|t| t.ct_eq(token));
        let same_key = env
            .device_key
            .as_ref()
            .is_some_and(|k| k.fingerprint() == *fingerprint);
        (same_token && same_key).then(|| env.token = None)
    })?;
    Ok(done.is_some())
}

/// A refused registration, with a hint when an interrupted rotation explains it.
fn refusal(e: ClientError, env: &WorkerEnv) -> Problem {
    let mut problem = Problem::from(e);
    if problem.code == ErrorCode::WorkerIdTaken && env.device_key_next.is_some() {
        problem.fix = Some(
            "The env file holds BASIS_DEVICE_KEY_NEXT: a key rotation was interrupted, and the \
             orchestrator may already hold the new key. Finish it with rotate_key (`basis \
             rotate-key`), then register again."
                .to_owned(),
        );
    }
    problem
}

/// The operator's admin key, from the process environment only: with it, a registration may
/// replace a lost key or lift a revocation (recovery).
fn admin_key() -> Option<SecretString> {
    std::env::var(ENV_ADMIN_KEY)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| SecretString::from(v.trim().to_owned()))
}

/// What the orchestrator learns about this machine: a quick hardware check, summarised.
pub(super) async fn hardware_summary(ctx: &Context) -> HardwareSummary {
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
