//! `WorkerConfig`: everything the daemon needs, resolved once from `worker.env`, flags and
//! the process environment, and validated: holding one means the worker can start.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::backoff::BackoffPolicy;
use super::error::WorkerError;
use crate::config::{
    KEY_DEVICE_KEY, KEY_MODELS, KEY_ORCHESTRATOR_URL, KEY_RUNTIME, KEY_WORKER_ID, WorkerEnv,
};
use crate::domain::{DeviceKey, Runtime, WorkerId, WorkerToken};
use crate::runtime::{
    DEFAULT_ECHO_DELAY, DEFAULT_IDLE_TIMEOUT, ECHO_DELAY_ENV, MAX_ECHO_DELAY, RuntimeSpec,
};
use crate::wire::WORKER_CONNECT;

pub use crate::config::MAX_CAPACITY;

/// Ollama's own setting for requests it runs at once per model.
pub const OLLAMA_NUM_PARALLEL: &str = "OLLAMA_NUM_PARALLEL";

/// Jobs a worker on `runtime` runs at once unless `BASIS_WORKER_CAPACITY` (or `--capacity`)
/// says otherwise:
///
/// - vLLM: 32. It batches every running sequence into each forward pass (continuous
///   batching; its own `max_num_seqs` defaults to 256), so more requests at once cost little
///   latency each; 32 keeps it busy without queueing deep inside it.
/// - Ollama: `OLLAMA_NUM_PARALLEL` when set (what Ollama itself will run at once), else 4,
///   Ollama's default when memory allows. More would only wait inside Ollama.
/// - echo: 16. Simulated work costs nothing but a timer.
pub fn default_capacity(runtime: Runtime, ollama_num_parallel: Option<u32>) -> u32 {
    match runtime {
        Runtime::Vllm => 32,
        Runtime::Ollama => ollama_num_parallel.unwrap_or(4).clamp(1, MAX_CAPACITY),
        Runtime::Echo => 16,
    }
}
/// How long a draining worker waits for its jobs unless `--drain-timeout-s` says otherwise.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the runtime's health is checked.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(10);
/// How long the worker waits for `welcome` after `hello`.
pub const DEFAULT_WELCOME_TIMEOUT: Duration = Duration::from_secs(10);

/// What flags (or a caller) choose; the rest comes from the env file.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--capacity`: wins over the env file's `BASIS_WORKER_CAPACITY` and the runtime's default.
    pub capacity: Option<u32>,
    pub drain_timeout: Duration,
    /// Where `worker-status.json` goes (`Dirs::worker_status_json`).
    pub status_path: PathBuf,
    /// Echo's per-token delay; `None`: `BASIS_ECHO_DELAY_MS` from the process environment,
    /// then from the env file, then 5 ms.
    pub echo_delay: Option<Duration>,
    pub health_interval: Duration,
    pub welcome_timeout: Duration,
    pub backoff: BackoffPolicy,
    /// Ollama/vLLM: the longest wait for a response or the next streamed piece.
    pub idle_timeout: Duration,
}

impl Options {
    /// The defaults, writing the status to `status_path`.
    pub fn new(status_path: PathBuf) -> Self {
        Self {
            capacity: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            status_path,
            echo_delay: None,
            health_interval: DEFAULT_HEALTH_INTERVAL,
            welcome_timeout: DEFAULT_WELCOME_TIMEOUT,
            backoff: BackoffPolicy::default(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// How the worker proves itself on the channel (docs/PROTOCOL.md, "Connecting"). Debug
/// redacts both.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The device key (`BASIS_DEVICE_KEY`): the worker signs the orchestrator's challenge;
    /// the key never leaves the host.
    Key(Box<DeviceKey>),
    /// A legacy token (`BASIS_WORKER_TOKEN`, in an env file without a device key), sent as the
    /// upgrade's bearer header.
    Token(WorkerToken),
}

/// A complete, validated worker configuration. Debug redacts the credential.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub worker_id: WorkerId,
    pub runtime: Runtime,
    /// The models announced in `hello`.
    pub models: Vec<String>,
    pub orchestrator_url: Url,
    /// `ws://` or `wss://` … `/api/workers/connect`.
    pub connect_url: Url,
    /// The same on the fallback replicas (`BASIS_ORCHESTRATOR_FALLBACK_URLS`), in order.
    pub fallback_connect_urls: Vec<Url>,
    pub credential: Credential,
    pub capacity: u32,
    pub drain_timeout: Duration,
    pub status_path: PathBuf,
    pub health_interval: Duration,
    pub welcome_timeout: Duration,
    pub backoff: BackoffPolicy,
    pub runtime_spec: RuntimeSpec,
}

impl WorkerConfig {
    /// The channel URL to try on attempt `n` (0 = the first): the primary, then each fallback
    /// in turn, round and round.
    pub fn connect_url_for(&self, attempt: usize) -> &Url {
        let all = 1 + self.fallback_connect_urls.len();
        match attempt % all {
            0 => &self.connect_url,
            i => &self.fallback_connect_urls[i - 1],
        }
    }

    /// Validates `env` and `options`; `lookup` reads the process environment.
    pub fn from_env(
        env: &WorkerEnv,
        options: Options,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, WorkerError> {
        let mut models = env.models.clone();
        if models.is_empty() && env.runtime == Some(Runtime::Ollama) {
            models.extend(env.ollama_model.clone());
        }
        let mut missing = Vec::new();
        if env.worker_id.is_none() {
            missing.push(KEY_WORKER_ID);
        }
        if env.runtime.is_none() {
            missing.push(KEY_RUNTIME);
        }
        if models.is_empty() {
            missing.push(KEY_MODELS);
        }
        if env.orchestrator_url.is_none() {
            missing.push(KEY_ORCHESTRATOR_URL);
        }
        // A legacy token while the file still holds one (registration retires it once the
        // orchestrator has moved the worker to its key: until then the token is what the
        // orchestrator knows, even after write_env added a key); the device key otherwise.
        let credential = env
            .token
            .clone()
            .map(Credential::Token)
            .or_else(|| env.device_key.clone().map(|k| Credential::Key(Box::new(k))));
        if credential.is_none() {
            missing.push(KEY_DEVICE_KEY);
        }
        let (Some(worker_id), Some(runtime), Some(orchestrator_url), Some(credential), true) = (
            env.worker_id.clone(),
            env.runtime,
            env.orchestrator_url.clone(),
            credential,
            missing.is_empty(),
        ) else {
            return Err(WorkerError::Incomplete { missing });
        };
        let capacity = effective_capacity(env, runtime, options.capacity, &lookup);
        if !(1..=MAX_CAPACITY).contains(&capacity) {
            return Err(WorkerError::Invalid {
                key: "--capacity",
                reason: format!("must be between 1 and {MAX_CAPACITY}"),
            });
        }
        let echo_delay = match options.echo_delay {
            Some(d) => d,
            None => echo_delay(env, &lookup)?,
        };
        let base_url = match runtime {
            Runtime::Vllm => env.effective_vllm_url(),
            Runtime::Echo | Runtime::Ollama => env.effective_ollama_url(),
        };
        Ok(Self {
            connect_url: connect_url(&orchestrator_url)?,
            fallback_connect_urls: env
                .fallback_urls
                .iter()
                .map(connect_url)
                .collect::<Result<_, _>>()?,
            runtime_spec: RuntimeSpec {
                runtime,
                models: models.clone(),
                base_url,
                echo_delay,
                idle_timeout: options.idle_timeout,
            },
            worker_id,
            runtime,
            models,
            orchestrator_url,
            credential,
            capacity,
            drain_timeout: options.drain_timeout,
            status_path: options.status_path,
            health_interval: options.health_interval,
            welcome_timeout: options.welcome_timeout,
            backoff: options.backoff,
        })
    }
}

/// The capacity a worker with `env` on `runtime` runs at: `flag` (`--capacity`), else the env
/// file's `BASIS_WORKER_CAPACITY`, else [`default_capacity`]; `lookup` reads the process
/// environment (for `OLLAMA_NUM_PARALLEL`).
pub fn effective_capacity(
    env: &WorkerEnv,
    runtime: Runtime,
    flag: Option<u32>,
    lookup: &impl Fn(&str) -> Option<String>,
) -> u32 {
    match (flag, env.capacity) {
        (Some(flag), _) => flag,
        (None, Some(file)) => file,
        (None, None) => default_capacity(runtime, ollama_num_parallel(env, lookup)),
    }
}

/// `OLLAMA_NUM_PARALLEL` from the process environment, else from the env file (a number from
/// 1 up; anything else is ignored, as Ollama would).
fn ollama_num_parallel(env: &WorkerEnv, lookup: &impl Fn(&str) -> Option<String>) -> Option<u32> {
    lookup(OLLAMA_NUM_PARALLEL)
        .or_else(|| {
            env.extra
                .iter()
                .find(|(k, _)| k == OLLAMA_NUM_PARALLEL)
                .map(|(_, v)| v.clone())
        })
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n >= 1)
}

/// `BASIS_ECHO_DELAY_MS` from the process environment, else from the env file, else 5 ms.
fn echo_delay(
    env: &WorkerEnv,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Duration, WorkerError> {
    let text = lookup(ECHO_DELAY_ENV)
        .filter(|v| !v.is_empty())
        .or_else(|| {
            env.extra
                .iter()
                .find(|(k, _)| k == ECHO_DELAY_ENV)
                .map(|(_, v)| v.clone())
        });
    let Some(text) = text else {
        return Ok(DEFAULT_ECHO_DELAY);
    };
    let ms: u64 = text.trim().parse().map_err(|_| WorkerError::Invalid {
        key: ECHO_DELAY_ENV,
        reason: "must be a whole number of milliseconds".into(),
    })?;
    let delay = Duration::from_millis(ms);
    if delay > MAX_ECHO_DELAY {
        return Err(WorkerError::Invalid {
            key: ECHO_DELAY_ENV,
            reason: format!("must be at most {} ms", MAX_ECHO_DELAY.as_millis()),
        });
    }
    Ok(delay)
}

/// The WebSocket URL of the worker channel under `orchestrator` (which may have a path
/// prefix): `http` → `ws`, `https` → `wss`.
pub fn connect_url(orchestrator: &Url) -> Result<Url, WorkerError> {
    let scheme = match orchestrator.scheme() {
        "http" => "ws",
        "https" => "wss",
        _ => {
            return Err(WorkerError::Invalid {
                key: KEY_ORCHESTRATOR_URL,
                reason: "must be an http:// or https:// URL".into(),
            });
        }
    };
    let mut url = orchestrator.clone();
    let path = format!("{}{WORKER_CONNECT}", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url.set_scheme(scheme).map_err(|()| WorkerError::Invalid {
        key: KEY_ORCHESTRATOR_URL,
        reason: "cannot be turned into a WebSocket URL".into(),
    })?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> WorkerEnv {
        WorkerEnv::parse(
            "BASIS_WORKER_ID=gpu-1\nBASIS_WORKER_RUNTIME=echo\nBASIS_WORKER_MODELS=a,b\n\
             BASIS_ORCHESTRATOR_URL=https://orch.example/base/\nBASIS_ECHO_DELAY_MS=7\n\
             BASIS_DEVICE_KEY=",
        )
        .map(|mut env| {
            env.ensure_device_key();
            env
        })
        .unwrap()
    }

    #[test]
    fn resolves_a_complete_env() {
        let c = WorkerConfig::from_env(&complete(), Options::new("/s".into()), |_| None).unwrap();
        assert_eq!(
            c.connect_url.as_str(),
            "wss://orch.example/base/api/workers/connect"
        );
        assert_eq!(c.models, ["a", "b"]);
        assert_eq!(
            c.runtime_spec.echo_delay,
            Duration::from_millis(7),
            "env-file key"
        );
        let from_process = |k: &str| (k == ECHO_DELAY_ENV).then(|| "0".to_owned());
        let c =
            WorkerConfig::from_env(&complete(), Options::new("/s".into()), from_process).unwrap();
        assert_eq!(
            c.runtime_spec.echo_delay,
            Duration::ZERO,
            "process env wins"
        );
        let Credential::Key(key) = &c.credential else {
            panic!("the device key is the credential")
        };
        assert!(!format!("{c:?}").contains(&key.expose_secret()[9..]));
    }

    /// A legacy env file connects with its token until registration retires it, even once
    /// write_env added a device key; a file with only a key connects with it.
    #[test]
    fn a_legacy_token_is_used_until_registration_retires_it() {
        let mut env = complete();
        let key = env.device_key.take().unwrap();
        env.ensure_token();
        let c = WorkerConfig::from_env(&env, Options::new("/s".into()), |_| None).unwrap();
        assert!(matches!(c.credential, Credential::Token(_)));
        env.device_key = Some(key);
        let c = WorkerConfig::from_env(&env, Options::new("/s".into()), |_| None).unwrap();
        assert!(matches!(c.credential, Credential::Token(_)));
        env.token = None;
        let c = WorkerConfig::from_env(&env, Options::new("/s".into()), |_| None).unwrap();
        assert!(matches!(c.credential, Credential::Key(_)));
    }

    #[test]
    fn incomplete_and_invalid_envs_are_refused() {
        let err =
            WorkerConfig::from_env(&WorkerEnv::default(), Options::new("/s".into()), |_| None)
                .unwrap_err();
        let WorkerError::Incomplete { missing } = err else {
            panic!("{err:?}")
        };
        assert_eq!(missing.len(), 5);
        let mut opts = Options::new("/s".into());
        opts.capacity = Some(0);
        assert!(WorkerConfig::from_env(&complete(), opts, |_| None).is_err());
        let bad = |k: &str| (k == ECHO_DELAY_ENV).then(|| "soon".to_owned());
        assert!(WorkerConfig::from_env(&complete(), Options::new("/s".into()), bad).is_err());
    }

    #[test]
    fn capacity_comes_from_the_flag_then_the_env_file_then_the_runtime() {
        let cap = |env: &WorkerEnv, flag: Option<u32>, lookup: &dyn Fn(&str) -> Option<String>| {
            let mut opts = Options::new("/s".into());
            opts.capacity = flag;
            WorkerConfig::from_env(env, opts, lookup).unwrap().capacity
        };
        let none = |_: &str| None;
        let mut env = complete();
        env.runtime = Some(Runtime::Echo);
        assert_eq!(cap(&env, None, &none), 16);
        env.runtime = Some(Runtime::Vllm);
        assert_eq!(cap(&env, None, &none), 32);
        env.runtime = Some(Runtime::Ollama);
        assert_eq!(cap(&env, None, &none), 4);
        env.extra.push((OLLAMA_NUM_PARALLEL.into(), "2".into()));
        assert_eq!(
            cap(&env, None, &none),
            2,
            "the env file's OLLAMA_NUM_PARALLEL"
        );
        let eight = |k: &str| (k == OLLAMA_NUM_PARALLEL).then(|| "8".to_owned());
        assert_eq!(cap(&env, None, &eight), 8, "the process environment wins");
        env.capacity = Some(6);
        assert_eq!(
            cap(&env, None, &eight),
            6,
            "BASIS_WORKER_CAPACITY wins over defaults"
        );
        assert_eq!(
            cap(&env, Some(3), &eight),
            3,
            "--capacity wins over the file"
        );
    }

    #[test]
    fn connect_urls() {
        let u = |s: &str| connect_url(&Url::parse(s).unwrap()).map(|u| u.to_string());
        assert_eq!(
            u("http://127.0.0.1:8787").unwrap(),
            "ws://127.0.0.1:8787/api/workers/connect"
        );
        assert_eq!(
            u("https://h/p?q=1").unwrap(),
            "wss://h/p/api/workers/connect"
        );
        assert!(u("ftp://h").is_err());
    }
}
