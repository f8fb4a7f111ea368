//! `HardwareReport`: what `check_hardware` / `basis check --json` returns. It is the MCP tool's
//! output schema, so the top level stays a plain object; unknown values are `null`, never a
//! guess. Sizes are integer MiB; the few floats (power, parameter counts) are rounded.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::Runtime;

/// Everything `check_hardware` found, with advice an agent can act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HardwareReport {
    /// The machine: OS, CPU, memory, disk, container / WSL.
    pub host: HostInfo,
    /// Every GPU found, NVIDIA first (by index), then AMD, then Apple.
    pub gpus: Vec<GpuInfo>,
    /// Which source answered for each vendor, and why the others failed.
    pub sources: GpuSources,
    /// Docker and the NVIDIA container toolkit.
    pub containers: ContainerInfo,
    /// Inference runtimes reachable at the configured URLs.
    pub runtimes: RuntimesInfo,
    /// What to run on this machine.
    pub recommendation: Recommendation,
    /// Problems found, each with a stable code and a fix.
    pub problems: Vec<HardwareProblem>,
    /// Probes that failed as a whole (timed out or crashed); the report is still complete.
    pub probe_errors: Vec<ProbeError>,
    /// Wall time each probe took, in milliseconds.
    pub timings_ms: ProbeTimings,
    /// Wall time of the whole check, in milliseconds.
    pub total_ms: u64,
}

/// The host machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostInfo {
    /// OS name and version, e.g. `Linux (Ubuntu 22.04)`.
    pub os: Option<String>,
    /// Kernel version.
    pub kernel: Option<String>,
    /// CPU architecture, e.g. `x86_64`, `aarch64`.
    pub arch: String,
    /// CPU model (brand string) of the first CPU.
    pub cpu_model: Option<String>,
    /// Logical CPUs (hardware threads).
    pub cpu_threads: Option<u32>,
    /// Physical cores.
    pub cpu_cores: Option<u32>,
    pub memory_total_mib: Option<u64>,
    pub memory_available_mib: Option<u64>,
    /// Free space where the state dir lives.
    pub state_dir: DiskSpace,
    /// Free space where models are stored, when a model dir was given.
    pub model_dir: Option<DiskSpace>,
    /// Whether this process runs inside a container.
    pub in_container: bool,
    /// What gave the container away: `docker`, `podman`, `kubernetes`, `containerd`, `lxc`.
    pub container_hint: Option<String>,
    /// Whether this is Windows Subsystem for Linux.
    pub wsl: bool,
}

/// Free space on the filesystem that holds a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DiskSpace {
    /// The directory asked about (it need not exist yet).
    pub path: String,
    /// Mount point of the filesystem holding it.
    pub mount_point: Option<String>,
    pub free_mib: Option<u64>,
    pub total_mib: Option<u64>,
    /// Why free space is unknown, when it is.
    pub note: Option<String>,
}

/// GPU maker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GpuVendor {
    Nvidia,
    Amd,
    Apple,
}

/// Where a GPU's data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GpuSource {
    Nvml,
    NvidiaSmi,
    Sysfs,
    RocmSmi,
    Sysctl,
}

/// One GPU. Every field the source could not give is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GpuInfo {
    pub vendor: GpuVendor,
    /// Index as the vendor's runtime numbers it (`CUDA_VISIBLE_DEVICES`, `HIP_VISIBLE_DEVICES`).
    pub index: u32,
    pub name: Option<String>,
    /// NVIDIA `GPU-…` UUID, AMD unique id.
    pub uuid: Option<String>,
    pub vram_total_mib: Option<u64>,
    pub vram_free_mib: Option<u64>,
    /// True for Apple Silicon: `vram_total_mib` is the unified memory shared with the CPU.
    pub unified_memory: bool,
    pub driver_version: Option<String>,
    /// Highest CUDA version the driver supports, e.g. `12.4` (NVIDIA only).
    pub cuda_driver_version: Option<String>,
    /// CUDA compute capability (`8.0`, `9.0`) for NVIDIA; the gfx target (`gfx942`) for AMD.
    pub compute_capability: Option<String>,
    pub utilization_pct: Option<u32>,
    pub temperature_c: Option<u32>,
    /// Power draw in watts, rounded to 0.1 W.
    pub power_w: Option<f64>,
    pub persistence_mode: Option<bool>,
    /// MIG state; `null` where MIG is not supported.
    pub mig: Option<MigInfo>,
    /// PCI bus id, e.g. `00000000:07:00.0`.
    pub pci_bus_id: Option<String>,
    pub source: GpuSource,
}

impl GpuInfo {
    /// A GPU with nothing known but who made it, its index and where that came from.
    pub fn new(vendor: GpuVendor, index: u32, source: GpuSource) -> Self {
        Self {
            vendor,
            index,
            name: None,
            uuid: None,
            vram_total_mib: None,
            vram_free_mib: None,
            unified_memory: false,
            driver_version: None,
            cuda_driver_version: None,
            compute_capability: None,
            utilization_pct: None,
            temperature_c: None,
            power_w: None,
            persistence_mode: None,
            mig: None,
            pci_bus_id: None,
            source,
        }
    }
}

/// Multi-Instance GPU state of one NVIDIA GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MigInfo {
    /// MIG mode is on now.
    pub enabled: bool,
    /// MIG mode after the next GPU reset, when known.
    pub pending_enabled: Option<bool>,
    /// MIG devices (GPU instance + compute instance) a process can target.
    pub instances: Vec<MigInstance>,
}

/// One MIG device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MigInstance {
    /// MIG device index on its parent GPU.
    pub id: u32,
    /// `MIG-…` UUID: use it as `CUDA_VISIBLE_DEVICES=MIG-…`.
    pub uuid: Option<String>,
    /// Profile or device name, e.g. `3g.40gb`.
    pub name: Option<String>,
    pub memory_mib: Option<u64>,
    pub memory_free_mib: Option<u64>,
}

/// Which source answered for NVIDIA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NvidiaAnswer {
    Nvml,
    NvidiaSmi,
    None,
}

/// How one attempt at a source went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Answered.
    Ok,
    /// The library or program is not installed (or not where it was looked for).
    NotFound,
    /// Present, but it failed; `detail` says how.
    Failed,
    /// No answer within the probe budget.
    Timeout,
    /// Not tried (not needed, or not applicable on this OS).
    Skipped,
}

/// One attempt at a GPU data source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attempt {
    pub outcome: AttemptOutcome,
    /// What was found (library path, GPU count) or why it failed.
    pub detail: Option<String>,
    pub ms: u64,
}

impl Attempt {
    pub fn new(outcome: AttemptOutcome, detail: impl Into<String>, ms: u64) -> Self {
        Self {
            outcome,
            detail: Some(detail.into()),
            ms,
        }
    }

    /// Not tried, for the given reason.
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self::new(AttemptOutcome::Skipped, reason, 0)
    }

    pub fn is_ok(&self) -> bool {
        self.outcome == AttemptOutcome::Ok
    }
}

/// Every GPU data source tried, in order of preference per vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GpuSources {
    /// Which source the NVIDIA GPUs in `gpus` came from.
    pub nvidia: NvidiaAnswer,
    /// NVML (`libnvidia-ml.so.1`), loaded at run time.
    pub nvml: Attempt,
    /// `nvidia-smi`, tried when NVML did not answer.
    pub nvidia_smi: Attempt,
    /// NVIDIA kernel driver version from `/proc/driver/nvidia/version`, when loaded.
    pub nvidia_kernel_driver: Option<String>,
    /// AMD sysfs (`/sys/class/kfd`, `/sys/class/drm`).
    pub amd_sysfs: Attempt,
    /// `rocm-smi`, for product names.
    pub rocm_smi: Attempt,
    /// Apple Silicon via `sysctl`.
    pub apple: Attempt,
}

/// State of the Docker daemon as the CLI sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DaemonState {
    /// No docker CLI, so not asked.
    NotInstalled,
    Reachable,
    Unreachable,
    /// The socket exists but this user may not use it.
    PermissionDenied,
    Timeout,
}

/// Docker and the NVIDIA container toolkit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContainerInfo {
    /// Path of the `docker` CLI, when on PATH.
    pub docker_cli: Option<String>,
    pub docker_daemon: DaemonState,
    /// Why the daemon is not reachable, when it is not.
    pub docker_detail: Option<String>,
    /// Runtimes registered with the daemon (`docker info` `.Runtimes`).
    pub docker_runtimes: Vec<String>,
    /// Whether the `nvidia` runtime is registered; `null` when the daemon could not be asked.
    pub nvidia_runtime: Option<bool>,
    /// Path of `nvidia-ctk` (NVIDIA Container Toolkit), when on PATH.
    pub nvidia_ctk: Option<String>,
    /// Path of `nvidia-container-runtime-hook` (what `docker run --gpus` uses), when on PATH.
    pub nvidia_container_runtime_hook: Option<String>,
}

/// Reachability of one runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeState {
    /// Answered with the expected JSON.
    Up,
    /// Nothing listening (connection refused / unreachable).
    Down,
    /// Connected (or tried to) but no answer within the probe timeout.
    Timeout,
    /// Answered with a non-2xx HTTP status.
    BadStatus,
    /// Answered 2xx with a body that is not the expected JSON.
    Malformed,
    /// Any other failure (bad URL, TLS, …); `detail` says which.
    Error,
}

/// One model a runtime serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ModelEntry {
    /// Name as the runtime knows it (`llama3.2:latest`, `meta-llama/Llama-3.1-8B-Instruct`).
    pub name: String,
    /// Size on disk (Ollama).
    pub size_mib: Option<u64>,
    /// Parameter count as the runtime states it, e.g. `8.0B` (Ollama).
    pub parameter_size: Option<String>,
    /// Quantisation, e.g. `Q4_K_M` (Ollama).
    pub quantization: Option<String>,
    /// Context length (vLLM `max_model_len`).
    pub max_model_len: Option<u64>,
}

/// What one runtime URL answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RuntimeStatus {
    /// Base URL probed.
    pub url: String,
    pub state: RuntimeState,
    /// Server version, when it says.
    pub version: Option<String>,
    pub models: Vec<ModelEntry>,
    /// HTTP status of the failing request, for `bad_status`.
    pub http_status: Option<u16>,
    /// Why it is not `up`.
    pub detail: Option<String>,
    pub ms: u64,
}

impl RuntimeStatus {
    pub fn is_up(&self) -> bool {
        self.state == RuntimeState::Up
    }
}

/// The runtimes probed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RuntimesInfo {
    /// Ollama (`/api/version`, `/api/tags`).
    pub ollama: RuntimeStatus,
    /// vLLM or any OpenAI-compatible server (`/v1/models`).
    pub vllm: RuntimeStatus,
}

/// Largest model (billions of parameters, weights only) that fits, per precision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelFit {
    /// fp16 / bf16: 2 bytes per parameter.
    pub fp16_params_b: f64,
    /// int8 / fp8: 1 byte per parameter.
    pub int8_params_b: f64,
    /// 4-bit (e.g. `Q4_K_M`): about 0.6 bytes per parameter with scales.
    pub q4_params_b: f64,
}

/// What to run here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Recommendation {
    pub runtime: Runtime,
    /// Why, in one sentence.
    pub reason: String,
    /// GPU the sizing is for (the one with the most free memory).
    pub gpu_index: Option<u32>,
    /// MIG device to target, when the sizing is for a MIG instance.
    pub mig_uuid: Option<String>,
    /// Memory budgeted for weights: free VRAM less a fixed reserve, less 20 % headroom.
    pub usable_vram_mib: Option<u64>,
    /// Largest model that fits on that one GPU.
    pub max_model: Option<ModelFit>,
    /// Largest model across all GPUs of that vendor with tensor parallelism (more than one GPU).
    pub max_model_all_gpus: Option<ModelFit>,
    /// A concrete model that fits, named for the recommended runtime.
    pub suggested_model: Option<String>,
}

/// How bad a problem is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// One problem with a stable code and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HardwareProblem {
    pub code: super::HardwareProblemCode,
    pub severity: Severity,
    pub message: String,
    /// What to do about it: a command or a setting.
    pub fix: String,
}

/// A probe, as named in `timings_ms` and `probe_errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProbeName {
    Host,
    Nvidia,
    Amd,
    Apple,
    Containers,
    Ollama,
    Vllm,
}

impl ProbeName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::Nvidia => "nvidia",
            Self::Amd => "amd",
            Self::Apple => "apple",
            Self::Containers => "containers",
            Self::Ollama => "ollama",
            Self::Vllm => "vllm",
        }
    }
}

/// A probe that did not finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeError {
    pub probe: ProbeName,
    /// `timeout` or `failed`.
    pub outcome: AttemptOutcome,
    pub message: String,
}

/// Wall time per probe, in milliseconds (probes run concurrently).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeTimings {
    pub host: u64,
    pub nvidia: u64,
    pub amd: u64,
    pub apple: u64,
    pub containers: u64,
    pub ollama: u64,
    pub vllm: u64,
}
