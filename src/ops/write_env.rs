//! `write_env`: write the worker's env file (docs/FILES.md, "worker.env") from public
//! settings. The token is generated
//! here, on the host, when the file has none, and an existing one is always kept.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use super::Context;
use super::parse;
use crate::config::{ENV_FILE_MODE, WorkerEnv};
use crate::domain::{ErrorCode, Problem, Runtime, TokenFingerprint, WalletAddress, WorkerId};
use crate::guard::{GuardText, Guarded, SecretRefused};

/// Public settings for the worker. Every field is optional on a rewrite: what is omitted keeps
/// its current value. Never put a private key, seed phrase or token here.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The PUBLIC EVM address (0x + 40 hex) that receives rewards. Never a private key.
    #[serde(default)]
    pub wallet: Option<String>,
    /// The worker's name: 2-63 lowercase letters, digits and '-', e.g. "gpu-box-1".
    #[serde(default)]
    pub worker_id: Option<String>,
    /// echo (simulator, no GPU), ollama or vllm. Defaults to echo for a new file.
    #[serde(default)]
    pub runtime: Option<String>,
    /// Models this worker serves, e.g. ["llama3.1:8b"]. Defaults to ["echo"] for the echo runtime.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// The Ollama model to run (ollama runtime).
    #[serde(default)]
    pub ollama_model: Option<String>,
    /// Ollama's URL (default http://127.0.0.1:11434).
    #[serde(default)]
    pub ollama_url: Option<String>,
    /// vLLM's URL (default http://127.0.0.1:8000).
    #[serde(default)]
    pub vllm_url: Option<String>,
    /// The orchestrator to register with (default from basis.toml / BASIS_ORCHESTRATOR_URL).
    #[serde(default)]
    pub orchestrator_url: Option<String>,
    /// Let this worker hold several task claims at once when it registers (default false:
    /// one claim at a time).
    #[serde(default)]
    pub multi_task: Option<bool>,
    /// Where to write the env file (default: worker.env in the basis config directory). Must
    /// be inside the config dir, the current dir or a dir allowed in basis.toml.
    #[serde(default)]
    pub out: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.wallet.guard("wallet")?;
        self.worker_id.guard("worker_id")?;
        self.runtime.guard("runtime")?;
        self.models.guard("models")?;
        self.ollama_model.guard("ollama_model")?;
        self.ollama_url.guard("ollama_url")?;
        self.vllm_url.guard("vllm_url")?;
        self.orchestrator_url.guard("orchestrator_url")?;
        self.out.guard("out")
    }
}

/// What was written. Shows the token's fingerprint, never the token.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// Absolute path of the env file.
    pub path: String,
    /// File mode, always "0600".
    pub mode: String,
    /// Keys now in the file, in file order.
    pub keys_written: Vec<String>,
    /// True when the file did not exist before.
    pub created: bool,
    /// True when an existing token was kept; false when one was generated now.
    pub token_kept: bool,
    /// First 8 hex of sha256(token).
    pub token_fingerprint: TokenFingerprint,
    pub worker_id: WorkerId,
    pub wallet: WalletAddress,
    pub runtime: Runtime,
    pub models: Vec<String>,
    pub orchestrator_url: String,
    /// The worker registers as multi-task: it may hold several task claims at once.
    pub multi_task: bool,
    /// What to do next.
    pub next_step: String,
}

/// Parses the input into the env-file update it describes.
fn update_from(input: &Input) -> Result<WorkerEnv, Problem> {
    Ok(WorkerEnv {
        worker_id: input
            .worker_id
            .as_deref()
            .map(parse::worker_id)
            .transpose()?,
        wallet: input.wallet.as_deref().map(parse::wallet).transpose()?,
        runtime: input.runtime.as_deref().map(parse::runtime).transpose()?,
        models: input.models.clone().unwrap_or_default(),
        ollama_model: input.ollama_model.clone(),
        ollama_url: opt_url("ollama_url", input.ollama_url.as_deref())?,
        vllm_url: opt_url("vllm_url", input.vllm_url.as_deref())?,
        orchestrator_url: opt_url("orchestrator_url", input.orchestrator_url.as_deref())?,
        token: None,
        evaluator_key: None,
        multi_task: input.multi_task,
        extra: Vec::new(),
    })
}

fn opt_url(field: &str, value: Option<&str>) -> Result<Option<Url>, Problem> {
    value.map(|v| parse::http_url(field, v)).transpose()
}

/// Models when none were given: the echo runtime serves `echo`; another runtime drops that
/// simulator model and serves its Ollama model when one is set.
fn default_models(env: &mut WorkerEnv, runtime: Runtime) {
    if runtime == Runtime::Echo {
        if env.models.is_empty() {
            env.models = vec![ECHO_MODEL.to_owned()];
        }
        return;
    }
    env.models.retain(|m| m != ECHO_MODEL);
    if env.models.is_empty()
        && let Some(model) = &env.ollama_model
    {
        env.models = vec![model.clone()];
    }
}

/// The one model the echo simulator serves.
const ECHO_MODEL: &str = "echo";

/// Merges the input into the env file (creating it if needed), keeps or generates the token,
/// and writes it atomically with mode 0600.
pub fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    parse::refuse_key_as_wallet(input.wallet.as_deref())?;
    input.check_secrets()?;
    let path = ctx.env_path(input.out.as_deref());
    let update = update_from(input)?;
    let existing = WorkerEnv::read_optional(&ctx.allowed.check(&path)?)?;
    let created = existing.is_none();
    let mut env = existing.unwrap_or_default();
    let models_given = !update.models.is_empty();
    env.merge(update);
    let runtime = *env.runtime.get_or_insert(Runtime::Echo);
    if !models_given {
        default_models(&mut env, runtime);
    }
    if env.orchestrator_url.is_none() {
        env.orchestrator_url = Some(ctx.settings.orchestrator_url.clone());
    }
    let (Some(worker_id), Some(wallet), Some(runtime)) =
        (env.worker_id.clone(), env.wallet, env.runtime)
    else {
        let missing: Vec<&str> = [
            ("worker_id", env.worker_id.is_none()),
            ("wallet", env.wallet.is_none()),
        ]
        .into_iter()
        .filter_map(|(k, m)| m.then_some(k))
        .collect();
        return Err(Problem::new(
            ErrorCode::EnvIncomplete,
            format!("the env file would lack {}", missing.join(" and ")),
        )
        .with_fix(format!(
            "pass {} (public values only)",
            missing.join(" and ")
        )));
    };
    if env.models.is_empty() {
        return Err(Problem::new(
            ErrorCode::EnvIncomplete,
            format!("the {runtime} runtime needs at least one model"),
        )
        .with_fix("pass models, e.g. [\"llama3.1:8b\"]"));
    }
    let token_kept = !env.ensure_token();
    let written = env.write(&path, &ctx.allowed)?;
    let token_fingerprint = written.token_fingerprint.clone().ok_or_else(|| {
        Problem::new(
            ErrorCode::Internal,
            "the env file was written without a token",
        )
    })?;
    tracing::debug!(
        path = %written.path.display(),
        created,
        token_kept,
        token_fingerprint = %token_fingerprint,
        "wrote the env file"
    );
    Ok(Output {
        path: written.path.display().to_string(),
        mode: format!("{ENV_FILE_MODE:04o}"),
        keys_written: written.keys,
        created,
        token_kept,
        token_fingerprint,
        worker_id,
        wallet,
        runtime,
        models: env.models.clone(),
        orchestrator_url: env
            .orchestrator_url
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        multi_task: env.multi_task.unwrap_or(false),
        next_step: "register the worker with the orchestrator (register_worker / `basis register`)"
            .to_owned(),
    })
}
