//! The service managers `basis service` installs into: where the unit (or property list)
//! goes, which `systemctl` / `launchctl` commands install, remove and inspect it, whether the
//! manager is reachable from here, and running those commands (tokio, with timeouts).

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::spec::ServiceSpec;
use super::{LAUNCHD_LABEL, Scope, UNIT_NAME, plist, unit};
use crate::domain::{ErrorCode, Problem};
use crate::supervisor::ManagedBy;

/// How long a quick query (`show`, `is-enabled`, `print`) may take.
const QUICK: Duration = Duration::from_secs(10);
/// How long a command that starts or stops the service may take: a stop drains the worker
/// for up to 30 s, and systemd waits up to `TimeoutStopSec=60`.
const SLOW: Duration = Duration::from_secs(90);

/// The host's service manager.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Manager {
    Systemd,
    Launchd,
}

/// A manager and the instance of it (the user's or the machine's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub manager: Manager,
    pub scope: Scope,
}

/// Whether the manager can be driven from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Its control tool, found on `PATH`, answered.
    Yes { tool: PathBuf },
    /// Why not (no tool on `PATH`, not booted with it, no session bus, …).
    No { reason: String },
}

/// One command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: &'static str,
    pub args: Vec<String>,
    pub timeout: Duration,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The first lines of its output, for a report (stderr first).
    pub fn detail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(3)
            .collect();
        let detail = lines.join(" | ");
        if crate::guard::check_text("output", &detail).is_err() {
            return "[output withheld: it looked like a secret]".to_owned();
        }
        detail
    }
}

impl Manager {
    /// `systemd` or `launchd`.
    pub fn name(self) -> &'static str {
        match self {
            Manager::Systemd => "systemd",
            Manager::Launchd => "launchd",
        }
    }
}

impl Target {
    /// systemd on Linux, launchd on macOS.
    pub fn for_host(scope: Scope) -> Result<Self, Problem> {
        let manager = if cfg!(target_os = "macos") {
            Manager::Launchd
        } else if cfg!(target_os = "linux") {
            Manager::Systemd
        } else {
            return Err(Problem::new(
                ErrorCode::ServiceUnsupported,
                "basis installs services into systemd (Linux) and launchd (macOS) only",
            )
            .with_fix("start the worker at boot with this OS's own service manager running `basis supervise --env PATH`, or use `basis start`"));
        };
        Ok(Self { manager, scope })
    }

    pub fn managed_by(self) -> ManagedBy {
        match (self.manager, self.scope) {
            (Manager::Systemd, Scope::User) => ManagedBy::SystemdUser,
            (Manager::Systemd, Scope::System) => ManagedBy::SystemdSystem,
            (Manager::Launchd, Scope::User) => ManagedBy::LaunchdAgent,
            (Manager::Launchd, Scope::System) => ManagedBy::LaunchdDaemon,
        }
    }

    /// The control tool: `systemctl` or `launchctl`.
    pub fn tool(self) -> &'static str {
        match self.manager {
            Manager::Systemd => "systemctl",
            Manager::Launchd => "launchctl",
        }
    }

    /// The file's text for `spec`.
    pub fn render(self, spec: &ServiceSpec) -> Result<String, Problem> {
        match self.manager {
            Manager::Systemd => unit::render(spec),
            Manager::Launchd => plist::render(spec),
        }
    }

    /// Where the file goes: `$XDG_CONFIG_HOME/systemd/user/` (or `~/.config/…`),
    /// `/etc/systemd/system/`, `~/Library/LaunchAgents/`, `/Library/LaunchDaemons/`.
    pub fn path(self) -> Result<PathBuf, Problem> {
        let plist = format!("{LAUNCHD_LABEL}.plist");
        Ok(match (self.manager, self.scope) {
            (Manager::Systemd, Scope::System) => Path::new("/etc/systemd/system").join(UNIT_NAME),
            (Manager::Launchd, Scope::System) => Path::new("/Library/LaunchDaemons").join(plist),
            (Manager::Systemd, Scope::User) => {
                let config = std::env::var_os("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map_or_else(|| home().map(|h| h.join(".config")), Ok)?;
                config.join("systemd").join("user").join(UNIT_NAME)
            }
            (Manager::Launchd, Scope::User) => {
                home()?.join("Library").join("LaunchAgents").join(plist)
            }
        })
    }

    /// systemd's `WantedBy=` symlink to the unit, which `disable` removes (removed by hand
    /// when systemd cannot be reached).
    pub fn wants_link(self, path: &Path) -> Option<PathBuf> {
        let target = match (self.manager, self.scope) {
            (Manager::Launchd, _) => return None,
            (Manager::Systemd, Scope::User) => "default.target.wants",
            (Manager::Systemd, Scope::System) => "multi-user.target.wants",
        };
        Some(path.parent()?.join(target).join(UNIT_NAME))
    }

    /// The launchd domain: `gui/UID` for an agent, `system` for a daemon.
    fn domain(self) -> String {
        match self.scope {
            Scope::User => format!("gui/{}", nix::unistd::geteuid().as_raw()),
            Scope::System => "system".to_owned(),
        }
    }

    fn service(self) -> String {
        format!("{}/{LAUNCHD_LABEL}", self.domain())
    }

    fn cmd(self, args: &[&str], timeout: Duration) -> Cmd {
        let mut all: Vec<String> = Vec::new();
        if self.manager == Manager::Systemd && self.scope == Scope::User {
            all.push("--user".to_owned());
        }
        all.extend(args.iter().map(|a| (*a).to_owned()));
        Cmd {
            program: self.tool(),
            args: all,
            timeout,
        }
    }

    /// The commands that make the installed file take effect. `replaced`: an older file was
    /// replaced (a running service must restart to use the new one); `loaded`: launchd has
    /// the job loaded already.
    pub fn install_cmds(self, path: &Path, replaced: bool, loaded: bool) -> Vec<Cmd> {
        match self.manager {
            Manager::Systemd => {
                let mut cmds = vec![self.cmd(&["daemon-reload"], SLOW)];
                if replaced {
                    cmds.push(self.cmd(&["enable", UNIT_NAME], SLOW));
                    cmds.push(self.cmd(&["restart", UNIT_NAME], SLOW));
                } else {
                    cmds.push(self.cmd(&["enable", "--now", UNIT_NAME], SLOW));
                }
                cmds
            }
            Manager::Launchd => {
                let path = path.display().to_string();
                let mut cmds = Vec::new();
                if loaded && replaced {
                    cmds.push(self.cmd(&["bootout", &self.service()], SLOW));
                }
                cmds.push(self.cmd(&["enable", &self.service()], QUICK));
                if loaded && !replaced {
                    cmds.push(self.cmd(&["kickstart", &self.service()], QUICK));
                } else {
                    cmds.push(self.cmd(&["bootstrap", &self.domain(), &path], SLOW));
                }
                cmds
            }
        }
    }

    /// The commands that stop and unregister the service before its file is removed, and
    /// those after.
    pub fn uninstall_cmds(self, loaded: bool) -> (Vec<Cmd>, Vec<Cmd>) {
        match self.manager {
            Manager::Systemd => (
                vec![self.cmd(&["disable", "--now", UNIT_NAME], SLOW)],
                vec![self.cmd(&["daemon-reload"], SLOW)],
            ),
            Manager::Launchd if loaded => (
                vec![self.cmd(&["bootout", &self.service()], SLOW)],
                Vec::new(),
            ),
            Manager::Launchd => (Vec::new(), Vec::new()),
        }
    }

    /// What to run by hand after the file was removed while the manager was out of reach:
    /// stop a service still loaded, and forget the unit.
    pub fn cleanup_cmds(self) -> Vec<Cmd> {
        match self.manager {
            Manager::Systemd => vec![
                self.cmd(&["stop", UNIT_NAME], SLOW),
                self.cmd(&["daemon-reload"], SLOW),
            ],
            Manager::Launchd => vec![self.cmd(&["bootout", &self.service()], SLOW)],
        }
    }

    /// Whether the manager answers from here.
    pub async fn reach(self) -> Reach {
        let Some(tool) = find_on_path(self.tool()) else {
            return Reach::No {
                reason: format!("`{}` is not on PATH", self.tool()),
            };
        };
        let probe = match self.manager {
            Manager::Systemd => {
                if !Path::new("/run/systemd/system").is_dir() {
                    return Reach::No {
                        reason: "systemd is not running on this host (no /run/systemd/system)"
                            .to_owned(),
                    };
                }
                self.cmd(&["show", "--property=Version"], QUICK)
            }
            Manager::Launchd => self.cmd(&["print", &self.domain()], QUICK),
        };
        let ran = probe.run(&tool).await;
        if ran.ok {
            Reach::Yes { tool }
        } else {
            Reach::No {
                reason: format!("`{probe}` failed: {}", ran.detail()),
            }
        }
    }

    /// launchd: is the job loaded? (systemd: not asked; always false.)
    pub async fn loaded(self, tool: &Path) -> bool {
        match self.manager {
            Manager::Systemd => false,
            Manager::Launchd => {
                self.cmd(&["print", &self.service()], QUICK)
                    .run(tool)
                    .await
                    .ok
            }
        }
    }

    /// `(enabled, active)` as the manager words them: `systemctl is-enabled` / `is-active`,
    /// or launchd's loaded state and the job's `state`.
    pub async fn state(self, tool: &Path) -> (String, String) {
        match self.manager {
            Manager::Systemd => {
                let word = |ran: Ran| {
                    let out = ran.stdout.lines().next().unwrap_or("").trim().to_owned();
                    if out.is_empty() { ran.detail() } else { out }
                };
                let enabled = self.cmd(&["is-enabled", UNIT_NAME], QUICK).run(tool).await;
                let active = self.cmd(&["is-active", UNIT_NAME], QUICK).run(tool).await;
                (word(enabled), word(active))
            }
            Manager::Launchd => {
                let ran = self.cmd(&["print", &self.service()], QUICK).run(tool).await;
                if !ran.ok {
                    return ("not loaded".to_owned(), "inactive".to_owned());
                }
                let state = ran
                    .stdout
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("state = "))
                    .unwrap_or("unknown")
                    .to_owned();
                ("loaded".to_owned(), state)
            }
        }
    }
}

impl Cmd {
    /// Runs it (by `tool`'s path) with no stdin, capturing its output; a timeout kills it.
    pub async fn run(&self, tool: &Path) -> Ran {
        let child = Command::new(tool)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(self.timeout, child).await {
            Ok(Ok(out)) => Ran {
                ok: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Ok(Err(e)) => Ran {
                ok: false,
                stdout: String::new(),
                stderr: format!("cannot run {}: {e}", tool.display()),
            },
            Err(_) => Ran {
                ok: false,
                stdout: String::new(),
                stderr: format!("timed out after {} s", self.timeout.as_secs()),
            },
        }
    }
}

impl fmt::Display for Cmd {
    /// As typed in a POSIX shell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program)?;
        for arg in &self.args {
            write!(f, " {}", sh_quote(arg))?;
        }
        Ok(())
    }
}

/// `arg` quoted for a POSIX shell (as is when it needs no quoting).
pub fn sh_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// `HOME`, or the account's home in the password database.
fn home() -> Result<PathBuf, Problem> {
    if let Some(home) = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Ok(home);
    }
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
        .ok_or_else(|| {
            Problem::new(ErrorCode::ConfigInvalid, "cannot find your home directory")
                .with_fix("set HOME to your home directory")
        })
}

/// The first executable `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: Target = Target {
        manager: Manager::Systemd,
        scope: Scope::User,
    };
    const SYSTEM: Target = Target {
        manager: Manager::Systemd,
        scope: Scope::System,
    };

    fn shown(cmds: &[Cmd]) -> Vec<String> {
        cmds.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn systemd_commands() {
        let p = Path::new("/x/basis-worker.service");
        assert_eq!(
            shown(&USER.install_cmds(p, false, false)),
            [
                "systemctl --user daemon-reload",
                "systemctl --user enable --now basis-worker.service"
            ]
        );
        assert_eq!(
            shown(&SYSTEM.install_cmds(p, true, false)),
            [
                "systemctl daemon-reload",
                "systemctl enable basis-worker.service",
                "systemctl restart basis-worker.service"
            ]
        );
        let (before, after) = USER.uninstall_cmds(false);
        assert_eq!(
            shown(&before),
            ["systemctl --user disable --now basis-worker.service"]
        );
        assert_eq!(shown(&after), ["systemctl --user daemon-reload"]);
        assert_eq!(
            USER.wants_link(Path::new("/c/systemd/user/basis-worker.service")),
            Some(PathBuf::from(
                "/c/systemd/user/default.target.wants/basis-worker.service"
            ))
        );
        assert_eq!(
            SYSTEM.path().unwrap(),
            Path::new("/etc/systemd/system/basis-worker.service")
        );
    }

    #[test]
    fn launchd_commands() {
        let agent = Target {
            manager: Manager::Launchd,
            scope: Scope::User,
        };
        let daemon = Target {
            manager: Manager::Launchd,
            scope: Scope::System,
        };
        let uid = nix::unistd::geteuid().as_raw();
        let p = Path::new("/Users/ada/Library/LaunchAgents/dev.basis.worker.plist");
        assert_eq!(
            shown(&agent.install_cmds(p, false, false)),
            [
                format!("launchctl enable gui/{uid}/dev.basis.worker"),
                format!("launchctl bootstrap gui/{uid} {}", p.display()),
            ]
        );
        // Unchanged and loaded: started if stopped, not reloaded.
        assert_eq!(
            shown(&daemon.install_cmds(p, false, true)),
            [
                "launchctl enable system/dev.basis.worker",
                "launchctl kickstart system/dev.basis.worker"
            ]
        );
        assert_eq!(
            shown(&daemon.install_cmds(p, true, true))[0],
            "launchctl bootout system/dev.basis.worker"
        );
        assert_eq!(
            shown(&daemon.uninstall_cmds(true).0),
            ["launchctl bootout system/dev.basis.worker"]
        );
        assert!(daemon.uninstall_cmds(false).0.is_empty());
        assert_eq!(
            daemon.path().unwrap(),
            Path::new("/Library/LaunchDaemons/dev.basis.worker.plist")
        );
        assert_eq!(agent.wants_link(p), None);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("basis-worker.service"), "basis-worker.service");
        assert_eq!(sh_quote("/a b/c"), "'/a b/c'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }

    #[tokio::test]
    async fn commands_run_with_a_timeout() {
        let sh = Path::new("/bin/sh");
        let ok = Cmd {
            program: "sh",
            args: vec!["-c".into(), "echo out; echo err >&2".into()],
            timeout: Duration::from_secs(10),
        };
        let ran = ok.run(sh).await;
        assert!(ran.ok);
        assert_eq!(ran.detail(), "err");
        let slow = Cmd {
            program: "sh",
            args: vec!["-c".into(), "sleep 10".into()],
            timeout: Duration::from_millis(100),
        };
        let ran = slow.run(sh).await;
        assert!(!ran.ok);
        assert!(ran.detail().contains("timed out"), "{}", ran.detail());
    }
}
