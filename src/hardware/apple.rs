//! Apple Silicon: the chip (`machdep.cpu.brand_string`) and its unified memory (`hw.memsize`)
//! through `sysctl`, on macOS only; elsewhere the probe is skipped.

use std::time::Duration;

use super::exec;
use super::report::{Attempt, GpuInfo, GpuSource, GpuVendor};

/// Parses `sysctl -n machdep.cpu.brand_string hw.memsize` (one value per line). Only an Apple
/// chip counts as a GPU; an Intel Mac's brand string gives nothing.
pub fn parse_sysctl(text: &str) -> Option<GpuInfo> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let brand = lines.next()?;
    if !brand.starts_with("Apple") {
        return None;
    }
    let memsize: Option<u64> = lines.next().and_then(|l| l.parse().ok());
    let mut gpu = GpuInfo::new(GpuVendor::Apple, 0, GpuSource::Sysctl);
    gpu.name = Some(brand.to_owned());
    gpu.unified_memory = true;
    gpu.vram_total_mib = memsize.map(exec::bytes_to_mib);
    Some(gpu)
}

/// What the Apple probe found.
#[derive(Debug, Clone)]
pub(crate) struct AppleOutcome {
    pub gpus: Vec<GpuInfo>,
    pub attempt: Attempt,
}

#[cfg(target_os = "macos")]
pub(crate) async fn probe(budget: Duration) -> AppleOutcome {
    use super::report::AttemptOutcome;
    use std::time::Instant;

    let start = Instant::now();
    let sysctl = std::path::Path::new("/usr/sbin/sysctl");
    let args = ["-n", "machdep.cpu.brand_string", "hw.memsize"];
    match exec::run(sysctl, &args, start + budget).await {
        Ok(out) if out.success() => {
            let gpus: Vec<GpuInfo> = parse_sysctl(&out.stdout).into_iter().collect();
            let detail = if gpus.is_empty() {
                "not Apple Silicon"
            } else {
                "Apple Silicon"
            };
            AppleOutcome {
                gpus,
                attempt: Attempt::new(AttemptOutcome::Ok, detail, exec::elapsed_ms(start)),
            }
        }
        Ok(out) => AppleOutcome {
            gpus: Vec::new(),
            attempt: Attempt::new(
                AttemptOutcome::Failed,
                out.reason(),
                exec::elapsed_ms(start),
            ),
        },
        Err(e) => AppleOutcome {
            gpus: Vec::new(),
            attempt: Attempt::new(
                AttemptOutcome::Failed,
                e.to_string(),
                exec::elapsed_ms(start),
            ),
        },
    }
}

#[cfg(not(target_os = "macos"))]
#[allow(clippy::unused_async)] // same signature as the macOS probe
pub(crate) async fn probe(_budget: Duration) -> AppleOutcome {
    AppleOutcome {
        gpus: Vec::new(),
        attempt: Attempt::skipped("not macOS"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_chip_with_unified_memory() {
        let gpu = parse_sysctl("Apple M2 Max\n68719476736\n").unwrap();
        assert_eq!(gpu.name.as_deref(), Some("Apple M2 Max"));
        assert_eq!(gpu.vram_total_mib, Some(65536));
        assert!(gpu.unified_memory);
        assert_eq!(gpu.vendor, GpuVendor::Apple);
    }

    #[test]
    fn intel_mac_is_not_a_gpu() {
        assert!(parse_sysctl("Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz\n17179869184\n").is_none());
        assert!(parse_sysctl("").is_none());
    }
}
