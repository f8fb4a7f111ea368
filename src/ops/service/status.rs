//! `basis service status`: is the unit (or property list) installed, did basis write it, and,
//! where the manager is reachable, is it enabled and running. Read-only.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::install::journal_hint;
use super::manager::{Manager, Reach, Target};
use super::{MARKER, Scope};
use crate::domain::Problem;

/// Which service to look at.
#[derive(Debug, Clone)]
pub struct Input {
    /// The user's service, or the machine's.
    pub scope: Scope,
}

/// The service's state.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub manager: Manager,
    pub scope: Scope,
    /// The unit file (or property list).
    pub path: String,
    /// Whether the file is there.
    pub installed: bool,
    /// Whether `basis service install` wrote it (absent when not installed).
    pub written_by_basis: Option<bool>,
    /// True when the service manager answered here.
    pub manager_reachable: bool,
    /// Why it did not, when it did not.
    pub manager_note: Option<String>,
    /// systemd: `systemctl is-enabled` (enabled, disabled, …); launchd: loaded or not loaded.
    pub enabled: Option<String>,
    /// systemd: `systemctl is-active` (active, inactive, failed, …); launchd: the job's state
    /// (running, not running, …).
    pub active: Option<String>,
    /// What to do next.
    pub next_step: String,
}

/// Reports the service's state.
pub async fn run(input: &Input) -> Result<Output, Problem> {
    let target = Target::for_host(input.scope)?;
    let path = target.path()?;
    let text = std::fs::read_to_string(&path).ok();
    let installed = text.is_some() || path.exists();
    let mut out = Output {
        manager: target.manager,
        scope: target.scope,
        path: path.display().to_string(),
        installed,
        written_by_basis: installed.then(|| text.as_deref().is_some_and(|t| t.contains(MARKER))),
        manager_reachable: false,
        manager_note: None,
        enabled: None,
        active: None,
        next_step: String::new(),
    };
    match target.reach().await {
        Reach::Yes { tool } => {
            out.manager_reachable = true;
            let (enabled, active) = target.state(&tool).await;
            out.enabled = Some(enabled);
            out.active = Some(active);
        }
        Reach::No { reason } => out.manager_note = Some(reason),
    }
    out.next_step = next_step(target, &out);
    Ok(out)
}

fn next_step(target: Target, out: &Output) -> String {
    let flag = match target.scope {
        Scope::User => "",
        Scope::System => " --system",
    };
    if !out.installed {
        return format!(
            "not installed: `basis service install{flag}` keeps the worker running across reboots"
        );
    }
    if !out.manager_reachable {
        return format!(
            "{} is not reachable here, so whether it is enabled and running is unknown; `basis status` shows the supervisor",
            target.manager.name()
        );
    }
    let running = matches!(out.active.as_deref(), Some("active" | "running"));
    let enabled = matches!(out.enabled.as_deref(), Some("enabled" | "loaded"));
    let (ctl, name) = match target.manager {
        Manager::Systemd => (
            match target.scope {
                Scope::User => "systemctl --user",
                Scope::System => "sudo systemctl",
            },
            "basis-worker",
        ),
        Manager::Launchd => ("", ""),
    };
    match (enabled, running) {
        (_, true) => "it runs: `basis status` shows the worker".to_owned(),
        (true, false) if target.manager == Manager::Systemd => format!(
            "enabled but not running (stopped with `basis stop`, or it failed): `{ctl} start {name}` starts it; {} says why it stopped",
            journal_hint(target)
        ),
        (false, false) if target.manager == Manager::Systemd => format!(
            "installed but not enabled: `{ctl} enable --now {name}` (or `basis service install{flag}`) enables and starts it"
        ),
        (true, false) => format!(
            "loaded but not running (stopped with `basis stop`, or it failed): {} says why",
            journal_hint(target)
        ),
        (false, false) => {
            format!("installed but not loaded: `basis service install{flag}` loads and starts it")
        }
    }
}
