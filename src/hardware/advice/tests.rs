//! Table tests of the advice rules on hand-built reports.

use super::*;
use crate::hardware::report::{
    Attempt, AttemptOutcome, ContainerInfo, DaemonState, DiskSpace, GpuSource, GpuSources,
    HostInfo, MigInfo, MigInstance, ModelEntry, NvidiaAnswer, ProbeTimings, RuntimeState,
    RuntimeStatus, RuntimesInfo,
};

fn runtime(url: &str, state: RuntimeState, models: &[&str]) -> RuntimeStatus {
    RuntimeStatus {
        url: url.to_owned(),
        state,
        version: None,
        models: models
            .iter()
            .map(|m| ModelEntry {
                name: (*m).to_owned(),
                ..ModelEntry::default()
            })
            .collect(),
        http_status: None,
        detail: (state != RuntimeState::Up).then(|| "connection refused".to_owned()),
        ms: 1,
    }
}

/// A machine with nothing: no GPU, no docker, runtimes down, plenty of disk.
fn bare() -> HardwareReport {
    HardwareReport {
        host: HostInfo {
            arch: "x86_64".to_owned(),
            state_dir: DiskSpace {
                path: "/state".to_owned(),
                mount_point: Some("/".to_owned()),
                free_mib: Some(100_000),
                total_mib: Some(200_000),
                note: None,
            },
            ..HostInfo::default()
        },
        gpus: Vec::new(),
        sources: GpuSources {
            nvidia: NvidiaAnswer::None,
            nvml: Attempt::new(
                AttemptOutcome::NotFound,
                "libnvidia-ml.so.1: cannot open shared object file",
                0,
            ),
            nvidia_smi: Attempt::new(AttemptOutcome::NotFound, "nvidia-smi not found", 0),
            nvidia_kernel_driver: None,
            amd_sysfs: Attempt::new(AttemptOutcome::Ok, "0 AMD GPU(s)", 0),
            rocm_smi: Attempt::skipped("no AMD GPU"),
            apple: Attempt::skipped("not macOS"),
        },
        containers: ContainerInfo {
            docker_cli: None,
            docker_daemon: DaemonState::NotInstalled,
            docker_detail: None,
            docker_runtimes: Vec::new(),
            nvidia_runtime: None,
            nvidia_ctk: None,
            nvidia_container_runtime_hook: None,
        },
        runtimes: RuntimesInfo {
            ollama: runtime("http://127.0.0.1:11434/", RuntimeState::Down, &[]),
            vllm: runtime("http://127.0.0.1:8000/", RuntimeState::Down, &[]),
        },
        recommendation: Recommendation {
            runtime: Runtime::Echo,
            reason: String::new(),
            gpu_index: None,
            mig_uuid: None,
            usable_vram_mib: None,
            max_model: None,
            max_model_all_gpus: None,
            suggested_model: None,
        },
        problems: Vec::new(),
        probe_errors: Vec::new(),
        timings_ms: ProbeTimings::default(),
        total_ms: 0,
    }
}

fn nvidia_gpu(index: u32, total: u64, free: u64) -> GpuInfo {
    let mut g = GpuInfo::new(GpuVendor::Nvidia, index, GpuSource::Nvml);
    g.name = Some("NVIDIA GeForce RTX 4090".to_owned());
    g.vram_total_mib = Some(total);
    g.vram_free_mib = Some(free);
    g
}

fn with_gpu(mut r: HardwareReport, g: GpuInfo) -> HardwareReport {
    r.sources.nvidia = NvidiaAnswer::Nvml;
    r.sources.nvml = Attempt::new(AttemptOutcome::Ok, "libnvidia-ml.so.1: 1 GPU(s)", 3);
    r.gpus.push(g);
    r
}

fn codes(a: &Advice) -> Vec<HardwareProblemCode> {
    a.problems.iter().map(|p| p.code).collect()
}

#[test]
fn no_gpu_recommends_echo() {
    let a = advise(&bare(), &[]);
    assert_eq!(a.recommendation.runtime, Runtime::Echo);
    assert_eq!(a.recommendation.max_model, None);
    assert_eq!(codes(&a), vec![HardwareProblemCode::NoGpu]);
    assert!(
        a.problems[0]
            .message
            .contains("cannot open shared object file"),
        "{}",
        a.problems[0].message
    );
    assert!(a.problems[0].fix.contains("BASIS_WORKER_RUNTIME=echo"));
}

#[test]
fn no_gpu_in_a_container_says_gpus_all() {
    let mut r = bare();
    r.host.in_container = true;
    let a = advise(&r, &[]);
    assert!(a.problems[0].fix.contains("--gpus all"));
}

#[test]
fn sizing_table() {
    // (free MiB, expected fp16 B, int8 B, q4 B)
    let table: &[(u64, f64, f64, f64)] = &[
        (24_576, 9.9, 19.8, 32.9),   // 24 GiB free (RTX 4090 idle)
        (81_037, 33.6, 67.1, 111.9), // A100 80GB idle
        (12_288, 4.7, 9.4, 15.7),    // RTX 3060 12GB
        (4_096, 1.3, 2.6, 4.3),
        (512, 0.0, 0.0, 0.0), // less than the reserve
    ];
    for &(free, fp16, int8, q4) in table {
        let fit = model_fit(usable_mib(free));
        assert_eq!(
            (fit.fp16_params_b, fit.int8_params_b, fit.q4_params_b),
            (fp16, int8, q4),
            "free {free} MiB"
        );
    }
    let a = advise(&with_gpu(bare(), nvidia_gpu(0, 24_564, 24_576)), &[]);
    let fit = a.recommendation.max_model.unwrap();
    assert!((9.0..=10.0).contains(&fit.fp16_params_b), "{fit:?}");
    assert_eq!(a.recommendation.usable_vram_mib, Some(18_841));
}

#[test]
fn gpu_without_runtime_recommends_ollama_and_says_it_is_down() {
    let a = advise(&with_gpu(bare(), nvidia_gpu(0, 24_564, 24_000)), &[]);
    assert_eq!(a.recommendation.runtime, Runtime::Ollama);
    assert_eq!(
        a.recommendation.suggested_model.as_deref(),
        Some("qwen2.5:14b")
    );
    assert_eq!(codes(&a), vec![HardwareProblemCode::OllamaDown]);
    assert!(a.problems[0].fix.contains("ollama serve"));
}

#[test]
fn runtime_choice_table() {
    // (ollama models or None when down, vllm models or None, expected, runtime)
    type Row = (
        Option<&'static [&'static str]>,
        Option<&'static [&'static str]>,
        &'static [&'static str],
        Runtime,
    );
    let gpu = || with_gpu(bare(), nvidia_gpu(0, 81_920, 80_000));
    let up = RuntimeState::Up;
    let table: &[Row] = &[
        (Some(&["llama3.2:latest"]), None, &[], Runtime::Ollama),
        (
            None,
            Some(&["Qwen/Qwen2.5-7B-Instruct"]),
            &[],
            Runtime::Vllm,
        ),
        (
            Some(&["llama3.2:latest"]),
            Some(&["Qwen/Qwen2.5-7B-Instruct"]),
            &[],
            Runtime::Vllm,
        ),
        (
            Some(&["llama3.2:latest"]),
            Some(&["Qwen/Qwen2.5-7B-Instruct"]),
            &["llama3.2"],
            Runtime::Ollama,
        ),
        (None, None, &[], Runtime::Ollama),
    ];
    for (ollama, vllm, expected, want) in table {
        let mut r = gpu();
        if let Some(m) = ollama {
            r.runtimes.ollama = runtime("http://o/", up, m);
        }
        if let Some(m) = vllm {
            r.runtimes.vllm = runtime("http://v/", up, m);
        }
        let expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        let a = advise(&r, &expected);
        assert_eq!(
            a.recommendation.runtime, *want,
            "{ollama:?} {vllm:?} {expected:?}"
        );
        assert!(
            !codes(&a).contains(&HardwareProblemCode::ModelNotPulled),
            "{:?}",
            a.problems
        );
    }
}

#[test]
fn ollama_up_without_models_or_without_the_expected_one() {
    let mut r = with_gpu(bare(), nvidia_gpu(0, 24_564, 24_000));
    r.runtimes.ollama = runtime("http://o/", RuntimeState::Up, &[]);
    let a = advise(&r, &[]);
    assert_eq!(codes(&a), vec![HardwareProblemCode::OllamaNoModels]);
    assert!(a.problems[0].fix.contains("ollama pull qwen2.5:14b"));

    r.runtimes.ollama = runtime("http://o/", RuntimeState::Up, &["llama3.2:latest"]);
    let a = advise(&r, &["llama3.2".to_owned(), "mistral:7b".to_owned()]);
    assert_eq!(codes(&a), vec![HardwareProblemCode::ModelNotPulled]);
    assert!(a.problems[0].fix.contains("ollama pull mistral:7b"));
}

#[test]
fn broken_runtimes_are_reported_even_when_not_chosen() {
    let mut r = bare();
    r.runtimes.vllm = runtime("http://v/", RuntimeState::Malformed, &[]);
    r.runtimes.ollama = runtime("http://o/", RuntimeState::Timeout, &[]);
    let a = advise(&r, &[]);
    let c = codes(&a);
    assert!(
        c.contains(&HardwareProblemCode::VllmDown) && c.contains(&HardwareProblemCode::OllamaDown),
        "{c:?}"
    );
}

#[test]
fn mig_enabled_names_the_instance_to_target() {
    let mut g = nvidia_gpu(0, 81_920, 81_000);
    g.name = Some("NVIDIA A100-SXM4-80GB".to_owned());
    g.mig = Some(MigInfo {
        enabled: true,
        pending_enabled: Some(true),
        instances: vec![
            MigInstance {
                id: 0,
                uuid: Some("MIG-aaaa".to_owned()),
                name: Some("3g.40gb".to_owned()),
                memory_mib: None,
                memory_free_mib: None,
            },
            MigInstance {
                id: 1,
                uuid: Some("MIG-bbbb".to_owned()),
                name: Some("1g.10gb".to_owned()),
                memory_mib: Some(9_728),
                memory_free_mib: Some(9_600),
            },
        ],
    });
    let mut r = with_gpu(bare(), g);
    r.runtimes.ollama = runtime("http://o/", RuntimeState::Up, &["llama3.2:latest"]);
    let a = advise(&r, &[]);
    assert_eq!(codes(&a), vec![HardwareProblemCode::MigEnabled]);
    assert!(a.problems[0].fix.contains("CUDA_VISIBLE_DEVICES=MIG-aaaa"));
    // Sized to the 3g.40gb instance, not the whole GPU.
    assert_eq!(a.recommendation.mig_uuid.as_deref(), Some("MIG-aaaa"));
    assert_eq!(
        a.recommendation.usable_vram_mib,
        Some(usable_mib(profile_mib("3g.40gb").unwrap()))
    );

    r.gpus[0].mig.as_mut().unwrap().instances.clear();
    let a = advise(&r, &[]);
    let mig = a
        .problems
        .iter()
        .find(|p| p.code == HardwareProblemCode::MigEnabled)
        .unwrap();
    assert_eq!(mig.severity, Severity::Warning);
    assert!(!codes(&a).contains(&HardwareProblemCode::LowVram));
}

#[test]
fn low_disk_and_low_vram() {
    let mut r = with_gpu(bare(), nvidia_gpu(0, 4_096, 2_000));
    r.runtimes.ollama = runtime("http://o/", RuntimeState::Up, &["llama3.2:latest"]);
    r.host.state_dir.free_mib = Some(50);
    r.host.model_dir = Some(DiskSpace {
        path: "/models".to_owned(),
        mount_point: Some("/models".to_owned()),
        free_mib: Some(10_000),
        total_mib: Some(100_000),
        note: None,
    });
    let a = advise(&r, &[]);
    let c = codes(&a);
    assert_eq!(
        c.iter()
            .filter(|c| **c == HardwareProblemCode::LowDisk)
            .count(),
        2,
        "{c:?}"
    );
    assert!(c.contains(&HardwareProblemCode::LowVram));
    // Errors sort first.
    assert_eq!(a.problems[0].severity, Severity::Error);
    assert_eq!(a.problems[0].code, HardwareProblemCode::LowDisk);
}

#[test]
fn nvml_library_missing_vs_unavailable() {
    // Driver loaded (kernel module) but no libnvidia-ml, nvidia-smi answered.
    let mut r = bare();
    r.sources.nvidia_kernel_driver = Some("550.54.15".to_owned());
    r.sources.nvidia_smi = Attempt::new(AttemptOutcome::Ok, "/usr/bin/nvidia-smi: 1 GPU(s)", 80);
    r.sources.nvidia = NvidiaAnswer::NvidiaSmi;
    let mut g = nvidia_gpu(0, 24_564, 24_000);
    g.source = GpuSource::NvidiaSmi;
    r.gpus.push(g);
    r.runtimes.ollama = runtime("http://o/", RuntimeState::Up, &["llama3.2:latest"]);
    let a = advise(&r, &[]);
    assert_eq!(codes(&a), vec![HardwareProblemCode::NvmlLibraryMissing]);
    assert_eq!(a.problems[0].severity, Severity::Warning);
    assert!(
        a.problems[0].fix.contains("libnvidia-compute-550"),
        "{}",
        a.problems[0].fix
    );

    // Library there, driver not loaded, nothing else answered.
    let mut r = bare();
    r.sources.nvml = Attempt::new(
        AttemptOutcome::Failed,
        "libnvidia-ml.so.1 loaded, init failed: driver not loaded",
        2,
    );
    let a = advise(&r, &[]);
    let c = codes(&a);
    assert!(
        c.contains(&HardwareProblemCode::NvmlUnavailable)
            && c.contains(&HardwareProblemCode::NoGpu),
        "{c:?}"
    );
    assert_eq!(a.problems[0].severity, Severity::Error);

    // No driver at all: only NO_GPU.
    assert_eq!(
        codes(&advise(&bare(), &[])),
        vec![HardwareProblemCode::NoGpu]
    );
}

#[test]
fn container_toolkit_and_docker_daemon() {
    let mut r = with_gpu(bare(), nvidia_gpu(0, 24_564, 24_000));
    r.runtimes.ollama = runtime("http://o/", RuntimeState::Up, &["llama3.2:latest"]);
    r.containers.docker_cli = Some("/usr/bin/docker".to_owned());
    r.containers.docker_daemon = DaemonState::Reachable;
    r.containers.nvidia_runtime = Some(false);
    r.containers.docker_runtimes = vec!["runc".to_owned()];
    assert_eq!(
        codes(&advise(&r, &[])),
        vec![HardwareProblemCode::ContainerToolkitMissing]
    );
    r.containers.nvidia_ctk = Some("/usr/bin/nvidia-ctk".to_owned());
    let a = advise(&r, &[]);
    assert_eq!(
        codes(&a),
        vec![HardwareProblemCode::ContainerToolkitMissing]
    );
    assert_eq!(a.problems[0].severity, Severity::Info);
    r.containers.nvidia_runtime = Some(true);
    assert!(advise(&r, &[]).problems.is_empty());
    r.containers.docker_daemon = DaemonState::Unreachable;
    r.containers.nvidia_runtime = None;
    assert_eq!(
        codes(&advise(&r, &[])),
        vec![HardwareProblemCode::DockerDaemonDown]
    );
    r.containers.docker_daemon = DaemonState::PermissionDenied;
    assert_eq!(
        codes(&advise(&r, &[])),
        vec![HardwareProblemCode::DockerPermissionDenied]
    );
}

#[test]
fn multi_gpu_and_apple_sizing() {
    let mut r = bare();
    for i in 0..8 {
        r.gpus.push(nvidia_gpu(i, 81_920, 81_000));
    }
    r.runtimes.vllm = runtime(
        "http://v/",
        RuntimeState::Up,
        &["Qwen/Qwen2.5-72B-Instruct"],
    );
    let a = advise(&r, &[]);
    assert_eq!(a.recommendation.runtime, Runtime::Vllm);
    let all = a.recommendation.max_model_all_gpus.unwrap();
    assert!(all.fp16_params_b > 250.0, "{all:?}");
    assert_eq!(
        a.recommendation.suggested_model.as_deref(),
        Some("Qwen/Qwen2.5-72B-Instruct")
    );

    let mut r = bare();
    let mut m = GpuInfo::new(GpuVendor::Apple, 0, GpuSource::Sysctl);
    m.unified_memory = true;
    m.vram_total_mib = Some(65_536);
    r.gpus.push(m);
    r.runtimes.vllm = runtime("http://v/", RuntimeState::Up, &["x"]);
    let a = advise(&r, &[]);
    assert_eq!(
        a.recommendation.runtime,
        Runtime::Ollama,
        "vLLM has no Metal backend"
    );
    assert_eq!(a.recommendation.usable_vram_mib, Some(usable_mib(49_152)));
}

#[test]
fn probe_errors_become_problems() {
    let mut r = bare();
    r.probe_errors.push(crate::hardware::report::ProbeError {
        probe: crate::hardware::report::ProbeName::Containers,
        outcome: AttemptOutcome::Timeout,
        message: "no answer within 1600 ms".to_owned(),
    });
    assert!(codes(&advise(&r, &[])).contains(&HardwareProblemCode::ProbeFailed));
}

#[test]
fn profile_sizes() {
    assert_eq!(profile_mib("3g.40gb"), Some(38_146));
    assert_eq!(
        profile_mib("NVIDIA A100-SXM4-80GB MIG 1g.10gb"),
        Some(9_536)
    );
    assert_eq!(profile_mib("weird"), None);
}
