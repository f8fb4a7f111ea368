//! `check_hardware`: what this machine can contribute — GPUs, drivers, containers and
//! runtimes — with advice an agent can act on. Read-only; never fails as a whole.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::Context;
use crate::config::WorkerEnv;
use crate::domain::{ErrorCode, Problem};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::hardware::{self, CheckOptions, HardwareReport};

/// Where to look. All optional: runtime URLs and expected models come from the env file when
/// it exists, else the defaults.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The env file to read runtime URLs and models from (default: worker.env in the config dir).
    #[serde(default)]
    pub env_file: Option<String>,
    /// Budget of each probe in milliseconds (100-1900, default 1500); probes run concurrently.
    #[serde(default)]
    pub probe_timeout_ms: Option<u64>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.env_file.guard("env_file")
    }
}

/// Runs every probe concurrently and returns the report.
pub async fn run(ctx: &Context, input: &Input) -> Result<HardwareReport, Problem> {
    input.check_secrets()?;
    let mut opts = CheckOptions::new(ctx.dirs().state_dir.clone());
    if let Some(ms) = input.probe_timeout_ms {
        if !(100..=1900).contains(&ms) {
            return Err(Problem::new(
                ErrorCode::InvalidArgument,
                "probe_timeout_ms must be between 100 and 1900",
            )
            .with_fix("omit it to use the 1500 ms default"));
        }
        opts.probe_timeout = Duration::from_millis(ms);
    }
    let path = ctx.env_path(input.env_file.as_deref());
    // A missing or unreadable env file only means defaults: the check must still answer.
    if let Ok(Some(env)) = WorkerEnv::read_optional(&path) {
        opts.ollama_url = env.effective_ollama_url();
        opts.vllm_url = env.effective_vllm_url();
        opts.expected_models.clone_from(&env.models);
    }
    Ok(hardware::check(&opts).await)
}
