//! `Runtime`: what a worker serves jobs on: the GPU-free `echo` simulator, Ollama or vLLM.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown runtime; use one of: echo (simulator, no GPU needed), ollama, vllm")]
pub struct UnknownRuntime;

/// The inference runtime behind a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// Deterministic simulator: proves the whole path without a GPU; its work pays nothing.
    Echo,
    /// Ollama, through its OpenAI-compatible API.
    Ollama,
    /// vLLM's OpenAI-compatible server.
    Vllm,
}

impl Runtime {
    pub const ALL: [Self; 3] = [Self::Echo, Self::Ollama, Self::Vllm];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Ollama => "ollama",
            Self::Vllm => "vllm",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Runtime {
    type Err = UnknownRuntime;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownRuntime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for r in Runtime::ALL {
            assert_eq!(r.as_str().parse::<Runtime>(), Ok(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("cuda".parse::<Runtime>().is_err());
    }
}
