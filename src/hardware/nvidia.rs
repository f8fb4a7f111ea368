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
    let start = Instant::now();
    let deadline = start + budget;
    let hedge_at = start + budget / 4;
    let kernel_driver = kernel_driver();

    let nvml_task = tokio::task::spawn_blocking(nvidia_nvml::probe_blocking);
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
            (res, ms, Some(nvidia_smi::probe(deadline).await))
        }
    } else {
        // NVML is slow: race nvidia-smi against it; NVML wins if it answers.
        let smi_fut = nvidia_smi::probe(deadline);
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
