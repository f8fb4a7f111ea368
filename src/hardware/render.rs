//! Human rendering of a [`HardwareReport`]: a compact checklist for `basis check` without
//! `--json`. One line per finding, then the recommendation, then problems with their fixes.

use std::fmt::Write as _;

use super::report::{
    Attempt, AttemptOutcome, DaemonState, DiskSpace, GpuInfo, HardwareReport, NvidiaAnswer,
    RuntimeState, RuntimeStatus, Severity,
};

const OK: &str = "✓";
const BAD: &str = "✗";
const NONE: &str = "–";

fn gib(mib: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // display only
    let g = mib as f64 / 1024.0;
    format!("{g:.1} GiB")
}

fn attempt(name: &str, a: &Attempt) -> String {
    let outcome = match a.outcome {
        AttemptOutcome::Ok => "ok",
        AttemptOutcome::NotFound => "not found",
        AttemptOutcome::Failed => "failed",
        AttemptOutcome::Timeout => "timeout",
        AttemptOutcome::Skipped => "skipped",
    };
    match &a.detail {
        Some(d) => format!("{name} {outcome} ({d})"),
        None => format!("{name} {outcome}"),
    }
}

fn line(out: &mut String, mark: &str, label: &str, text: &str) {
    let _ = writeln!(out, "  {mark} {label:<10} {text}");
}

fn disk(space: &DiskSpace) -> String {
    match (space.free_mib, &space.mount_point) {
        (Some(free), Some(mp)) => format!("{}: {} free on {mp}", space.path, gib(free)),
        _ => format!(
            "{}: free space unknown ({})",
            space.path,
            space.note.as_deref().unwrap_or("no detail")
        ),
    }
}

fn gpu(g: &GpuInfo) -> String {
    let mut parts = vec![g.name.clone().unwrap_or_else(|| "unknown model".to_owned())];
    match (g.vram_free_mib, g.vram_total_mib) {
        (Some(free), Some(total)) => parts.push(format!("{} of {} free", gib(free), gib(total))),
        (None, Some(total)) if g.unified_memory => parts.push(format!("{} unified", gib(total))),
        (None, Some(total)) => parts.push(gib(total)),
        _ => {}
    }
    if let Some(d) = &g.driver_version {
        parts.push(format!("driver {d}"));
    }
    if let Some(c) = &g.cuda_driver_version {
        parts.push(format!("CUDA {c}"));
    }
    if let Some(c) = &g.compute_capability {
        parts.push(format!("cc {c}"));
    }
    if let Some(t) = g.temperature_c {
        parts.push(format!("{t} °C"));
    }
    if let Some(p) = g.power_w {
        parts.push(format!("{p} W"));
    }
    if let Some(mig) = g.mig.as_ref().filter(|m| m.enabled) {
        parts.push(format!("MIG on, {} device(s)", mig.instances.len()));
    }
    let source = serde_json::to_value(g.source)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!("{} [{source}]", parts.join(" · "))
}

fn runtime(out: &mut String, label: &str, r: &RuntimeStatus) {
    let mark = if r.is_up() { OK } else { BAD };
    let text = match r.state {
        RuntimeState::Up => {
            let version = r
                .version
                .as_deref()
                .map(|v| format!(" v{v}"))
                .unwrap_or_default();
            let models: Vec<&str> = r.models.iter().take(5).map(|m| m.name.as_str()).collect();
            let more = r.models.len().saturating_sub(models.len());
            let more = if more > 0 {
                format!(" +{more}")
            } else {
                String::new()
            };
            format!(
                "up{version} at {} · {} model(s): {}{more}",
                r.url,
                r.models.len(),
                models.join(", ")
            )
        }
        state => {
            let state = serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!(
                "{state} at {} ({})",
                r.url,
                r.detail.as_deref().unwrap_or("no detail")
            )
        }
    };
    line(out, mark, label, &text);
}

impl HardwareReport {
    /// The report as a compact checklist for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "basis check ({} ms)", self.total_ms);
        self.render_host(&mut out);
        self.render_devices(&mut out);
        self.render_advice(&mut out);
        out
    }

    fn render_host(&self, out: &mut String) {
        let h = &self.host;
        let mut host = vec![h.os.clone().unwrap_or_else(|| "unknown OS".to_owned())];
        if let Some(k) = &h.kernel {
            host.push(format!("kernel {k}"));
        }
        host.push(h.arch.clone());
        if let Some(cpu) = &h.cpu_model {
            host.push(format!("{cpu} ({} threads)", h.cpu_threads.unwrap_or(0)));
        }
        if let (Some(avail), Some(total)) = (h.memory_available_mib, h.memory_total_mib) {
            host.push(format!("RAM {} of {} free", gib(avail), gib(total)));
        }
        if h.in_container {
            host.push(format!(
                "in {} container",
                h.container_hint.as_deref().unwrap_or("a")
            ));
        }
        if h.wsl {
            host.push("WSL".to_owned());
        }
        line(out, OK, "host", &host.join(" · "));
        line(out, OK, "state dir", &disk(&h.state_dir));
        if let Some(m) = &h.model_dir {
            line(out, OK, "model dir", &disk(m));
        }
    }

    fn render_devices(&self, out: &mut String) {
        let s = &self.sources;
        if s.nvidia == NvidiaAnswer::None {
            let text = format!(
                "none · {} · {}",
                attempt("nvml", &s.nvml),
                attempt("nvidia-smi", &s.nvidia_smi)
            );
            line(out, NONE, "nvidia", &text);
        }
        if self.gpus.iter().all(|g| g.vendor != super::GpuVendor::Amd) {
            line(
                out,
                NONE,
                "amd",
                &format!("none · {}", attempt("sysfs", &s.amd_sysfs)),
            );
        }
        for g in &self.gpus {
            let label = format!("gpu {}", g.index);
            line(out, OK, &label, &gpu(g));
        }

        let c = &self.containers;
        let docker = match (c.docker_cli.as_deref(), c.docker_daemon) {
            (None, _) => (NONE, "not installed".to_owned()),
            (Some(_), DaemonState::Reachable) => {
                let nv = if c.nvidia_runtime == Some(true) {
                    "nvidia runtime registered"
                } else {
                    "no nvidia runtime"
                };
                (OK, format!("daemon up · {nv}"))
            }
            (Some(_), state) => {
                let state = match state {
                    DaemonState::PermissionDenied => "permission denied",
                    DaemonState::Timeout => "timed out",
                    _ => "unreachable",
                };
                let detail = c.docker_detail.as_deref().unwrap_or("no detail");
                (BAD, format!("daemon {state} ({detail})"))
            }
        };
        line(out, docker.0, "docker", &docker.1);
        runtime(out, "ollama", &self.runtimes.ollama);
        runtime(out, "vllm", &self.runtimes.vllm);
    }

    fn render_advice(&self, out: &mut String) {
        let r = &self.recommendation;
        let _ = writeln!(out, "→ run {}: {}", r.runtime, r.reason);
        if let (Some(fit), Some(usable)) = (r.max_model, r.usable_vram_mib) {
            let on = r.mig_uuid.as_deref().map_or_else(
                || format!("GPU {}", r.gpu_index.unwrap_or(0)),
                str::to_owned,
            );
            let _ = writeln!(
                out,
                "  fits ≈ fp16 {}B · int8 {}B · q4 {}B params ({usable} MiB usable on {on})",
                fit.fp16_params_b, fit.int8_params_b, fit.q4_params_b
            );
        }
        if let Some(m) = &r.suggested_model {
            let _ = writeln!(out, "  try {m}");
        }
        if self.problems.is_empty() {
            let _ = writeln!(out, "no problems");
        } else {
            let _ = writeln!(out, "problems:");
            for p in &self.problems {
                let sev = match p.severity {
                    Severity::Info => "info",
                    Severity::Warning => "warning",
                    Severity::Error => "error",
                };
                let _ = writeln!(out, "  [{sev}] {}: {}", p.code, p.message);
                let _ = writeln!(out, "      fix: {}", p.fix);
            }
        }
    }
}
