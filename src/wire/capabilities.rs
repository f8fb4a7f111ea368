//! What a worker can take, as the task market matches it (docs/TASK_MARKET.md,
//! "Capabilities"): tags derived from its registration, computed the same way by the
//! orchestrator (claims, the registry, `?fits=`) and by the worker's host (fetch_tasks before
//! registering), plus the VRAM of its largest GPU.
//!
//! Tags: `runtime:<echo|ollama|vllm>`; `model:<name>` per model; `gpu` and `gpu:<vendor>` when
//! it has a GPU, `cpu-only` when it has none; `compute:<capability>` per GPU that reports one
//! (CUDA compute capability or AMD gfx target); `label:<label>` per label. A task requires a
//! list of tags and, separately, `min_vram_mib`.

use super::hardware::HardwareSummary;
use crate::domain::Runtime;

/// A worker's tags and the VRAM of its largest GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub tags: Vec<String>,
    /// MiB of the largest GPU; none without a GPU (or when no GPU reported its VRAM).
    pub vram_mib: Option<u64>,
}

impl Capabilities {
    /// Derives them from what a worker registered.
    pub fn of(
        runtime: Runtime,
        models: &[String],
        hardware: Option<&HardwareSummary>,
        labels: &[String],
    ) -> Self {
        let mut tags = vec![format!("runtime:{}", runtime.as_str())];
        tags.extend(models.iter().map(|m| format!("model:{m}")));
        let gpus = hardware.map_or(&[][..], |h| &h.gpus[..]);
        if gpus.is_empty() {
            tags.push("cpu-only".into());
        } else {
            tags.push("gpu".into());
        }
        for g in gpus {
            push_new(&mut tags, format!("gpu:{}", g.vendor));
            if let Some(cc) = &g.compute_capability {
                push_new(&mut tags, format!("compute:{cc}"));
            }
        }
        tags.extend(labels.iter().map(|l| format!("label:{l}")));
        Self {
            tags,
            vram_mib: gpus.iter().filter_map(|g| g.vram_total_mib).max(),
        }
    }

    /// What a task requiring `required` tags and `min_vram_mib` needs that these lack, in
    /// words a worker can act on; empty: it fits.
    pub fn missing(&self, required: &[String], min_vram_mib: Option<u64>) -> Vec<String> {
        let mut out: Vec<String> = required
            .iter()
            .filter(|r| !self.tags.contains(r))
            .cloned()
            .collect();
        if let Some(need) = min_vram_mib
            && self.vram_mib.is_none_or(|have| have < need)
        {
            let have = self
                .vram_mib
                .map_or_else(|| "no GPU VRAM".to_owned(), |v| format!("{v} MiB"));
            out.push(format!("vram >= {need} MiB (has {have})"));
        }
        out
    }
}

fn push_new(tags: &mut Vec<String>, tag: String) {
    if !tags.contains(&tag) {
        tags.push(tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::GpuSummary;

    #[test]
    fn tags_come_from_the_registration_and_vram_from_the_largest_gpu() {
        let hw = HardwareSummary {
            gpus: vec![
                GpuSummary {
                    vendor: "nvidia".into(),
                    name: Some("H100".into()),
                    vram_total_mib: Some(81_559),
                    compute_capability: Some("9.0".into()),
                },
                GpuSummary {
                    vendor: "nvidia".into(),
                    name: None,
                    vram_total_mib: Some(24_576),
                    compute_capability: Some("9.0".into()),
                },
            ],
            ..HardwareSummary::default()
        };
        let caps = Capabilities::of(
            Runtime::Vllm,
            &["llama".into()],
            Some(&hw),
            &["region=eu".into()],
        );
        assert_eq!(
            caps.tags,
            [
                "runtime:vllm",
                "model:llama",
                "gpu",
                "gpu:nvidia",
                "compute:9.0",
                "label:region=eu"
            ]
        );
        assert_eq!(caps.vram_mib, Some(81_559));
        assert!(caps.missing(&["gpu".into()], Some(80_000)).is_empty());

        let cpu = Capabilities::of(Runtime::Echo, &[], None, &[]);
        assert_eq!(cpu.tags, ["runtime:echo", "cpu-only"]);
        assert_eq!(
            cpu.missing(&["gpu".into(), "runtime:echo".into()], Some(24_576)),
            ["gpu", "vram >= 24576 MiB (has no GPU VRAM)"]
        );
    }
}
