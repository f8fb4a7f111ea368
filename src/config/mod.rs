//! Files on the worker's host (docs/FILES.md): directories, `basis.toml` settings and the 0600
//! `worker.env`.
//!
//! - [`Dirs`]: the config and state dirs (`BASIS_HOME`, XDG, `HOME`).
//! - [`Settings`]: `basis.toml`, with precedence flag > env > file > defaults.
//! - [`WorkerEnv`]: `worker.env`, read and written through [`AllowedDirs`] and [`atomic`],
//!   under the cross-process [`EnvLock`].

mod allowed;
pub mod atomic;
mod dotenv;
mod env_file;
mod env_io;
mod env_lock;
mod error;
mod lifeline;
mod origin;
mod paths;
mod settings;

#[cfg(test)]
mod env_file_tests;
#[cfg(test)]
mod env_io_tests;
#[cfg(test)]
mod settings_tests;

pub use allowed::AllowedDirs;
pub use env_file::{
    DEFAULT_OLLAMA_URL, DEFAULT_VLLM_URL, KEY_CAPACITY, KEY_DEVICE_KEY, KEY_DEVICE_KEY_NEXT,
    KEY_EVALUATOR_KEY, KEY_MODELS, KEY_MULTI_TASK, KEY_OLLAMA_MODEL, KEY_OLLAMA_URL,
    KEY_ORCHESTRATOR_FALLBACK_URLS, KEY_ORCHESTRATOR_URL, KEY_RUNTIME, KEY_TOKEN, KEY_VLLM_URL,
    KEY_WALLET, KEY_WORKER_ID, KNOWN_KEYS, MAX_CAPACITY, WorkerEnv, secret_fingerprint,
};
pub use env_io::{ENV_FILE_MODE, EnvTarget, WriteOutcome, env_target};
pub use env_lock::{ENV_LOCK_WAIT, EnvLock, lock_path};
pub use error::{ConfigError, EnvFileError};
pub use lifeline::{LIFELINE_ENV, LIFELINE_STDIN};
pub use origin::Origin;
pub use paths::{
    BASIS_HOME, Dirs, ENV_FILE_NAME, SETTINGS_FILE_NAME, dir_var, home_dir, user_config_dir,
};
pub use settings::{
    DEFAULT_MCP_HTTP_BIND, DEFAULT_ORCHESTRATOR_URL, ENV_MCP_HTTP_BIND, ENV_MCP_READ_ONLY,
    ENV_ORCHESTRATOR_URL, ENV_STATE_DIR, McpSettings, Origins, Overrides, Settings, parse_http_url,
};
