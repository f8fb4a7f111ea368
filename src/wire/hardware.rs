//! `HardwareSummary`: the few hardware facts a worker shares when it registers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One GPU, as the worker's `check_hardware` saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GpuSummary {
    /// `nvidia`, `amd` or `apple`.
    pub vendor: String,
    /// Marketing name, e.g. `NVIDIA H100 80GB HBM3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram_total_mib: Option<u64>,
    /// CUDA compute capability (`9.0`) or AMD gfx target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<String>,
}

/// What the orchestrator learns about a worker's machine. Unknown facts are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HardwareSummary {
    #[serde(default)]
    pub gpus: Vec<GpuSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_threads: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_mib: Option<u64>,
    /// OS name and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// CPU architecture, e.g. `x86_64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}
