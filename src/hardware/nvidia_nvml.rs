//! NVIDIA through NVML, loading `libnvidia-ml.so.1` at run time (no link-time dependency on the
//! driver). Blocking: call it from `spawn_blocking`. A field NVML will not give is `null`; only a
//! library that will not load or initialise fails the probe.

use std::ffi::OsStr;
use std::path::Path;

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::error::NvmlError;

use super::exec::{bytes_to_mib, round1};
use super::report::{GpuInfo, GpuSource, GpuVendor, MigInfo, MigInstance};

/// The name the dynamic loader resolves through its cache and `LD_LIBRARY_PATH`.
#[cfg(not(windows))]
pub const DEFAULT_LIBRARY: &str = "libnvidia-ml.so.1";
/// The name Windows resolves through its DLL search path.
#[cfg(windows)]
pub const DEFAULT_LIBRARY: &str = "nvml.dll";

/// Where drivers and container runtimes put NVML when the loader's cache does not know it.
pub const LIBRARY_CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
    "/usr/lib/aarch64-linux-gnu/libnvidia-ml.so.1",
    "/usr/lib64/libnvidia-ml.so.1",
    "/usr/lib/wsl/lib/libnvidia-ml.so.1",
    "/usr/local/nvidia/lib64/libnvidia-ml.so.1",
    "/usr/local/nvidia/lib/libnvidia-ml.so.1",
];

/// Why NVML gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NvmlFailure {
    /// No `libnvidia-ml.so.1` could be loaded.
    LibraryMissing(String),
    /// The library loaded but NVML would not initialise (driver not loaded, version mismatch,
    /// no permission…) or could not count devices.
    InitFailed(String),
}

impl std::fmt::Display for NvmlFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LibraryMissing(s) | Self::InitFailed(s) => f.write_str(s),
        }
    }
}

/// What NVML reported.
#[derive(Debug, Clone)]
pub struct NvmlGpus {
    /// The library that loaded.
    pub library: String,
    pub gpus: Vec<GpuInfo>,
}

/// Loads NVML (default name, then [`LIBRARY_CANDIDATES`] that exist) and reads every GPU.
pub fn probe_blocking() -> Result<NvmlGpus, NvmlFailure> {
    let (nvml, library) = load()?;
    let count = nvml
        .device_count()
        .map_err(|e| NvmlFailure::InitFailed(format!("{library}: counting devices: {e}")))?;
    let driver = nvml.sys_driver_version().ok();
    let cuda = nvml.sys_cuda_driver_version().ok().map(cuda_version_string);
    let gpus = (0..count)
        .map(|i| {
            let mut gpu = read_device(&nvml, i);
            gpu.driver_version.clone_from(&driver);
            gpu.cuda_driver_version.clone_from(&cuda);
            gpu
        })
        .collect();
    Ok(NvmlGpus { library, gpus })
}

fn load() -> Result<(Nvml, String), NvmlFailure> {
    let mut tried = Vec::new();
    match Nvml::builder().lib_path(OsStr::new(DEFAULT_LIBRARY)).init() {
        Ok(nvml) => return Ok((nvml, DEFAULT_LIBRARY.to_owned())),
        Err(e) if is_load_error(&e) => tried.push(format!(
            "{DEFAULT_LIBRARY}: {}",
            load_reason(&e, DEFAULT_LIBRARY)
        )),
        Err(e) => {
            return Err(NvmlFailure::InitFailed(format!(
                "{DEFAULT_LIBRARY} loaded, init failed: {e}"
            )));
        }
    }
    let mut absent = Vec::new();
    for path in LIBRARY_CANDIDATES {
        if !Path::new(path).exists() {
            absent.push(*path);
            continue;
        }
        match Nvml::builder().lib_path(OsStr::new(path)).init() {
            Ok(nvml) => return Ok((nvml, (*path).to_owned())),
            Err(e) if is_load_error(&e) => tried.push(format!("{path}: {}", load_reason(&e, path))),
            Err(e) => {
                return Err(NvmlFailure::InitFailed(format!(
                    "{path} loaded, init failed: {e}"
                )));
            }
        }
    }
    if !absent.is_empty() {
        tried.push(format!("not at {}", absent.join(", ")));
    }
    Err(NvmlFailure::LibraryMissing(tried.join("; ")))
}

fn is_load_error(e: &NvmlError) -> bool {
    matches!(
        e,
        NvmlError::LibloadingError(_) | NvmlError::FailedToLoadSymbol(_)
    )
}

/// The loader's reason, without repeating the library name it starts with.
fn load_reason(e: &NvmlError, lib: &str) -> String {
    let text = match e {
        NvmlError::LibloadingError(inner) => inner.to_string(),
        other => other.to_string(),
    };
    match text.strip_prefix(lib).and_then(|t| t.strip_prefix(": ")) {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// `12040` → `12.4`, `11080` → `11.8`.
pub fn cuda_version_string(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

fn read_device(nvml: &Nvml, index: u32) -> GpuInfo {
    let mut gpu = GpuInfo::new(GpuVendor::Nvidia, index, GpuSource::Nvml);
    let Ok(dev) = nvml.device_by_index(index) else {
        return gpu;
    };
    gpu.name = dev.name().ok();
    gpu.uuid = dev.uuid().ok();
    if let Ok(mem) = dev.memory_info() {
        gpu.vram_total_mib = Some(bytes_to_mib(mem.total));
        gpu.vram_free_mib = Some(bytes_to_mib(mem.free));
    }
    gpu.compute_capability = dev
        .cuda_compute_capability()
        .ok()
        .map(|c| format!("{}.{}", c.major, c.minor));
    gpu.utilization_pct = dev.utilization_rates().ok().map(|u| u.gpu);
    gpu.temperature_c = dev.temperature(TemperatureSensor::Gpu).ok();
    gpu.power_w = dev
        .power_usage()
        .ok()
        .map(|mw| round1(f64::from(mw) / 1000.0));
    gpu.persistence_mode = dev.is_in_persistent_mode().ok();
    gpu.pci_bus_id = dev.pci_info().ok().map(|p| p.bus_id);
    gpu.mig = dev.mig_mode().ok().map(|mode| {
        let enabled = mode.current == 1;
        MigInfo {
            enabled,
            pending_enabled: Some(mode.pending == 1),
            instances: if enabled {
                mig_instances(&dev)
            } else {
                Vec::new()
            },
        }
    });
    gpu
}

fn mig_instances(dev: &nvml_wrapper::Device<'_>) -> Vec<MigInstance> {
    let max = dev.mig_device_count().unwrap_or(0);
    (0..max)
        .filter_map(|i| {
            // Empty slots answer `NotFound`; skip them.
            let mig = dev.mig_device_by_index(i).ok()?;
            let mem = mig.memory_info().ok();
            Some(MigInstance {
                id: i,
                uuid: mig.uuid().ok(),
                name: mig.name().ok(),
                memory_mib: mem.as_ref().map(|m| bytes_to_mib(m.total)),
                memory_free_mib: mem.as_ref().map(|m| bytes_to_mib(m.free)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_versions() {
        assert_eq!(cuda_version_string(12040), "12.4");
        assert_eq!(cuda_version_string(11080), "11.8");
        assert_eq!(cuda_version_string(12090), "12.9");
        assert_eq!(cuda_version_string(13000), "13.0");
    }

    /// On a machine without the driver this is the absence path: a library-missing failure that
    /// names what was tried. With a driver it must list at least one GPU.
    #[test]
    fn probe_answers_either_way() {
        match probe_blocking() {
            Ok(found) => assert!(!found.library.is_empty()),
            Err(NvmlFailure::LibraryMissing(why)) => {
                assert!(why.contains(DEFAULT_LIBRARY), "{why}");
            }
            Err(NvmlFailure::InitFailed(why)) => assert!(!why.is_empty()),
        }
    }
}
