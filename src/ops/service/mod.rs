//! `basis service install|uninstall|status`: keep the supervisor running across reboots under
//! the host's service manager (systemd on Linux, launchd on macOS). CLI only (no MCP tool).
//!
//! - [`spec`]: what the service runs (this executable, the env file, the state dir, the
//!   account), resolved and checked the way `start` resolves them.
//! - [`unit`], [`plist`]: the systemd unit and the launchd property list, as pure functions of
//!   a [`spec::ServiceSpec`] (both built and tested on every OS).
//! - [`manager`]: where the file goes, which `systemctl` / `launchctl` commands install,
//!   remove and inspect it, and running them (tokio, with timeouts).
//! - [`install`], [`uninstall`], [`status`]: the three operations.
//!
//! The unit runs `basis supervise` in the foreground (it never forks), with `--managed-by` so
//! that `basis stop` can say the service comes back at the next boot; `basis status`, `stop`
//! and `logs` reach it through its control socket as they reach one `basis start` started.

pub mod install;
pub mod manager;
pub mod plist;
pub mod spec;
pub mod status;
pub mod uninstall;
pub mod unit;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::supervisor::ManagedBy;

pub use manager::Manager;

/// The systemd unit's name.
pub const UNIT_NAME: &str = "basis-worker.service";
/// The launchd job's label.
pub const LAUNCHD_LABEL: &str = "dev.basis.worker";
/// The first line of every file `basis service install` writes; `uninstall` removes only a
/// file that carries it (unless forced).
pub const MARKER: &str = "Written by `basis service install`";

/// Which service manager instance: the user's own, or the machine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The user's service manager (`systemctl --user`, a launchd agent): runs as this user.
    User,
    /// The machine's (`/etc/systemd/system`, `/Library/LaunchDaemons`): needs root to install;
    /// the worker runs as the invoking user.
    System,
}

impl Scope {
    pub fn from_flag(system: bool) -> Self {
        if system { Self::System } else { Self::User }
    }
}

/// Who carried out an operation's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// A dry run: nothing was written, removed or run.
    DryRun,
    /// The service manager ran every step here (an install: enabled and started, and its
    /// supervisor came up).
    Done,
    /// The service manager is not reachable from here (see `manager_note`): the file was
    /// written (or removed), and the steps are left for you to run where it is.
    Manual,
}

/// One `systemctl` / `launchctl` command of an operation, and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    /// The command, as typed in a shell.
    pub command: String,
    pub outcome: StepOutcome,
    /// Its output's first lines, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What became of a [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It ran and succeeded.
    Ok,
    /// It ran and failed (see `detail`).
    Failed,
    /// It was not run (a dry run, the service manager is not reachable here, or an earlier
    /// step failed): run it yourself.
    NotRun,
}

/// What `basis stop` adds after stopping a supervisor a service manager runs: it stays
/// stopped until the next boot (or login), and how to stop it for good.
pub fn after_stop(managed_by: ManagedBy) -> String {
    let uid = nix::unistd::geteuid().as_raw();
    match managed_by {
        ManagedBy::SystemdUser => format!(
            "it ran as the systemd user service {UNIT_NAME}: a clean stop is not restarted, but it starts again at your next login or boot; `systemctl --user stop basis-worker` is the systemd way to stop it, `systemctl --user start basis-worker` starts it again, and `basis service uninstall` (or `systemctl --user disable --now basis-worker`) stops it for good"
        ),
        ManagedBy::SystemdSystem => format!(
            "it ran as the systemd service {UNIT_NAME}: a clean stop is not restarted, but it starts again at the next boot; `sudo systemctl stop basis-worker` is the systemd way to stop it, `sudo systemctl start basis-worker` starts it again, and `sudo basis service uninstall --system` (or `sudo systemctl disable --now basis-worker`) stops it for good"
        ),
        ManagedBy::LaunchdAgent => format!(
            "it ran as the launchd agent {LAUNCHD_LABEL}: a clean stop is not restarted, but it starts again at your next login; `launchctl kickstart gui/{uid}/{LAUNCHD_LABEL}` starts it again, and `basis service uninstall` stops it for good"
        ),
        ManagedBy::LaunchdDaemon => format!(
            "it ran as the launchd daemon {LAUNCHD_LABEL}: a clean stop is not restarted, but it starts again at the next boot; `sudo launchctl kickstart system/{LAUNCHD_LABEL}` starts it again, and `sudo basis service uninstall --system` stops it for good"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_stop_says_how_to_stop_for_good() {
        let user = after_stop(ManagedBy::SystemdUser);
        assert!(
            user.contains("`systemctl --user stop basis-worker`"),
            "{user}"
        );
        assert!(user.contains("`basis service uninstall`"), "{user}");
        let system = after_stop(ManagedBy::SystemdSystem);
        assert!(system.contains("sudo systemctl disable --now basis-worker"));
        assert!(after_stop(ManagedBy::LaunchdAgent).contains("gui/"));
        assert!(after_stop(ManagedBy::LaunchdDaemon).contains("system/dev.basis.worker"));
    }
}
