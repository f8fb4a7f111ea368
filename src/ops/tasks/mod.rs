//! The task market's operations (docs/TASK_MARKET.md), one file per action: `fetch` (fetch_tasks),
//! `claim` (claim_task), `release` (release_task), `execute` (execute_task), `submit`
//! (submit_output), `submission` (get_submission), `evaluate` (verify_output, the Evaluator
//! Agent's) and `dispute` (dispute_output); `output_file` confines the files submit_output reads.
//! This file holds what they share: the env file, the orchestrator client, this worker's identity
//! and capabilities, the credential a submission is read with, id parsing.
//!
//! Capabilities (docs/TASK_MARKET.md, "Capabilities"): once registered, a worker's are what
//! the orchestrator derived from its registration (`wire::Capabilities`: runtime, models,
//! GPUs, labels). Before that, the env file's: `runtime:<runtime>`, `model:<name>` for each
//! model (`BASIS_WORKER_MODELS`, or `BASIS_OLLAMA_MODEL` for an ollama worker without a list)
//! and `label:<label>` for each of `BASIS_WORKER_LABELS`.
//!
//! Secrets: the device key (or a legacy worker's token) and the evaluator key are read from
//! the env file here; the key only signs the client's requests and never travels, a token or
//! evaluator key goes only into the client's sensitive headers; no output type holds any. A
//! submission is read with one of them ([`Reader`]): the orchestrator shows it only to its
//! poster, an evaluator, the worker that submitted it and the operator.

pub mod claim;
pub mod dispute;
pub mod evaluate;
pub mod execute;
pub mod fetch;
mod output_file;
#[cfg(test)]
mod output_file_tests;
pub mod release;
pub mod submission;
pub mod submit;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use url::Url;
use zeroize::Zeroizing;

use super::Context;
use crate::client::{OrchestratorClient, ReadAs, WorkerAuth};
use crate::config::{KEY_DEVICE_KEY, KEY_EVALUATOR_KEY, KEY_WORKER_ID, WorkerEnv};
use crate::domain::{
    DeviceKey, ErrorCode, Problem, Runtime, SubmissionId, TaskId, WorkerId, WorkerToken,
};
use crate::guard::device_key_forms;
use crate::wire::Task;

/// Every task-market call gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The env file at `env_file` (default: worker.env in the config directory), when it exists.
/// The path must be inside the allowed directories: it holds secrets basis will send.
pub(crate) fn read_env(
    ctx: &Context,
    env_file: Option<&str>,
) -> Result<Option<WorkerEnv>, Problem> {
    let path = ctx.allowed.check(&ctx.env_path(env_file))?;
    Ok(WorkerEnv::read_optional(&path)?)
}

/// The orchestrator to talk to: the env file's `BASIS_ORCHESTRATOR_URL`, else the configured
/// one (basis.toml / `BASIS_ORCHESTRATOR_URL`).
pub(crate) fn client(
    ctx: &Context,
    env: Option<&WorkerEnv>,
) -> Result<(OrchestratorClient, Url), Problem> {
    let url = env
        .and_then(|e| e.orchestrator_url.clone())
        .unwrap_or_else(|| ctx.settings.orchestrator_url.clone());
    let client = OrchestratorClient::new(url.clone(), TIMEOUT)?;
    Ok((client, url))
}

/// How this host's worker proves itself: its device key, or, in a legacy env file that has
/// none yet, its token.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    Key(Box<DeviceKey>),
    Token(WorkerToken),
}

impl Credential {
    /// A legacy token while the env file still holds one (registration retires it once the
    /// orchestrator has moved the worker to its key, so until then the token is what the
    /// orchestrator knows), else the device key.
    pub fn from_env(env: &WorkerEnv) -> Option<Self> {
        env.token
            .clone()
            .map(Self::Token)
            .or_else(|| env.device_key.clone().map(|k| Self::Key(Box::new(k))))
    }

    /// The client's credential for worker `id`.
    pub fn auth<'a>(&'a self, id: &'a WorkerId) -> WorkerAuth<'a> {
        match self {
            Self::Key(key) => WorkerAuth::Key { worker_id: id, key },
            Self::Token(token) => WorkerAuth::Token(token),
        }
    }
}

/// This host's worker, as the env file names it, with what acting as it needs.
#[derive(Debug)]
pub(crate) struct Worker {
    pub id: WorkerId,
    /// Never shown; only signs the client's requests (or, legacy, goes into its
    /// `Authorization` header).
    pub credential: Credential,
    pub env: WorkerEnv,
    pub client: OrchestratorClient,
}

impl Worker {
    /// How the client acts as this worker.
    pub fn auth(&self) -> WorkerAuth<'_> {
        self.credential.auth(&self.id)
    }

    /// Reads the env file; it must name the worker and hold its device key (or a legacy token).
    pub fn load(ctx: &Context, env_file: Option<&str>) -> Result<Self, Problem> {
        let path = ctx.env_path(env_file);
        let Some(env) = read_env(ctx, env_file)? else {
            return Err(Problem::new(
                ErrorCode::EnvIncomplete,
                format!("there is no worker env file at {}", path.display()),
            )
            .with_fix(
                "onboard first: write_env (public settings; it generates the device key), then \
                 register_worker",
            ));
        };
        let credential = Credential::from_env(&env);
        let missing: Vec<&str> = [
            (KEY_WORKER_ID, env.worker_id.is_none()),
            (KEY_DEVICE_KEY, credential.is_none()),
        ]
        .into_iter()
        .filter_map(|(key, missing)| missing.then_some(key))
        .collect();
        let (Some(id), Some(credential)) = (env.worker_id.clone(), credential) else {
            return Err(Problem::new(
                ErrorCode::EnvIncomplete,
                format!("{} lacks {}", path.display(), missing.join(", ")),
            )
            .with_fix("write it with write_env, then register_worker"));
        };
        let (client, _) = client(ctx, Some(&env))?;
        Ok(Self {
            id,
            credential,
            env,
            client,
        })
    }
}

/// The secrets this host holds in memory, for the guard's `HostSecrets::known`: the device
/// keys in every form an output could carry them ([`device_key_forms`]), a legacy token and
/// the evaluator key. Zeroized when dropped.
pub(crate) fn host_secrets(env: &WorkerEnv) -> Vec<Zeroizing<Vec<u8>>> {
    let mut known: Vec<Zeroizing<Vec<u8>>> = [&env.device_key, &env.device_key_next]
        .into_iter()
        .flatten()
        .flat_map(device_key_forms)
        .collect();
    if let Some(token) = &env.token {
        known.push(Zeroizing::new(token.expose_secret().as_bytes().to_vec()));
    }
    if let Some(key) = evaluator_key(Some(env)) {
        known.push(Zeroizing::new(key.expose_secret().as_bytes().to_vec()));
    }
    known
}

/// `runtime:<runtime>` and `model:<name>` for each model the env file announces.
pub(crate) fn capabilities(env: &WorkerEnv) -> Vec<String> {
    let mut caps: Vec<String> = env
        .runtime
        .map(|r| format!("runtime:{}", r.as_str()))
        .into_iter()
        .collect();
    let mut models = env.models.clone();
    if models.is_empty() && env.runtime == Some(Runtime::Ollama) {
        models.extend(env.ollama_model.clone());
    }
    caps.extend(models.into_iter().map(|m| format!("model:{m}")));
    caps.extend(env.labels.iter().map(|l| format!("label:{l}")));
    caps
}

/// The evaluator key: the env file's `BASIS_EVALUATOR_KEY`, else the process environment's.
pub(crate) fn evaluator_key(env: Option<&WorkerEnv>) -> Option<SecretString> {
    env.and_then(|e| e.evaluator_key.clone()).or_else(|| {
        std::env::var(KEY_EVALUATOR_KEY)
            .ok()
            .filter(|v| !v.is_empty())
            .map(SecretString::from)
    })
}

/// The credential this host reads a submission with, from its env file: the worker's (its
/// own submissions) or the evaluator key (any submission).
#[derive(Debug)]
pub(crate) enum Reader {
    Worker(WorkerId, Credential),
    Evaluator(SecretString),
}

impl Reader {
    /// The first this host has: the evaluator key first when `evaluator_first`
    /// (verify_output), else the worker's first (get_submission).
    pub fn from_env(env: Option<&WorkerEnv>, evaluator_first: bool) -> Option<Self> {
        let token = || {
            let env = env?;
            Some(Self::Worker(
                env.worker_id.clone()?,
                Credential::from_env(env)?,
            ))
        };
        let key = || evaluator_key(env).map(Self::Evaluator);
        if evaluator_first {
            key().or_else(token)
        } else {
            token().or_else(key)
        }
    }

    pub fn read_as(&self) -> ReadAs<'_> {
        match self {
            Self::Worker(id, credential) => ReadAs::Worker(credential.auth(id)),
            Self::Evaluator(key) => ReadAs::Key(key),
        }
    }
}

pub(crate) fn task_id(s: &str) -> Result<TaskId, Problem> {
    TaskId::parse(s.trim()).map_err(|e| {
        Problem::new(ErrorCode::InvalidArgument, e.to_string())
            .with_fix("use a task_id exactly as fetch_tasks lists it: task- followed by 32 hex")
    })
}

pub(crate) fn submission_id(s: &str) -> Result<SubmissionId, Problem> {
    SubmissionId::parse(s.trim()).map_err(|e| {
        Problem::new(ErrorCode::InvalidArgument, e.to_string())
            .with_fix("use the submission_id that submit_output returned: sub- followed by 32 hex")
    })
}

/// Unix time now, in milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The `Problem` for a worker action on a task it does not hold (checked locally).
pub(crate) fn not_held(task: &Task, worker: &WorkerId) -> Problem {
    let holder = match &task.claimed_by {
        Some(w) if w == worker => "this worker",
        Some(_) => "another worker",
        None => "no worker",
    };
    Problem::new(
        ErrorCode::NotClaimHolder,
        format!(
            "task {} is {} and held by {holder}; this worker ({worker}) must hold its claim",
            task.task_id, task.status
        ),
    )
    .with_fix("claim it first with claim_task (it must be open), then try again")
}
