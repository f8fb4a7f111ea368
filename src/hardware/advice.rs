//! Advice: a pure function from what the probes found to a recommendation (which runtime, how
//! large a model fits) and problems with stable codes and fixes. No I/O here, so every rule is
//! a table test.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::exec::round1;
use super::report::{
    GpuInfo, GpuVendor, HardwareProblem, HardwareReport, ModelFit, Recommendation, Severity,
};
use crate::domain::Runtime;

mod problems;

/// Stable problem codes of `check_hardware`. Agents branch on these; never rename one, add new
/// ones at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HardwareProblemCode {
    /// No usable GPU: use the echo runtime to prove the path.
    NoGpu,
    /// NVML loaded but would not initialise (driver not loaded, version mismatch, permission).
    NvmlUnavailable,
    /// The NVIDIA driver is there but `libnvidia-ml.so.1` cannot be loaded.
    NvmlLibraryMissing,
    /// Docker is there but the NVIDIA Container Toolkit is not set up for it.
    ContainerToolkitMissing,
    /// The docker CLI is installed but its daemon does not answer.
    DockerDaemonDown,
    /// The docker daemon is running but this user may not use its socket.
    DockerPermissionDenied,
    /// Ollama is not answering at its URL.
    OllamaDown,
    /// Ollama answers but has no model pulled.
    OllamaNoModels,
    /// An expected model is not served by the recommended runtime.
    ModelNotPulled,
    /// vLLM / the OpenAI-compatible server is not answering properly at its URL.
    VllmDown,
    /// Little free disk in the state or model directory.
    LowDisk,
    /// The best GPU has little free memory.
    LowVram,
    /// MIG is on: a process must target one MIG device.
    MigEnabled,
    /// A probe timed out or crashed; its part of the report is incomplete.
    ProbeFailed,
}

impl HardwareProblemCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [Self] = &[
        Self::NoGpu,
        Self::NvmlUnavailable,
        Self::NvmlLibraryMissing,
        Self::ContainerToolkitMissing,
        Self::DockerDaemonDown,
        Self::DockerPermissionDenied,
        Self::OllamaDown,
        Self::OllamaNoModels,
        Self::ModelNotPulled,
        Self::VllmDown,
        Self::LowDisk,
        Self::LowVram,
        Self::MigEnabled,
        Self::ProbeFailed,
    ];

    /// The wire name, e.g. `NO_GPU`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoGpu => "NO_GPU",
            Self::NvmlUnavailable => "NVML_UNAVAILABLE",
            Self::NvmlLibraryMissing => "NVML_LIBRARY_MISSING",
            Self::ContainerToolkitMissing => "CONTAINER_TOOLKIT_MISSING",
            Self::DockerDaemonDown => "DOCKER_DAEMON_DOWN",
            Self::DockerPermissionDenied => "DOCKER_PERMISSION_DENIED",
            Self::OllamaDown => "OLLAMA_DOWN",
            Self::OllamaNoModels => "OLLAMA_NO_MODELS",
            Self::ModelNotPulled => "MODEL_NOT_PULLED",
            Self::VllmDown => "VLLM_DOWN",
            Self::LowDisk => "LOW_DISK",
            Self::LowVram => "LOW_VRAM",
            Self::MigEnabled => "MIG_ENABLED",
            Self::ProbeFailed => "PROBE_FAILED",
        }
    }
}

impl std::fmt::Display for HardwareProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Fixed reserve for the CUDA/ROCm context, activations and the runtime itself.
pub const RESERVED_MIB: u64 = 1024;
/// Share of what is left kept free for KV cache and fragmentation (20 %).
pub const HEADROOM_PCT: u64 = 20;
pub const BYTES_PER_PARAM_FP16: f64 = 2.0;
pub const BYTES_PER_PARAM_INT8: f64 = 1.0;
/// 4-bit weights plus block scales (`Q4_K_M` is about 4.8 bits per weight).
pub const BYTES_PER_PARAM_Q4: f64 = 0.6;
/// Below this much free VRAM on the best GPU, `LOW_VRAM`.
pub const LOW_VRAM_MIB: u64 = 4096;
/// Below this much free disk in the state dir, `LOW_DISK` (error under a tenth of it).
pub const LOW_STATE_DISK_MIB: u64 = 1024;
/// Below this much free disk in the model dir, `LOW_DISK`.
pub const LOW_MODEL_DISK_MIB: u64 = 20 * 1024;
/// Apple Silicon lets the GPU wire about three quarters of unified memory by default.
const APPLE_GPU_SHARE_PCT: u64 = 75;

/// Recommendation and problems for a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub recommendation: Recommendation,
    pub problems: Vec<HardwareProblem>,
}

/// Memory left for weights out of `free_mib`: less [`RESERVED_MIB`], less [`HEADROOM_PCT`].
pub fn usable_mib(free_mib: u64) -> u64 {
    free_mib.saturating_sub(RESERVED_MIB) * (100 - HEADROOM_PCT) / 100
}

/// Largest parameter counts (billions) whose weights fit in `usable_mib`.
pub fn model_fit(usable_mib: u64) -> ModelFit {
    #[allow(clippy::cast_precision_loss)] // MiB counts are far below 2^52
    let bytes = usable_mib as f64 * 1024.0 * 1024.0;
    let billions = |bytes_per_param: f64| round1(bytes / bytes_per_param / 1e9);
    ModelFit {
        fp16_params_b: billions(BYTES_PER_PARAM_FP16),
        int8_params_b: billions(BYTES_PER_PARAM_INT8),
        q4_params_b: billions(BYTES_PER_PARAM_Q4),
    }
}

/// Well-known Ollama tags (default `Q4_K_M`) by parameter count, smallest first.
const OLLAMA_MODELS: &[(&str, f64)] = &[
    ("qwen2.5:0.5b", 0.5),
    ("llama3.2:1b", 1.2),
    ("llama3.2:3b", 3.2),
    ("llama3.1:8b", 8.0),
    ("qwen2.5:14b", 14.8),
    ("qwen2.5:32b", 32.8),
    ("llama3.3:70b", 70.6),
];

/// Hugging Face models vLLM serves in bf16, smallest first.
const VLLM_MODELS: &[(&str, f64)] = &[
    ("Qwen/Qwen2.5-0.5B-Instruct", 0.5),
    ("Qwen/Qwen2.5-1.5B-Instruct", 1.5),
    ("Qwen/Qwen2.5-3B-Instruct", 3.1),
    ("Qwen/Qwen2.5-7B-Instruct", 7.6),
    ("Qwen/Qwen2.5-14B-Instruct", 14.8),
    ("Qwen/Qwen2.5-32B-Instruct", 32.8),
    ("Qwen/Qwen2.5-72B-Instruct", 72.7),
];

fn largest_fitting(table: &[(&str, f64)], capacity_b: f64) -> Option<String> {
    table
        .iter()
        .rev()
        .find(|(_, b)| *b <= capacity_b)
        .map(|(name, _)| (*name).to_owned())
}

/// Memory one process can use on `gpu`, and the MIG device to target when MIG is on.
pub(crate) fn gpu_capacity(gpu: &GpuInfo) -> (u64, Option<String>) {
    if let Some(mig) = gpu.mig.as_ref().filter(|m| m.enabled) {
        return mig
            .instances
            .iter()
            .map(|i| {
                let mem = i
                    .memory_free_mib
                    .or(i.memory_mib)
                    .or_else(|| i.name.as_deref().and_then(profile_mib))
                    .unwrap_or(0);
                (mem, i.uuid.clone())
            })
            .max_by_key(|(mem, _)| *mem)
            .unwrap_or((0, None));
    }
    let mem = gpu.vram_free_mib.or(gpu.vram_total_mib).unwrap_or(0);
    if gpu.unified_memory {
        (mem * APPLE_GPU_SHARE_PCT / 100, None)
    } else {
        (mem, None)
    }
}

/// Memory of a MIG profile from its name (`3g.40gb` → 40 GB in MiB, rounded down).
pub fn profile_mib(name: &str) -> Option<u64> {
    let gb = name.split('.').find_map(|p| {
        p.to_ascii_lowercase()
            .strip_suffix("gb")?
            .parse::<u64>()
            .ok()
    })?;
    Some(gb * 1_000_000_000 / (1024 * 1024))
}

/// Everything the advice needs from a report, computed once.
struct Context<'a> {
    report: &'a HardwareReport,
    /// Index into `report.gpus` of the GPU with the most usable memory.
    best: Option<usize>,
    capacity_mib: u64,
    mig_uuid: Option<String>,
}

impl<'a> Context<'a> {
    fn new(report: &'a HardwareReport) -> Self {
        let best = report
            .gpus
            .iter()
            .enumerate()
            .map(|(i, g)| (i, gpu_capacity(g)))
            .max_by_key(|(_, (mem, _))| *mem);
        let (best, capacity_mib, mig_uuid) = match best {
            Some((i, (mem, uuid))) => (Some(i), mem, uuid),
            None => (None, 0, None),
        };
        Self {
            report,
            best,
            capacity_mib,
            mig_uuid,
        }
    }

    fn best_gpu(&self) -> Option<&GpuInfo> {
        self.best.map(|i| &self.report.gpus[i])
    }
}

/// Recommendation and problems for `report`, given the models the caller expects to serve.
pub fn advise(report: &HardwareReport, expected_models: &[String]) -> Advice {
    let ctx = Context::new(report);
    let recommendation = recommend(&ctx, expected_models);
    let mut problems = problems::find(
        report,
        &recommendation,
        expected_models,
        ctx.best_gpu(),
        ctx.capacity_mib,
    );
    problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
    Advice {
        recommendation,
        problems,
    }
}

fn serves_all(models: &[super::report::ModelEntry], expected: &[String]) -> bool {
    expected.iter().all(|e| problems::has_model(models, e))
}

fn recommend(ctx: &Context<'_>, expected: &[String]) -> Recommendation {
    let report = ctx.report;
    let Some(gpu) = ctx.best_gpu() else {
        return Recommendation {
            runtime: Runtime::Echo,
            reason: "no GPU found: the echo runtime proves the whole path without one (its work earns nothing)".to_owned(),
            gpu_index: None,
            mig_uuid: None,
            usable_vram_mib: None,
            max_model: None,
            max_model_all_gpus: None,
            suggested_model: None,
        };
    };
    let (ollama, vllm) = (&report.runtimes.ollama, &report.runtimes.vllm);
    let apple = gpu.vendor == GpuVendor::Apple;
    let (runtime, reason) =
        if vllm.is_up() && !apple && (!ollama.is_up() || serves_all(&vllm.models, expected)) {
            (
                Runtime::Vllm,
                format!("vLLM is up at {} with a GPU present", vllm.url),
            )
        } else if ollama.is_up() {
            (
                Runtime::Ollama,
                format!("Ollama is up at {} with a GPU present", ollama.url),
            )
        } else {
            (
                Runtime::Ollama,
                format!(
                    "GPU present but no runtime answers: start Ollama at {} (simplest), or vLLM",
                    ollama.url
                ),
            )
        };
    let usable = usable_mib(ctx.capacity_mib);
    let max_model = model_fit(usable);
    let same_vendor: Vec<&GpuInfo> = report
        .gpus
        .iter()
        .filter(|g| g.vendor == gpu.vendor && !g.mig.as_ref().is_some_and(|m| m.enabled))
        .collect();
    let max_model_all_gpus = (same_vendor.len() > 1).then(|| {
        let total: u64 = same_vendor
            .iter()
            .map(|g| usable_mib(gpu_capacity(g).0))
            .sum();
        model_fit(total)
    });
    let suggested_model = match runtime {
        Runtime::Vllm => largest_fitting(
            VLLM_MODELS,
            max_model_all_gpus.unwrap_or(max_model).fp16_params_b,
        ),
        Runtime::Ollama => largest_fitting(OLLAMA_MODELS, max_model.q4_params_b),
        Runtime::Echo => None,
    };
    Recommendation {
        runtime,
        reason,
        gpu_index: Some(gpu.index),
        mig_uuid: ctx.mig_uuid.clone(),
        usable_vram_mib: Some(usable),
        max_model: Some(max_model),
        max_model_all_gpus,
        suggested_model,
    }
}

/// A problem.
pub(crate) fn problem(
    code: HardwareProblemCode,
    severity: Severity,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> HardwareProblem {
    HardwareProblem {
        code,
        severity,
        message: message.into(),
        fix: fix.into(),
    }
}

#[cfg(test)]
mod tests;
