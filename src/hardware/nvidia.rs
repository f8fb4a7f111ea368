//! The NVIDIA chain: NVML first; `nvidia-smi` when NVML fails, or in parallel when NVML is slow
//! to initialise (a GPU without persistence mode can take seconds). Everything ends by the
//! budget; the kernel driver version from `/proc` tells "no driver" from "no NVML library".

use std::time::{Duration, Instant};

use super::exec;
use super::nvidia_nvml::{self, NvmlFailure, NvmlGpus};
use super::nvidia_smi::{self, SmiOutcome};
use super::report::{Attempt, AttemptOutcome, GpuInfo, NvidiaAnswer};

/// What the NVIDIA chain found.
#[derive(Debug, Clone)]
pub(crate) struct NvidiaOutcome {
    pub gpus: Vec<GpuInfo>,
    pub answered: NvidiaAnswer,
    pub nvml: Attempt,
    pub smi: Attempt,
    pub kernel_driver: Option<String>,
}

/// The kernel module version from `/proc/driver/nvidia/version`:
/// `NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 …` → `550.54.15`
/// (also the open module's `… Open Kernel Module for x86_64  560.35.03  Release Build …`).
pub fn parse_proc_driver_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version"))?;
    let after = &line[line.find("Kernel Module")? + "Kernel Module".len()..];
    after
        .split_whitespace()
        .find(|t| t.contains('.') && t.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map(str::to_owned)
}

fn kernel_driver() -> Option<String> {
    let text = std::fs::read_to_string("/proc/driver/nvidia/version").ok()?;
    parse_proc_driver_version(&text)
}

type NvmlResult = Result<NvmlGpus, NvmlFailure>;

fn nvml_attempt(res: &Result<NvmlResult, String>, ms: u64) -> Attempt {
    match res {
        Ok(Ok(found)) => Attempt::new(
            AttemptOutcome::Ok,
            format!("{}: {} GPU(s)", found.library, found.gpus.len()),
            ms,
        ),
        Ok(Err(NvmlFailure::LibraryMissing(why))) => {
            Attempt::new(AttemptOutcome::NotFound, why.clone(), ms)
        }
        Ok(Err(NvmlFailure::InitFailed(why))) => {
            Attempt::new(AttemptOutcome::Failed, why.clone(), ms)
        }
        Err(why) => Attempt::new(AttemptOutcome::Timeout, why.clone(), ms),
    }
}

/// Runs the chain within `budget`.
pub(crate) async fn probe(budget: Duration) -> NvidiaOutcome {
    probe_with(
        budget,
        kernel_driver(),
        nvidia_nvml::probe_blocking,
        nvidia_smi::probe,
    )
    .await
}

/// The chain with its sources passed in, so tests can make them slow or fail.
async fn probe_with<Smi, SmiFut>(
    budget: Duration,
    kernel_driver: Option<String>,
    nvml: impl FnOnce() -> NvmlResult + Send + 'static,
    smi: Smi,
) -> NvidiaOutcome
where
    Smi: Fn(Instant) -> SmiFut,
    SmiFut: std::future::Future<Output = SmiOutcome>,
{
    let start = Instant::now();
    let deadline = start + budget;
    let hedge_at = start + budget / 4;

    let nvml_task = tokio::task::spawn_blocking(nvml);
    let nvml_fut = async move {
        match tokio::time::timeout_at(deadline.into(), nvml_task).await {
            Ok(Ok(res)) => Ok(res),
            Ok(Err(join)) => Ok(Err(NvmlFailure::InitFailed(format!(
                "NVML probe crashed: {join}"
            )))),
            Err(_) => Err(format!("no answer within {} ms", budget.as_millis())),
        }
    };
    tokio::pin!(nvml_fut);

    // Fast path: NVML answers (or fails) before the hedge point.
    let early = tokio::select! {
        res = &mut nvml_fut => Some(res),
        () = tokio::time::sleep_until(hedge_at.into()) => None,
    };
    let (nvml_res, nvml_ms, smi) = if let Some(res) = early {
        let ms = exec::elapsed_ms(start);
        if matches!(res, Ok(Ok(_))) {
            (res, ms, None)
        } else {
            (res, ms, Some(smi(deadline).await))
        }
    } else {
        // NVML is slow: race nvidia-smi against it; NVML wins if it answers.
        let smi_fut = smi(deadline);
        tokio::pin!(smi_fut);
        tokio::select! {
            biased;
            res = &mut nvml_fut => {
                let ms = exec::elapsed_ms(start);
                if matches!(res, Ok(Ok(_))) {
                    (res, ms, None)
                } else {
                    (res, ms, Some(smi_fut.await))
                }
            }
            smi = &mut smi_fut => {
                if smi.attempt.is_ok() {
                    let ms = exec::elapsed_ms(start);
                    (Err(format!("still initialising after {ms} ms; nvidia-smi answered first")), ms, Some(smi))
                } else {
                    let res = nvml_fut.await;
                    (res, exec::elapsed_ms(start), Some(smi))
                }
            }
        }
    };

    let nvml = nvml_attempt(&nvml_res, nvml_ms);
    match (nvml_res, smi) {
        (Ok(Ok(found)), smi) => NvidiaOutcome {
            gpus: found.gpus,
            answered: NvidiaAnswer::Nvml,
            nvml,
            smi: smi.map_or_else(|| Attempt::skipped("NVML answered"), |s| s.attempt),
            kernel_driver,
        },
        (_, Some(SmiOutcome { attempt, gpus })) if attempt.is_ok() => NvidiaOutcome {
            gpus,
            answered: NvidiaAnswer::NvidiaSmi,
            nvml,
            smi: attempt,
            kernel_driver,
        },
        (_, smi) => NvidiaOutcome {
            gpus: Vec::new(),
            answered: NvidiaAnswer::None,
            nvml,
            smi: smi.map_or_else(|| Attempt::skipped("not reached"), |s| s.attempt),
            kernel_driver,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_driver_versions() {
        let proprietary = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\nGCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n";
        assert_eq!(
            parse_proc_driver_version(proprietary).as_deref(),
            Some("550.54.15")
        );
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35.03  Release Build  (dvs-builder@U16-I3-B03-4-3)  Fri Aug 16 21:42:42 UTC 2024\n";
        assert_eq!(
            parse_proc_driver_version(open).as_deref(),
            Some("560.35.03")
        );
        assert_eq!(parse_proc_driver_version("garbage"), None);
    }

    use crate::hardware::report::{GpuSource, GpuVendor};
    use std::sync::mpsc;

    fn smi_ok() -> SmiOutcome {
        SmiOutcome {
            attempt: Attempt::new(AttemptOutcome::Ok, "fake: 1 GPU(s)", 1),
            gpus: vec![GpuInfo::new(GpuVendor::Nvidia, 0, GpuSource::NvidiaSmi)],
        }
    }

    fn smi_timeout() -> SmiOutcome {
        SmiOutcome {
            attempt: Attempt::new(AttemptOutcome::Timeout, "fake: killed", 1),
            gpus: Vec::new(),
        }
    }

    /// An NVML that blocks until the test ends (the sender is dropped) or 5 s pass.
    fn hung_nvml(rx: mpsc::Receiver<()>) -> impl FnOnce() -> NvmlResult + Send + 'static {
        move || {
            let _ = rx.recv_timeout(Duration::from_secs(5));
            Err(NvmlFailure::InitFailed("woke up".to_owned()))
        }
    }

    const BUDGET: Duration = Duration::from_millis(400);

    #[tokio::test]
    async fn nvml_answering_skips_nvidia_smi() {
        let nvml = || {
            Ok(NvmlGpus {
                library: "fake".to_owned(),
                gpus: vec![GpuInfo::new(GpuVendor::Nvidia, 0, GpuSource::Nvml)],
            })
        };
        let out = probe_with(BUDGET, None, nvml, |_| async {
            panic!("nvidia-smi must not run")
        })
        .await;
        assert_eq!(out.answered, NvidiaAnswer::Nvml);
        assert_eq!(out.smi.outcome, AttemptOutcome::Skipped);
    }

    #[tokio::test]
    async fn nvml_missing_falls_back_to_nvidia_smi() {
        let nvml = || {
            Err(NvmlFailure::LibraryMissing(
                "libnvidia-ml.so.1: not found".to_owned(),
            ))
        };
        let out = probe_with(BUDGET, Some("550.54.15".to_owned()), nvml, |_| async {
            smi_ok()
        })
        .await;
        assert_eq!(out.answered, NvidiaAnswer::NvidiaSmi);
        assert_eq!(out.nvml.outcome, AttemptOutcome::NotFound);
        assert_eq!(out.gpus.len(), 1);
        assert_eq!(out.kernel_driver.as_deref(), Some("550.54.15"));
    }

    #[tokio::test]
    async fn hung_nvml_is_raced_by_nvidia_smi() {
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        let out = probe_with(BUDGET, None, hung_nvml(rx), |_| async { smi_ok() }).await;
        assert!(start.elapsed() < BUDGET, "{:?}", start.elapsed());
        assert_eq!(out.answered, NvidiaAnswer::NvidiaSmi);
        assert_eq!(out.nvml.outcome, AttemptOutcome::Timeout);
        drop(tx);
    }

    #[tokio::test]
    async fn everything_hung_still_ends_at_the_budget() {
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        let smi = |deadline: Instant| async move {
            tokio::time::sleep_until(deadline.into()).await;
            smi_timeout()
        };
        let out = probe_with(BUDGET, None, hung_nvml(rx), smi).await;
        let took = start.elapsed();
        assert!(
            took >= BUDGET && took < BUDGET + Duration::from_millis(250),
            "{took:?}"
        );
        assert_eq!(out.answered, NvidiaAnswer::None);
        assert_eq!(out.nvml.outcome, AttemptOutcome::Timeout);
        assert_eq!(out.smi.outcome, AttemptOutcome::Timeout);
        drop(tx);
    }

    #[tokio::test]
    async fn chain_finishes_within_budget() {
        let budget = Duration::from_millis(1500);
        let start = Instant::now();
        let out = probe(budget).await;
        assert!(start.elapsed() < budget + Duration::from_millis(200));
        match out.answered {
            NvidiaAnswer::None => {
                assert!(out.gpus.is_empty());
                assert!(!out.nvml.is_ok());
                assert!(out.nvml.detail.is_some());
                assert!(out.smi.detail.is_some());
            }
            NvidiaAnswer::Nvml | NvidiaAnswer::NvidiaSmi => assert!(!out.gpus.is_empty()),
        }
    }
}
