//! The problem rules: each looks at one part of the report and says what is wrong and the
//! command or setting that fixes it.

use super::{
    HardwareProblemCode as Code, LOW_MODEL_DISK_MIB, LOW_STATE_DISK_MIB, LOW_VRAM_MIB, problem,
};
use crate::domain::Runtime;
use crate::hardware::report::{
    AttemptOutcome, DaemonState, DiskSpace, GpuInfo, GpuVendor, HardwareProblem, HardwareReport,
    ModelEntry, Recommendation, RuntimeState, RuntimeStatus, Severity,
};

/// Whether `models` holds `wanted`; Ollama's implicit `:latest` tag counts.
pub(super) fn has_model(models: &[ModelEntry], wanted: &str) -> bool {
    let norm = |n: &str| {
        let n = n.trim().to_ascii_lowercase();
        if n.contains(':') || n.contains('/') {
            n
        } else {
            format!("{n}:latest")
        }
    };
    let wanted = norm(wanted);
    models.iter().any(|m| norm(&m.name) == wanted)
}

pub(super) fn find(
    report: &HardwareReport,
    rec: &Recommendation,
    expected: &[String],
    best: Option<&GpuInfo>,
    capacity_mib: u64,
) -> Vec<HardwareProblem> {
    let mut out = Vec::new();
    gpu_problems(report, best, capacity_mib, &mut out);
    nvidia_problems(report, &mut out);
    container_problems(report, &mut out);
    runtime_problems(report, rec, expected, &mut out);
    disk_problems(report, &mut out);
    for e in &report.probe_errors {
        out.push(problem(
            Code::ProbeFailed,
            Severity::Warning,
            format!("the {} probe did not finish: {}", e.probe.as_str(), e.message),
            "Run the check again; if it keeps failing, run the underlying tool by hand (nvidia-smi, docker info, curl the runtime URL) to see why it hangs.",
        ));
    }
    out
}

fn gpu_problems(
    report: &HardwareReport,
    best: Option<&GpuInfo>,
    capacity_mib: u64,
    out: &mut Vec<HardwareProblem>,
) {
    let Some(best) = best else {
        let fix = if report.host.in_container {
            "If the host has a GPU, start this container with `--gpus all` (NVIDIA Container Toolkit) or with `--device /dev/kfd --device /dev/dri` (AMD). Until then set BASIS_WORKER_RUNTIME=echo to prove the whole path."
        } else {
            "Set BASIS_WORKER_RUNTIME=echo to prove the whole path (echo work earns nothing). To earn, run on a machine with an NVIDIA GPU and driver, an AMD GPU with ROCm, or Apple Silicon."
        };
        out.push(problem(
            Code::NoGpu,
            Severity::Warning,
            format!("no GPU found ({})", nvidia_summary(report)),
            fix,
        ));
        return;
    };
    for gpu in &report.gpus {
        if let Some(mig) = gpu.mig.as_ref().filter(|m| m.enabled) {
            let gpu_name = gpu.name.as_deref().unwrap_or("GPU");
            if let Some(inst) = mig.instances.iter().find(|i| i.uuid.is_some()) {
                let uuid = inst.uuid.as_deref().unwrap_or_default();
                out.push(problem(
                    Code::MigEnabled,
                    Severity::Info,
                    format!("MIG is on for GPU {} ({gpu_name}): {} MIG device(s); a process sees only the device it targets", gpu.index, mig.instances.len()),
                    format!("Target one MIG device: CUDA_VISIBLE_DEVICES={uuid} (list them with `nvidia-smi -L`); size the model to that instance, not the whole GPU."),
                ));
            } else {
                out.push(problem(
                    Code::MigEnabled,
                    Severity::Warning,
                    format!("MIG is on for GPU {} ({gpu_name}) but no MIG device is visible: CUDA sees nothing usable on it", gpu.index),
                    format!("Create instances (`sudo nvidia-smi mig -i {} -cgi <profile> -C`) and target one with CUDA_VISIBLE_DEVICES=MIG-<uuid>, or turn MIG off (`sudo nvidia-smi -i {} -mig 0`, then reset the GPU).", gpu.index, gpu.index),
                ));
            }
        }
    }
    let mig_without_devices = best.mig.as_ref().is_some_and(|m| m.enabled) && capacity_mib == 0;
    if capacity_mib < LOW_VRAM_MIB && !mig_without_devices {
        let total = best
            .vram_total_mib
            .map_or_else(|| "?".to_owned(), |t| t.to_string());
        out.push(problem(
            Code::LowVram,
            Severity::Warning,
            format!("GPU {} has only {capacity_mib} MiB usable ({total} MiB total): only small models fit", best.index),
            "Stop other processes using the GPU (`nvidia-smi` lists them) or pick a small quantised model; echo still works.",
        ));
    }
}

/// One line on why each GPU source found nothing; the full story is in `sources`.
fn nvidia_summary(report: &HardwareReport) -> String {
    let s = &report.sources;
    let why = |outcome: AttemptOutcome, detail: Option<&str>| {
        let outcome = match outcome {
            AttemptOutcome::Ok => "found no GPU",
            AttemptOutcome::NotFound => "not found",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Timeout => "timed out",
            AttemptOutcome::Skipped => "skipped",
        };
        // First clause only: the list of paths tried stays in `sources`.
        let detail = detail.and_then(|d| d.split(';').next()).map(str::trim);
        detail.map_or_else(|| outcome.to_owned(), |d| format!("{outcome} ({d})"))
    };
    format!(
        "NVIDIA: NVML {}, nvidia-smi {}; AMD: {}",
        why(s.nvml.outcome, s.nvml.detail.as_deref()),
        why(s.nvidia_smi.outcome, None),
        if s.amd_sysfs.is_ok() {
            "none in sysfs"
        } else {
            "no sysfs GPU entries"
        },
    )
}

fn nvidia_problems(report: &HardwareReport, out: &mut Vec<HardwareProblem>) {
    let s = &report.sources;
    let smi_ok = s.nvidia_smi.is_ok();
    let driver = s.nvidia_kernel_driver.as_deref();
    let severity = if smi_ok {
        Severity::Warning
    } else {
        Severity::Error
    };
    let nvml_detail = s.nvml.detail.as_deref().unwrap_or("no detail");
    match s.nvml.outcome {
        AttemptOutcome::NotFound if driver.is_some() || smi_ok => {
            let fix = if report.host.wsl {
                "On WSL NVML lives in /usr/lib/wsl/lib: `echo /usr/lib/wsl/lib | sudo tee /etc/ld.so.conf.d/ld.wsl.conf && sudo ldconfig`, and keep the Windows NVIDIA driver current.".to_owned()
            } else if report.host.in_container {
                "Start the container with `--gpus all` (or `--runtime=nvidia -e NVIDIA_DRIVER_CAPABILITIES=compute,utility`) so the NVIDIA Container Toolkit mounts libnvidia-ml.so.1.".to_owned()
            } else {
                let ver = driver.unwrap_or("<driver version>");
                let major = ver.split('.').next().unwrap_or(ver);
                format!("Install the NVML library matching driver {ver} (Debian/Ubuntu: `sudo apt install libnvidia-compute-{major}`), or restore the symlink: `sudo ln -s libnvidia-ml.so.{ver} /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1 && sudo ldconfig`.")
            };
            out.push(problem(
                Code::NvmlLibraryMissing,
                severity,
                format!(
                    "the NVIDIA driver is present ({}) but libnvidia-ml.so.1 does not load: {nvml_detail}",
                    driver.map_or_else(|| "nvidia-smi answered".to_owned(), |d| format!("kernel module {d}"))
                ),
                fix,
            ));
        }
        AttemptOutcome::Failed | AttemptOutcome::Timeout => out.push(problem(
            Code::NvmlUnavailable,
            severity,
            format!("NVML did not answer: {nvml_detail}"),
            "Run `nvidia-smi`: 'Driver/library version mismatch' needs a reboot after a driver upgrade; 'couldn't communicate with the NVIDIA driver' needs the kernel module (`sudo modprobe nvidia` or reinstall the driver); 'Insufficient Permissions' needs access to /dev/nvidia*.",
        )),
        _ => {}
    }
}

fn container_problems(report: &HardwareReport, out: &mut Vec<HardwareProblem>) {
    let c = &report.containers;
    if c.docker_cli.is_none() {
        return;
    }
    let detail = c.docker_detail.as_deref().unwrap_or("no detail");
    match c.docker_daemon {
        DaemonState::Unreachable | DaemonState::Timeout => out.push(problem(
            Code::DockerDaemonDown,
            Severity::Info,
            format!("the docker CLI is installed but its daemon does not answer: {detail}"),
            "Only needed to run runtimes in containers: `sudo systemctl start docker` (or start Docker Desktop).",
        )),
        DaemonState::PermissionDenied => out.push(problem(
            Code::DockerPermissionDenied,
            Severity::Info,
            format!("the docker daemon refused this user: {detail}"),
            "`sudo usermod -aG docker $USER`, then log in again (or use rootless Docker).",
        )),
        DaemonState::Reachable | DaemonState::NotInstalled => {}
    }
    let nvidia_gpu = report.gpus.iter().any(|g| g.vendor == GpuVendor::Nvidia);
    let toolkit = c.nvidia_runtime == Some(true)
        || c.nvidia_ctk.is_some()
        || c.nvidia_container_runtime_hook.is_some();
    if nvidia_gpu && !report.host.in_container && !toolkit {
        out.push(problem(
            Code::ContainerToolkitMissing,
            Severity::Warning,
            "docker is installed but the NVIDIA Container Toolkit is not: containers cannot use the GPU",
            "Install nvidia-container-toolkit (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html), then `sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker`.",
        ));
    } else if nvidia_gpu
        && c.nvidia_runtime == Some(false)
        && c.nvidia_container_runtime_hook.is_none()
    {
        out.push(problem(
            Code::ContainerToolkitMissing,
            Severity::Info,
            "the NVIDIA Container Toolkit is installed but not registered with docker",
            "`sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker`.",
        ));
    }
}

fn runtime_problem(
    code: Code,
    name: &str,
    status: &RuntimeStatus,
    severity: Severity,
    start_cmd: &str,
) -> HardwareProblem {
    let detail = status.detail.as_deref().unwrap_or("no detail");
    let what = match status.state {
        RuntimeState::Down => "nothing is listening",
        RuntimeState::Timeout => "it did not answer in time",
        RuntimeState::BadStatus => "it answered with an HTTP error",
        RuntimeState::Malformed => "it answered with something that is not its API",
        RuntimeState::Error | RuntimeState::Up => "the request failed",
    };
    problem(
        code,
        severity,
        format!("{name} at {}: {what} ({detail})", status.url),
        format!(
            "{start_cmd}; check that the URL (env file) points at it and nothing else holds that port."
        ),
    )
}

fn runtime_problems(
    report: &HardwareReport,
    rec: &Recommendation,
    expected: &[String],
    out: &mut Vec<HardwareProblem>,
) {
    let (ollama, vllm) = (&report.runtimes.ollama, &report.runtimes.vllm);
    let broken = |s: &RuntimeStatus| !matches!(s.state, RuntimeState::Up | RuntimeState::Down);
    let ollama_start = "Start Ollama: `ollama serve` (or `sudo systemctl start ollama`; install from https://ollama.com/download)";
    let vllm_start = "Start vLLM: `vllm serve <model>` (or its OpenAI-compatible container)";
    if (rec.runtime == Runtime::Ollama && !ollama.is_up()) || broken(ollama) {
        out.push(runtime_problem(
            Code::OllamaDown,
            "Ollama",
            ollama,
            Severity::Warning,
            ollama_start,
        ));
    }
    if broken(vllm) {
        out.push(runtime_problem(
            Code::VllmDown,
            "vLLM",
            vllm,
            Severity::Warning,
            vllm_start,
        ));
    }
    let (served, status) = match rec.runtime {
        Runtime::Ollama => (&ollama.models, ollama),
        Runtime::Vllm => (&vllm.models, vllm),
        Runtime::Echo => return,
    };
    if !status.is_up() {
        return;
    }
    if rec.runtime == Runtime::Ollama && served.is_empty() {
        let pull = rec.suggested_model.as_deref().unwrap_or("llama3.2:3b");
        out.push(problem(
            Code::OllamaNoModels,
            Severity::Warning,
            "Ollama is up but has no model pulled",
            format!("`ollama pull {pull}` (sized to this GPU)"),
        ));
    }
    for model in expected.iter().filter(|m| !has_model(served, m)) {
        let fix = if rec.runtime == Runtime::Ollama {
            format!("`ollama pull {model}`")
        } else {
            format!("restart vLLM serving it: `vllm serve {model}`")
        };
        out.push(problem(
            Code::ModelNotPulled,
            Severity::Warning,
            format!(
                "expected model {model} is not served by {} at {}",
                rec.runtime, status.url
            ),
            fix,
        ));
    }
}

fn disk_problems(report: &HardwareReport, out: &mut Vec<HardwareProblem>) {
    let mut check = |space: &DiskSpace, what: &str, low: u64| {
        let Some(free) = space.free_mib.filter(|f| *f < low) else {
            return;
        };
        let severity = if free < low / 10 {
            Severity::Error
        } else {
            Severity::Warning
        };
        out.push(problem(
            Code::LowDisk,
            severity,
            format!(
                "{what} {} has {free} MiB free on {} (want at least {low} MiB)",
                space.path,
                space.mount_point.as_deref().unwrap_or("its filesystem")
            ),
            format!("Free space on that filesystem or point the {what} at a larger one."),
        ));
    };
    check(&report.host.state_dir, "state dir", LOW_STATE_DISK_MIB);
    if let Some(models) = &report.host.model_dir {
        check(models, "model dir", LOW_MODEL_DISK_MIB);
    }
}
