//! NVIDIA through `nvidia-smi`: the fallback when NVML cannot be loaded in-process. The parsers
//! are pure so recorded outputs of real cards can be tested anywhere.

use std::path::Path;
use std::time::Instant;

use super::exec::{self, Output, RunError};
use super::report::{Attempt, AttemptOutcome, GpuInfo, GpuSource, GpuVendor, MigInfo, MigInstance};

/// The fields asked of `nvidia-smi --query-gpu`, in order.
pub const QUERY_FIELDS: &[&str] = &[
    "index",
    "name",
    "uuid",
    "memory.total",
    "memory.free",
    "driver_version",
    "compute_cap",
    "utilization.gpu",
    "temperature.gpu",
    "power.draw",
    "persistence_mode",
    "mig.mode.current",
    "pci.bus_id",
];

/// Directories searched after `PATH`: the WSL driver store and the NVIDIA container / k8s layout.
pub const EXTRA_DIRS: &[&str] = &["/usr/bin", "/usr/lib/wsl/lib", "/usr/local/nvidia/bin"];

/// Output that is not `--query-gpu … --format=csv,noheader,nounits`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmiParseError {
    #[error("line {line}: expected {expected} comma-separated fields, found {found}")]
    FieldCount {
        line: usize,
        expected: usize,
        found: usize,
    },
}

/// Parses `nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits`.
pub fn parse_query_csv(text: &str) -> Result<Vec<GpuInfo>, SmiParseError> {
    parse_query_csv_with(text, QUERY_FIELDS)
}

/// Parses `--query-gpu` CSV output for the given field list. Values such as `[N/A]`,
/// `[Not Supported]`, `N/A` or empty become `null`; stray units and spaces are tolerated; a comma
/// inside the name (never seen, but possible) is kept as part of the name.
pub fn parse_query_csv_with(text: &str, fields: &[&str]) -> Result<Vec<GpuInfo>, SmiParseError> {
    let mut gpus = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let values = split_fields(line, fields).ok_or(SmiParseError::FieldCount {
            line: n + 1,
            expected: fields.len(),
            found: line.split(',').count(),
        })?;
        let fallback_index = u32::try_from(gpus.len()).unwrap_or(u32::MAX);
        let mut gpu = GpuInfo::new(GpuVendor::Nvidia, fallback_index, GpuSource::NvidiaSmi);
        for (field, value) in fields.iter().zip(&values) {
            apply_field(&mut gpu, field, value);
        }
        gpus.push(gpu);
    }
    Ok(gpus)
}

/// Splits one line into exactly `fields.len()` values, folding surplus commas into `name`.
fn split_fields(line: &str, fields: &[&str]) -> Option<Vec<String>> {
    let parts: Vec<&str> = line.split(',').collect();
    if parts.len() == fields.len() {
        return Some(parts.iter().map(|p| p.trim().to_owned()).collect());
    }
    let name_at = fields.iter().position(|f| *f == "name")?;
    if parts.len() < fields.len() {
        return None;
    }
    let surplus = parts.len() - fields.len();
    let mut values: Vec<String> = parts[..name_at]
        .iter()
        .map(|p| p.trim().to_owned())
        .collect();
    values.push(
        parts[name_at..=name_at + surplus]
            .join(",")
            .trim()
            .to_owned(),
    );
    values.extend(
        parts[name_at + surplus + 1..]
            .iter()
            .map(|p| p.trim().to_owned()),
    );
    Some(values)
}

fn apply_field(gpu: &mut GpuInfo, field: &str, raw: &str) {
    let Some(v) = value(raw) else { return };
    match field {
        "index" => {
            if let Some(i) = leading_number(v).and_then(|n| n.parse().ok()) {
                gpu.index = i;
            }
        }
        "name" => gpu.name = Some(v.to_owned()),
        "uuid" => gpu.uuid = Some(v.to_owned()),
        "memory.total" => gpu.vram_total_mib = int(v),
        "memory.free" => gpu.vram_free_mib = int(v),
        "driver_version" => gpu.driver_version = Some(v.to_owned()),
        "compute_cap" => gpu.compute_capability = Some(v.to_owned()),
        "utilization.gpu" => gpu.utilization_pct = int(v).and_then(|n| u32::try_from(n).ok()),
        "temperature.gpu" => gpu.temperature_c = int(v).and_then(|n| u32::try_from(n).ok()),
        "power.draw" => {
            gpu.power_w = leading_number(v)
                .and_then(|n| n.parse::<f64>().ok())
                .map(exec::round1);
        }
        "persistence_mode" => gpu.persistence_mode = on_off(v),
        "mig.mode.current" => {
            gpu.mig = on_off(v).map(|enabled| MigInfo {
                enabled,
                ..MigInfo::default()
            });
        }
        "pci.bus_id" => gpu.pci_bus_id = Some(v.to_owned()),
        _ => {}
    }
}

/// The value, or `None` for the ways `nvidia-smi` says "unknown".
fn value(raw: &str) -> Option<&str> {
    let v = raw.trim();
    let unknown = v.is_empty()
        || v.starts_with('[')
        || v.eq_ignore_ascii_case("N/A")
        || v.eq_ignore_ascii_case("Not Supported")
        || v.eq_ignore_ascii_case("Unknown Error");
    (!unknown).then_some(v)
}

/// The leading decimal number of `v` (`"81920 MiB"` → `"81920"`, `"68.53"` → `"68.53"`).
fn leading_number(v: &str) -> Option<&str> {
    let end = v
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(v.len(), |(i, _)| i);
    (end > 0).then(|| &v[..end])
}

fn int(v: &str) -> Option<u64> {
    let n = leading_number(v)?;
    // Some drivers print integers as `12.00`; keep the whole part.
    n.split('.').next()?.parse().ok()
}

fn on_off(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "enabled" | "on" | "yes" | "1" => Some(true),
        "disabled" | "off" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// The CUDA version from the `nvidia-smi` table header (`CUDA Version: 12.4`) or from
/// `nvidia-smi -q` (`CUDA Version    : 12.4`).
pub fn parse_cuda_version(text: &str) -> Option<String> {
    let at = text.find("CUDA Version")? + "CUDA Version".len();
    let rest = text[at..].trim_start_matches([' ', ':', '\t']);
    let version = leading_number(rest)?;
    version.contains('.').then(|| version.to_owned())
}

/// MIG devices from `nvidia-smi -L`, as `(parent GPU index, instance)`.
///
/// ```text
/// GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-…)
///   MIG 3g.40gb     Device  0: (UUID: MIG-…)
/// ```
pub fn parse_mig_list(text: &str) -> Vec<(u32, MigInstance)> {
    let mut out = Vec::new();
    let mut gpu: Option<u32> = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("GPU ") {
            gpu = leading_number(rest).and_then(|n| n.parse().ok());
        } else if let (Some(rest), Some(parent)) = (line.strip_prefix("MIG "), gpu) {
            let Some((profile, after)) = rest.split_once("Device") else {
                continue;
            };
            let id = leading_number(after.trim_start()).and_then(|n| n.parse().ok());
            let uuid = after
                .split_once("UUID:")
                .map(|(_, u)| u.trim().trim_end_matches(')').trim().to_owned())
                .filter(|u| !u.is_empty());
            if let Some(id) = id {
                out.push((
                    parent,
                    MigInstance {
                        id,
                        uuid,
                        name: Some(profile.trim().to_owned()).filter(|p| !p.is_empty()),
                        memory_mib: None,
                        memory_free_mib: None,
                    },
                ));
            }
        }
    }
    out
}

/// Result of the `nvidia-smi` fallback.
#[derive(Debug, Clone)]
pub(crate) struct SmiOutcome {
    pub attempt: Attempt,
    pub gpus: Vec<GpuInfo>,
}

/// Runs `nvidia-smi` (query + CUDA header, then `-L` when MIG is on), all before `deadline`.
pub(crate) async fn probe(deadline: Instant) -> SmiOutcome {
    let start = Instant::now();
    let Some(smi) = exec::find_program("nvidia-smi", EXTRA_DIRS) else {
        return SmiOutcome {
            attempt: Attempt::new(
                AttemptOutcome::NotFound,
                format!(
                    "nvidia-smi not found on PATH or in {}",
                    EXTRA_DIRS.join(", ")
                ),
                exec::elapsed_ms(start),
            ),
            gpus: Vec::new(),
        };
    };
    probe_program(&smi, start, deadline).await
}

/// Runs the given `nvidia-smi` (a fake one in tests).
pub(crate) async fn probe_program(smi: &Path, start: Instant, deadline: Instant) -> SmiOutcome {
    let (query, header) = tokio::join!(query(smi, deadline), cuda_header(smi, deadline));
    let mut gpus = match query {
        Ok(gpus) => gpus,
        Err((outcome, reason)) => {
            return SmiOutcome {
                attempt: Attempt::new(
                    outcome,
                    format!("{}: {reason}", exec::display(smi)),
                    exec::elapsed_ms(start),
                ),
                gpus: Vec::new(),
            };
        }
    };
    for gpu in &mut gpus {
        gpu.cuda_driver_version.clone_from(&header);
    }
    if gpus
        .iter()
        .any(|g| g.mig.as_ref().is_some_and(|m| m.enabled))
        && let Ok(out) = exec::run(smi, &["-L"], deadline).await
    {
        attach_mig(&mut gpus, &parse_mig_list(&out.stdout));
    }
    SmiOutcome {
        attempt: Attempt::new(
            AttemptOutcome::Ok,
            format!("{}: {} GPU(s)", exec::display(smi), gpus.len()),
            exec::elapsed_ms(start),
        ),
        gpus,
    }
}

fn attach_mig(gpus: &mut [GpuInfo], instances: &[(u32, MigInstance)]) {
    for (parent, inst) in instances {
        if let Some(mig) = gpus
            .iter_mut()
            .find(|g| g.index == *parent)
            .and_then(|g| g.mig.as_mut())
        {
            mig.instances.push(inst.clone());
        }
    }
}

async fn query(smi: &Path, deadline: Instant) -> Result<Vec<GpuInfo>, (AttemptOutcome, String)> {
    let mut fields: Vec<&str> = QUERY_FIELDS.to_vec();
    let mut out = run_query(smi, &fields, deadline).await?;
    // Drivers before ~510 do not know `compute_cap`: ask again without it.
    let unknown_field =
        out.stdout.contains("not a valid field") || out.stderr.contains("not a valid field");
    if !out.success() && unknown_field {
        fields.retain(|f| *f != "compute_cap");
        out = run_query(smi, &fields, deadline).await?;
    }
    if !out.success() {
        return Err((AttemptOutcome::Failed, out.reason()));
    }
    let gpus = parse_query_csv_with(&out.stdout, &fields)
        .map_err(|e| (AttemptOutcome::Failed, format!("unexpected output: {e}")))?;
    if gpus.is_empty() {
        return Err((AttemptOutcome::Failed, "no GPU listed".to_owned()));
    }
    Ok(gpus)
}

async fn run_query(
    smi: &Path,
    fields: &[&str],
    deadline: Instant,
) -> Result<Output, (AttemptOutcome, String)> {
    let query = format!("--query-gpu={}", fields.join(","));
    exec::run(smi, &[&query, "--format=csv,noheader,nounits"], deadline)
        .await
        .map_err(|e| match e {
            RunError::Timeout(_) => (AttemptOutcome::Timeout, e.to_string()),
            RunError::Spawn(_) => (AttemptOutcome::Failed, e.to_string()),
        })
}

/// `nvidia-smi -q -d COMPUTE` is the cheapest output that carries the CUDA version header.
async fn cuda_header(smi: &Path, deadline: Instant) -> Option<String> {
    let out = exec::run(smi, &["-q", "-d", "COMPUTE"], deadline)
        .await
        .ok()?;
    parse_cuda_version(&out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_line() {
        let text = "0, NVIDIA A100-SXM4-80GB, GPU-aaaa, 81920, 81037, 535.129.03, 8.0, 0, 31, 61.52, Enabled, Disabled, 00000000:07:00.0\n";
        let gpus = parse_query_csv(text).unwrap();
        assert_eq!(gpus.len(), 1);
        let g = &gpus[0];
        assert_eq!(g.name.as_deref(), Some("NVIDIA A100-SXM4-80GB"));
        assert_eq!(g.vram_total_mib, Some(81920));
        assert_eq!(g.vram_free_mib, Some(81037));
        assert_eq!(g.compute_capability.as_deref(), Some("8.0"));
        assert_eq!(g.power_w, Some(61.5));
        assert_eq!(g.persistence_mode, Some(true));
        assert_eq!(g.mig.as_ref().map(|m| m.enabled), Some(false));
        assert_eq!(g.pci_bus_id.as_deref(), Some("00000000:07:00.0"));
    }

    #[test]
    fn unknowns_become_null() {
        let text = "1, Some GPU, [N/A], [Not Supported], N/A, 470.1, [N/A], [Not Supported], , [Unknown Error], [N/A], [N/A], [N/A]";
        let g = &parse_query_csv(text).unwrap()[0];
        assert_eq!(g.index, 1);
        assert_eq!(g.uuid, None);
        assert_eq!(g.vram_total_mib, None);
        assert_eq!(g.vram_free_mib, None);
        assert_eq!(g.utilization_pct, None);
        assert_eq!(g.temperature_c, None);
        assert_eq!(g.power_w, None);
        assert_eq!(g.persistence_mode, None);
        assert_eq!(g.mig, None);
        assert_eq!(g.pci_bus_id, None);
    }

    #[test]
    fn comma_in_name_and_stray_units_do_not_break_it() {
        let text = "0,  Weird, Name GPU ,GPU-x, 24564 MiB, 23000 MiB, 550.1, 8.9, 3 %, 40, 21.87 W, Disabled, [N/A], 00000000:01:00.0";
        let g = &parse_query_csv(text).unwrap()[0];
        assert_eq!(g.name.as_deref(), Some("Weird, Name GPU"));
        assert_eq!(g.vram_total_mib, Some(24564));
        assert_eq!(g.utilization_pct, Some(3));
        assert_eq!(g.power_w, Some(21.9));
    }

    #[test]
    fn short_lines_are_an_error_not_a_panic() {
        let err = parse_query_csv("No devices were found").unwrap_err();
        assert_eq!(
            err,
            SmiParseError::FieldCount {
                line: 1,
                expected: 13,
                found: 1
            }
        );
        assert!(parse_query_csv("").unwrap().is_empty());
        assert!(parse_query_csv(",,,,,,,,,,,,,,,,,,,,").is_ok());
    }

    #[cfg(unix)]
    fn fake_smi(dir: &Path, body: &str) -> std::path::PathBuf {
        exec::test_support::fake_program(dir, "nvidia-smi", body)
    }

    #[cfg(unix)]
    async fn run_fake(smi: &Path, budget: std::time::Duration) -> SmiOutcome {
        // Another test thread forking while the script was open for writing can make exec fail
        // with ETXTBSY for a moment; retry that only.
        for _ in 0..20 {
            let start = Instant::now();
            let out = probe_program(smi, start, start + budget).await;
            if !out
                .attempt
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("busy"))
            {
                return out;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("fake nvidia-smi stayed busy");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn fake_smi_answers_with_mig_instances_and_cuda_version() {
        let dir = tempfile::tempdir().unwrap();
        let smi = fake_smi(
            dir.path(),
            r#"case "$1" in
  -L) printf 'GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-x)\n  MIG 3g.40gb     Device  0: (UUID: MIG-abc)\n' ;;
  -q) printf 'Driver Version : 535.129.03\nCUDA Version : 12.2\n' ;;
  *) echo '0, NVIDIA A100-SXM4-80GB, GPU-x, 81920, 81037, 535.129.03, 8.0, [N/A], 33, 74.10, Enabled, Enabled, 00000000:07:00.0' ;;
esac"#,
        );
        let out = run_fake(&smi, std::time::Duration::from_secs(5)).await;
        assert!(out.attempt.is_ok(), "{:?}", out.attempt);
        let g = &out.gpus[0];
        assert_eq!(g.cuda_driver_version.as_deref(), Some("12.2"));
        let mig = g.mig.as_ref().unwrap();
        assert_eq!(mig.instances.len(), 1);
        assert_eq!(mig.instances[0].uuid.as_deref(), Some("MIG-abc"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn hung_smi_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let smi = fake_smi(dir.path(), "sleep 10");
        let start = Instant::now();
        let out = run_fake(&smi, std::time::Duration::from_millis(300)).await;
        assert!(start.elapsed() < std::time::Duration::from_millis(1500));
        assert_eq!(
            out.attempt.outcome,
            AttemptOutcome::Timeout,
            "{:?}",
            out.attempt
        );
        assert!(out.gpus.is_empty());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn failing_smi_gives_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let smi = fake_smi(
            dir.path(),
            "echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\"; exit 9",
        );
        let out = run_fake(&smi, std::time::Duration::from_secs(5)).await;
        assert_eq!(out.attempt.outcome, AttemptOutcome::Failed);
        let detail = out.attempt.detail.unwrap();
        assert!(
            detail.contains("exit status 9") && detail.contains("couldn't communicate"),
            "{detail}"
        );
    }

    #[test]
    fn cuda_version_from_either_header() {
        assert_eq!(
            parse_cuda_version(
                "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4     |"
            )
            .as_deref(),
            Some("12.4")
        );
        assert_eq!(
            parse_cuda_version("Driver Version                            : 535.129.03\nCUDA Version                              : 12.2\n").as_deref(),
            Some("12.2")
        );
        assert_eq!(parse_cuda_version("CUDA Version : N/A"), None);
        assert_eq!(parse_cuda_version("nothing"), None);
    }
}
