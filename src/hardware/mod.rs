//! Hardware and runtime detection behind `check_hardware` / `basis check`.
//!
//! [`check`] runs every probe at once (host, NVIDIA via NVML then `nvidia-smi`, AMD, Apple,
//! Docker, Ollama, vLLM), each under its own deadline, and always returns a complete
//! [`HardwareReport`]: a probe that fails or hangs becomes a recorded failure, never a failed
//! check. [`advice::advise`] then turns the findings into a recommendation and problems with
//! stable [`HardwareProblemCode`]s.

pub mod advice;
pub mod amd;
pub mod apple;
pub mod containers;
mod exec;
pub mod host;
pub mod nvidia;
pub mod nvidia_nvml;
pub mod nvidia_smi;
mod render;
pub mod report;
pub mod runtimes;

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use url::Url;

pub use advice::{Advice, HardwareProblemCode, advise};
pub use report::{
    Attempt, AttemptOutcome, ContainerInfo, DaemonState, DiskSpace, GpuInfo, GpuSource, GpuSources,
    GpuVendor, HardwareProblem, HardwareReport, HostInfo, MigInfo, MigInstance, ModelEntry,
    ModelFit, NvidiaAnswer, ProbeError, ProbeName, ProbeTimings, Recommendation, RuntimeState,
    RuntimeStatus, RuntimesInfo, Severity,
};

/// Ollama's default URL.
pub const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";
/// vLLM's default URL.
pub const DEFAULT_VLLM_URL: &str = "http://127.0.0.1:8000";
/// Default budget of each probe; with the grace below the whole check stays under 2 s.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Extra time the outer guard allows beyond a probe's own deadline before declaring it hung.
const GUARD_GRACE: Duration = Duration::from_millis(100);

/// What to check and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Where basis keeps its state (free disk is measured there; it need not exist yet).
    pub state_dir: PathBuf,
    /// Where models are stored, when known (free disk is measured there too).
    pub model_dir: Option<PathBuf>,
    pub ollama_url: Url,
    pub vllm_url: Url,
    /// Budget of each probe (they run concurrently).
    pub probe_timeout: Duration,
    /// Models the worker is configured to serve; missing ones are `MODEL_NOT_PULLED`.
    pub expected_models: Vec<String>,
    /// Root of sysfs for the AMD probe (`/sys`; a recorded tree in tests).
    pub sysfs_root: PathBuf,
}

/// Parses one of the default URL constants.
#[allow(clippy::expect_used)] // constants, covered by `default_urls_parse`
fn default_url(url: &str) -> Url {
    Url::parse(url).expect("default runtime URL is valid")
}

impl CheckOptions {
    /// Defaults: runtimes at their usual local ports, 1500 ms per probe, no expected models.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            model_dir: None,
            ollama_url: default_url(DEFAULT_OLLAMA_URL),
            vllm_url: default_url(DEFAULT_VLLM_URL),
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            expected_models: Vec::new(),
            sysfs_root: PathBuf::from("/sys"),
        }
    }
}

/// Every stable problem code, for schemas and docs.
pub fn problem_codes() -> &'static [HardwareProblemCode] {
    HardwareProblemCode::ALL
}

/// Runs `fut` under `limit`; a timeout or an error becomes a [`ProbeError`]. Returns the wall time.
async fn guarded<T>(
    probe: ProbeName,
    limit: Duration,
    fut: impl Future<Output = Result<T, String>>,
) -> (Result<T, ProbeError>, u64) {
    let start = Instant::now();
    let res = match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(message)) => Err(ProbeError {
            probe,
            outcome: AttemptOutcome::Failed,
            message,
        }),
        Err(_) => Err(ProbeError {
            probe,
            outcome: AttemptOutcome::Timeout,
            message: format!("no answer within {} ms", limit.as_millis()),
        }),
    };
    (res, exec::elapsed_ms(start))
}

/// Aborts the task when dropped, so a cancelled check leaves nothing running.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// [`guarded`] on its own task; a panic in the probe becomes a failed [`ProbeError`].
async fn spawn_guarded<T: Send + 'static>(
    probe: ProbeName,
    limit: Duration,
    fut: impl Future<Output = Result<T, String>> + Send + 'static,
) -> Done<T> {
    let mut task = AbortOnDrop(tokio::spawn(guarded(probe, limit, fut)));
    match (&mut task.0).await {
        Ok(done) => done,
        Err(join) => (
            Err(ProbeError {
                probe,
                outcome: AttemptOutcome::Failed,
                message: format!("probe crashed: {join}"),
            }),
            0,
        ),
    }
}

/// Checks this machine. Never fails: whatever a probe could not find is `null` or recorded in
/// `sources` / `probe_errors`, and the advice accounts for it.
pub async fn check(opts: &CheckOptions) -> HardwareReport {
    let start = Instant::now();
    let budget = opts.probe_timeout;
    let limit = budget + GUARD_GRACE;
    // Each probe is its own task: they run in parallel on a multi-threaded runtime, a probe
    // that panics becomes a recorded failure, and a probe's blocking work cannot skew the
    // others' timings.
    let (state_dir, model_dir) = (opts.state_dir.clone(), opts.model_dir.clone());
    let sysfs_root = opts.sysfs_root.clone();
    let (ollama_url, vllm_url) = (opts.ollama_url.clone(), opts.vllm_url.clone());
    let (host, nvidia, amd, apple, containers, ollama, vllm) = tokio::join!(
        spawn_guarded(ProbeName::Host, limit, host::probe(state_dir, model_dir)),
        spawn_guarded(ProbeName::Nvidia, limit, async move {
            Ok(nvidia::probe(budget).await)
        }),
        spawn_guarded(ProbeName::Amd, limit, async move {
            Ok(amd::probe(sysfs_root, budget).await)
        }),
        spawn_guarded(ProbeName::Apple, limit, async move {
            Ok(apple::probe(budget).await)
        }),
        spawn_guarded(ProbeName::Containers, limit, async move {
            Ok(containers::probe(budget).await)
        }),
        spawn_guarded(ProbeName::Ollama, limit, async move {
            Ok(runtimes::probe_ollama(&ollama_url, budget).await)
        }),
        spawn_guarded(ProbeName::Vllm, limit, async move {
            Ok(runtimes::probe_openai(&vllm_url, budget).await)
        }),
    );
    let finished = Finished {
        host,
        nvidia,
        amd,
        apple,
        containers,
        ollama,
        vllm,
    };
    let mut report = assemble(opts, limit, finished);
    let advice = advise(&report, &opts.expected_models);
    report.recommendation = advice.recommendation;
    report.problems = advice.problems;
    report.total_ms = exec::elapsed_ms(start);
    report
}

type Done<T> = (Result<T, ProbeError>, u64);

/// What every probe returned, with its wall time.
struct Finished {
    host: Done<HostInfo>,
    nvidia: Done<nvidia::NvidiaOutcome>,
    amd: Done<amd::AmdOutcome>,
    apple: Done<apple::AppleOutcome>,
    containers: Done<ContainerInfo>,
    ollama: Done<RuntimeStatus>,
    vllm: Done<RuntimeStatus>,
}

/// Puts the probes' results into a report, with a stand-in for each probe that did not finish.
fn assemble(opts: &CheckOptions, limit: Duration, f: Finished) -> HardwareReport {
    let timings_ms = ProbeTimings {
        host: f.host.1,
        nvidia: f.nvidia.1,
        amd: f.amd.1,
        apple: f.apple.1,
        containers: f.containers.1,
        ollama: f.ollama.1,
        vllm: f.vllm.1,
    };
    let mut errors = Vec::new();
    let host = take(&mut errors, f.host.0).unwrap_or_else(|| HostInfo {
        arch: std::env::consts::ARCH.to_owned(),
        state_dir: DiskSpace {
            path: opts.state_dir.display().to_string(),
            note: Some("host probe did not finish".to_owned()),
            ..DiskSpace::default()
        },
        ..HostInfo::default()
    });
    let hung = |what: &str| {
        Attempt::new(
            AttemptOutcome::Timeout,
            format!("{what} probe did not finish"),
            exec::millis(limit),
        )
    };
    let (mut gpus, nvidia, nvml, nvidia_smi, nvidia_kernel_driver) =
        match take(&mut errors, f.nvidia.0) {
            Some(n) => (n.gpus, n.answered, n.nvml, n.smi, n.kernel_driver),
            None => (
                Vec::new(),
                NvidiaAnswer::None,
                hung("NVIDIA"),
                hung("NVIDIA"),
                None,
            ),
        };
    let (amd_sysfs, rocm_smi) = match take(&mut errors, f.amd.0) {
        Some(a) => {
            gpus.extend(a.gpus);
            (a.sysfs, a.rocm_smi)
        }
        None => (hung("AMD"), hung("AMD")),
    };
    let apple = match take(&mut errors, f.apple.0) {
        Some(a) => {
            gpus.extend(a.gpus);
            a.attempt
        }
        None => hung("Apple"),
    };
    let containers = take(&mut errors, f.containers.0).unwrap_or_else(|| ContainerInfo {
        docker_cli: None,
        docker_daemon: DaemonState::Timeout,
        docker_detail: Some("containers probe did not finish".to_owned()),
        docker_runtimes: Vec::new(),
        nvidia_runtime: None,
        nvidia_ctk: None,
        nvidia_container_runtime_hook: None,
    });
    let runtime_hung = |url: &Url| RuntimeStatus {
        url: url.to_string(),
        state: RuntimeState::Timeout,
        version: None,
        models: Vec::new(),
        http_status: None,
        detail: Some("probe did not finish".to_owned()),
        ms: exec::millis(limit),
    };
    let ollama = take(&mut errors, f.ollama.0).unwrap_or_else(|| runtime_hung(&opts.ollama_url));
    let vllm = take(&mut errors, f.vllm.0).unwrap_or_else(|| runtime_hung(&opts.vllm_url));
    HardwareReport {
        host,
        gpus,
        sources: GpuSources {
            nvidia,
            nvml,
            nvidia_smi,
            nvidia_kernel_driver,
            amd_sysfs,
            rocm_smi,
            apple,
        },
        containers,
        runtimes: RuntimesInfo { ollama, vllm },
        recommendation: Recommendation {
            runtime: crate::domain::Runtime::Echo,
            reason: String::new(),
            gpu_index: None,
            mig_uuid: None,
            usable_vram_mib: None,
            max_model: None,
            max_model_all_gpus: None,
            suggested_model: None,
        },
        problems: Vec::new(),
        probe_errors: errors,
        timings_ms,
        total_ms: 0,
    }
}

/// The value, or `None` with the error recorded.
fn take<T>(errors: &mut Vec<ProbeError>, res: Result<T, ProbeError>) -> Option<T> {
    res.map_err(|e| errors.push(e)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_urls_parse() {
        let opts = CheckOptions::new("/tmp/x");
        assert_eq!(opts.ollama_url.as_str(), "http://127.0.0.1:11434/");
        assert_eq!(opts.vllm_url.as_str(), "http://127.0.0.1:8000/");
        assert_eq!(opts.probe_timeout, Duration::from_millis(1500));
    }

    #[test]
    fn codes_are_screaming_snake_and_match_serde() {
        assert_eq!(problem_codes().len(), 14);
        for code in problem_codes() {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json.as_str(), Some(code.as_str()));
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_')
            );
        }
    }

    #[tokio::test]
    async fn guard_turns_hangs_and_errors_into_probe_errors() {
        let start = Instant::now();
        let (res, ms) = guarded(ProbeName::Ollama, Duration::from_millis(50), async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, String>(())
        })
        .await;
        assert!(start.elapsed() < Duration::from_millis(500));
        assert!(ms >= 50);
        assert_eq!(res.unwrap_err().outcome, AttemptOutcome::Timeout);
        let (res, _) = guarded(ProbeName::Host, Duration::from_secs(1), async {
            Err::<(), _>("boom".to_owned())
        })
        .await;
        let err = res.unwrap_err();
        assert_eq!(
            (err.outcome, err.message.as_str()),
            (AttemptOutcome::Failed, "boom")
        );
    }
}
