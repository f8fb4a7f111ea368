//! AMD GPUs from sysfs (`class/kfd/kfd/topology/nodes/*/properties` → render node →
//! `mem_info_vram_*`), with product names from `rocm-smi --json` when it is installed. The sysfs
//! root is a parameter so recorded trees can be tested; the parsers are pure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::exec::{self, RunError};
use super::report::{Attempt, AttemptOutcome, GpuInfo, GpuSource, GpuVendor};

/// PCI vendor id of AMD/ATI.
const AMD_VENDOR: u32 = 0x1002;

/// Where `ROCm` installs its tools when they are not on PATH.
pub const EXTRA_DIRS: &[&str] = &["/opt/rocm/bin"];

/// What the AMD probe found.
#[derive(Debug, Clone)]
pub(crate) struct AmdOutcome {
    pub gpus: Vec<GpuInfo>,
    pub sysfs: Attempt,
    pub rocm_smi: Attempt,
}

/// `key value` lines of a kfd `properties` file.
pub fn parse_properties(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once(char::is_whitespace)?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// kfd `gfx_target_version` → gfx target: `90402` → `gfx942`, `90010` → `gfx90a`, `110000` → `gfx1100`.
pub fn gfx_target(version: u64) -> Option<String> {
    if version == 0 {
        return None;
    }
    let major = version / 10_000;
    let minor = (version / 100) % 100;
    let step = version % 100;
    Some(format!("gfx{major}{minor}{step:x}"))
}

fn read_trim(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn read_u64(path: &Path) -> Option<u64> {
    read_trim(path)?.parse().ok()
}

/// Reads AMD GPUs under a sysfs root (`/sys` on a live system).
pub fn probe_sysfs(sys_root: &Path) -> Result<Vec<GpuInfo>, String> {
    let nodes_dir = sys_root.join("class/kfd/kfd/topology/nodes");
    let mut devices: Vec<(PathBuf, Option<String>)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&nodes_dir) {
        let mut nodes: Vec<(u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
            .collect();
        nodes.sort();
        for (_, node) in nodes {
            let Ok(text) = std::fs::read_to_string(node.join("properties")) else {
                continue;
            };
            let props = parse_properties(&text);
            let is_gpu = props.get("simd_count").is_some_and(|n| *n > 0);
            let is_amd = props
                .get("vendor_id")
                .is_none_or(|v| *v == u64::from(AMD_VENDOR));
            let Some(minor) = props.get("drm_render_minor").filter(|_| is_gpu && is_amd) else {
                continue;
            };
            let gfx = props
                .get("gfx_target_version")
                .copied()
                .and_then(gfx_target);
            devices.push((
                sys_root.join(format!("class/drm/renderD{minor}/device")),
                gfx,
            ));
        }
    }
    if devices.is_empty() {
        devices = drm_cards(sys_root);
    }
    if devices.is_empty() && !nodes_dir.exists() && !sys_root.join("class/drm").exists() {
        return Err(format!(
            "no {} or {}",
            nodes_dir.display(),
            sys_root.join("class/drm").display()
        ));
    }
    let driver = read_trim(&sys_root.join("module/amdgpu/version"));
    Ok(devices
        .into_iter()
        .enumerate()
        .map(|(i, (dev, gfx))| {
            let mut gpu = read_device(&dev, u32::try_from(i).unwrap_or(u32::MAX));
            gpu.compute_capability = gfx;
            gpu.driver_version.clone_from(&driver);
            gpu
        })
        .collect())
}

/// `class/drm/cardN/device` of AMD cards with VRAM, when kfd is absent (no `ROCm` kernel support).
fn drm_cards(sys_root: &Path) -> Vec<(PathBuf, Option<String>)> {
    let Ok(entries) = std::fs::read_dir(sys_root.join("class/drm")) else {
        return Vec::new();
    };
    let mut cards: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let n: u32 = name.strip_prefix("card")?.parse().ok()?;
            Some((n, e.path().join("device")))
        })
        .filter(|(_, dev)| {
            let vendor = read_trim(&dev.join("vendor"))
                .and_then(|v| u32::from_str_radix(v.trim_start_matches("0x"), 16).ok());
            vendor == Some(AMD_VENDOR) && dev.join("mem_info_vram_total").exists()
        })
        .collect();
    cards.sort();
    cards.into_iter().map(|(_, dev)| (dev, None)).collect()
}

fn read_device(dev: &Path, index: u32) -> GpuInfo {
    let mut gpu = GpuInfo::new(GpuVendor::Amd, index, GpuSource::Sysfs);
    let total = read_u64(&dev.join("mem_info_vram_total"));
    let used = read_u64(&dev.join("mem_info_vram_used"));
    gpu.vram_total_mib = total.map(exec::bytes_to_mib);
    gpu.vram_free_mib = total
        .zip(used)
        .map(|(t, u)| exec::bytes_to_mib(t.saturating_sub(u)));
    gpu.name = read_trim(&dev.join("product_name"));
    gpu.uuid = read_trim(&dev.join("unique_id"));
    gpu.utilization_pct =
        read_u64(&dev.join("gpu_busy_percent")).and_then(|n| u32::try_from(n).ok());
    gpu.pci_bus_id = read_trim(&dev.join("uevent")).and_then(|u| {
        u.lines()
            .find_map(|l| l.strip_prefix("PCI_SLOT_NAME=").map(str::to_owned))
    });
    if gpu.name.is_none() {
        let device_id = read_trim(&dev.join("device"));
        gpu.name = device_id.map(|d| format!("AMD GPU {d}"));
    }
    if let Some(hwmon) = first_hwmon(dev) {
        gpu.temperature_c =
            read_u64(&hwmon.join("temp1_input")).and_then(|m| u32::try_from(m / 1000).ok());
        gpu.power_w = read_u64(&hwmon.join("power1_average"))
            .or_else(|| read_u64(&hwmon.join("power1_input")))
            .map(|uw| {
                #[allow(clippy::cast_precision_loss)] // microwatts of one GPU fit in f64 exactly
                let watts = uw as f64 / 1_000_000.0;
                exec::round1(watts)
            });
    }
    gpu
}

fn first_hwmon(dev: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dev.join("hwmon"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.into_iter().next()
}

/// One card from `rocm-smi --showproductname --showmeminfo vram --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RocmCard {
    /// From the `cardN` key.
    pub index: u32,
    pub name: Option<String>,
    pub gfx: Option<String>,
    pub vram_total_mib: Option<u64>,
    pub vram_used_mib: Option<u64>,
}

/// Parses `rocm-smi --showproductname --showmeminfo vram --json`. Key spelling changed across
/// `ROCm` releases (`Card series` / `Card Series`), so keys are matched case-insensitively;
/// non-`cardN` keys (`system`) are ignored.
pub fn parse_rocm_smi_json(text: &str) -> Result<Vec<RocmCard>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let obj = value.as_object().ok_or("not a JSON object")?;
    let mut cards: Vec<RocmCard> = obj
        .iter()
        .filter_map(|(key, card)| {
            let index = key.strip_prefix("card")?.parse().ok()?;
            let card = card.as_object()?;
            // The first of `names` present with a real value.
            let get = |names: &[&str]| {
                names.iter().find_map(|n| {
                    let (_, v) = card.iter().find(|(k, _)| k.eq_ignore_ascii_case(n))?;
                    let text = match v {
                        serde_json::Value::String(s) => s.trim().to_owned(),
                        serde_json::Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    (!text.is_empty() && !text.eq_ignore_ascii_case("N/A")).then_some(text)
                })
            };
            let bytes = |names: &[&str]| get(names)?.parse::<u64>().ok().map(exec::bytes_to_mib);
            Some(RocmCard {
                index,
                name: get(&["Card Series", "Marketing Name", "Card SKU"]),
                gfx: get(&["GFX Version"]),
                vram_total_mib: bytes(&["VRAM Total Memory (B)"]),
                vram_used_mib: bytes(&["VRAM Total Used Memory (B)"]),
            })
        })
        .collect();
    cards.sort_by_key(|c| c.index);
    Ok(cards)
}

/// Fills what sysfs lacked from `rocm-smi`, matching cards by position.
fn merge(gpus: &mut [GpuInfo], cards: &[RocmCard]) {
    if gpus.len() != cards.len() {
        return;
    }
    for (gpu, card) in gpus.iter_mut().zip(cards) {
        if card.name.is_some()
            && gpu
                .name
                .as_deref()
                .is_none_or(|n| n.starts_with("AMD GPU 0x"))
        {
            gpu.name.clone_from(&card.name);
        }
        if gpu.compute_capability.is_none() {
            gpu.compute_capability.clone_from(&card.gfx);
        }
        if gpu.vram_total_mib.is_none() {
            gpu.vram_total_mib = card.vram_total_mib;
            gpu.vram_free_mib = card
                .vram_total_mib
                .zip(card.vram_used_mib)
                .map(|(t, u)| t.saturating_sub(u));
        }
    }
}

fn from_rocm(cards: &[RocmCard]) -> Vec<GpuInfo> {
    cards
        .iter()
        .map(|c| {
            let mut gpu = GpuInfo::new(GpuVendor::Amd, c.index, GpuSource::RocmSmi);
            gpu.name.clone_from(&c.name);
            gpu.compute_capability.clone_from(&c.gfx);
            gpu.vram_total_mib = c.vram_total_mib;
            gpu.vram_free_mib = c
                .vram_total_mib
                .zip(c.vram_used_mib)
                .map(|(t, u)| t.saturating_sub(u));
            gpu
        })
        .collect()
}

/// Reads sysfs under `sys_root`, then asks `rocm-smi` for names when sysfs found AMD GPUs.
pub(crate) async fn probe(sys_root: PathBuf, budget: Duration) -> AmdOutcome {
    let start = Instant::now();
    let deadline = start + budget;
    let sysfs = tokio::time::timeout(
        budget,
        tokio::task::spawn_blocking(move || probe_sysfs(&sys_root)),
    )
    .await;
    let sysfs_ms = exec::elapsed_ms(start);
    let (mut gpus, sysfs) = match sysfs {
        Ok(Ok(Ok(gpus))) => {
            let detail = format!("{} AMD GPU(s)", gpus.len());
            (gpus, Attempt::new(AttemptOutcome::Ok, detail, sysfs_ms))
        }
        Ok(Ok(Err(why))) => (
            Vec::new(),
            Attempt::new(AttemptOutcome::NotFound, why, sysfs_ms),
        ),
        Ok(Err(join)) => (
            Vec::new(),
            Attempt::new(AttemptOutcome::Failed, join.to_string(), sysfs_ms),
        ),
        Err(_) => (
            Vec::new(),
            Attempt::new(AttemptOutcome::Timeout, "sysfs did not answer", sysfs_ms),
        ),
    };
    // Without sysfs GPUs, only a visible `/dev/kfd` (ROCm compute device) is worth a slow rocm-smi.
    if gpus.is_empty() && !Path::new("/dev/kfd").exists() {
        return AmdOutcome {
            gpus,
            sysfs,
            rocm_smi: Attempt::skipped("no AMD GPU in sysfs and no /dev/kfd"),
        };
    }
    let Some(rocm_smi) = exec::find_program("rocm-smi", EXTRA_DIRS) else {
        return AmdOutcome {
            gpus,
            sysfs,
            rocm_smi: Attempt::new(
                AttemptOutcome::NotFound,
                "rocm-smi not on PATH or in /opt/rocm/bin",
                0,
            ),
        };
    };
    let t = Instant::now();
    let args = ["--showproductname", "--showmeminfo", "vram", "--json"];
    let attempt = match exec::run(&rocm_smi, &args, deadline).await {
        Ok(out) if out.success() => match parse_rocm_smi_json(&out.stdout) {
            Ok(cards) => {
                if gpus.is_empty() {
                    gpus = from_rocm(&cards);
                } else {
                    merge(&mut gpus, &cards);
                }
                Attempt::new(
                    AttemptOutcome::Ok,
                    format!("{} card(s)", cards.len()),
                    exec::elapsed_ms(t),
                )
            }
            Err(why) => Attempt::new(AttemptOutcome::Failed, why, exec::elapsed_ms(t)),
        },
        Ok(out) => Attempt::new(AttemptOutcome::Failed, out.reason(), exec::elapsed_ms(t)),
        Err(e @ RunError::Timeout(_)) => {
            Attempt::new(AttemptOutcome::Timeout, e.to_string(), exec::elapsed_ms(t))
        }
        Err(e) => Attempt::new(AttemptOutcome::Failed, e.to_string(), exec::elapsed_ms(t)),
    };
    AmdOutcome {
        gpus,
        sysfs,
        rocm_smi: attempt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gfx_targets() {
        assert_eq!(gfx_target(90402).as_deref(), Some("gfx942"));
        assert_eq!(gfx_target(90010).as_deref(), Some("gfx90a"));
        assert_eq!(gfx_target(110_000).as_deref(), Some("gfx1100"));
        assert_eq!(gfx_target(0), None);
    }

    #[test]
    fn properties_parse_and_skip_junk() {
        let p = parse_properties("simd_count 304\nvendor_id 4098\nbogus\nname x\n");
        assert_eq!(p.get("simd_count"), Some(&304));
        assert_eq!(p.get("vendor_id"), Some(&4098));
        assert!(!p.contains_key("name"));
    }

    #[test]
    fn rocm_smi_rejects_garbage_without_panicking() {
        assert!(parse_rocm_smi_json("WARNING: no AMD GPU").is_err());
        assert!(parse_rocm_smi_json("[]").is_err());
        assert!(parse_rocm_smi_json("{}").unwrap().is_empty());
        let cards = parse_rocm_smi_json(
            r#"{"card0": {"Card series": "N/A", "VRAM Total Memory (B)": 1048576}, "system": {}}"#,
        )
        .unwrap();
        assert_eq!(cards.len(), 1);
        assert_eq!(cards[0].name, None);
        assert_eq!(cards[0].vram_total_mib, Some(1));
        let cards =
            parse_rocm_smi_json(r#"{"card0": {"Card series": "N/A", "Card SKU": "D65210"}}"#)
                .unwrap();
        assert_eq!(cards[0].name.as_deref(), Some("D65210"));
    }

    #[test]
    fn empty_root_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        assert!(probe_sysfs(dir.path()).is_err());
    }
}
