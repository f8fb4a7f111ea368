//! `basis service install`: write the unit (systemd) or property list (launchd) that runs
//! the supervisor at boot or login, atomically; then enable and start it where the service
//! manager is reachable, or say exactly which commands to run. Never claims to have enabled
//! what it did not. A different file already there is replaced only with `force`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::manager::{Cmd, Manager, Reach, Target};
use super::spec::{self, ServiceSpec};
use super::{Applied, MARKER, Scope, Step, StepOutcome};
use crate::config::{Dirs, atomic};
use crate::domain::{ErrorCode, Problem};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::supervisor::{ManagedBy, Presence, probe};

/// The unit file's mode: not secret (it names paths only), readable by the manager.
const FILE_MODE: u32 = 0o644;
/// How long to wait for the supervisor the manager started to show up.
const UP_TIMEOUT: Duration = Duration::from_secs(15);

/// What to install.
#[derive(Debug, Clone)]
pub struct Input {
    /// The worker env file (default: worker.env in the config directory), as for `start`.
    pub env_file: Option<String>,
    /// The user's service, or the machine's (`/etc/systemd/system`, `/Library/LaunchDaemons`).
    pub scope: Scope,
    /// Print the file and the commands; write and run nothing.
    pub dry_run: bool,
    /// Replace a different file already installed.
    pub force: bool,
    /// Let a system unit run the worker as root.
    pub allow_root: bool,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.env_file.guard("env_file")
    }
}

/// What happened to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    /// There was none: it is (or, in a dry run, would be) created.
    Created,
    /// A different one was (or would be) replaced (`--force`).
    Replaced,
    /// The same file is already installed: nothing written.
    Unchanged,
}

/// The installed service.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub manager: Manager,
    pub scope: Scope,
    /// The unit file (or property list).
    pub path: String,
    /// Its text.
    pub content: String,
    pub change: FileChange,
    /// True when this call wrote the file (false in a dry run, or when it was unchanged).
    pub written: bool,
    /// Who ran the steps: `done` (enabled and started here), `manual` (run them yourself),
    /// `dry_run`.
    pub applied: Applied,
    /// The account the worker runs as.
    pub run_as: String,
    /// The env file the worker runs with.
    pub env_path: String,
    /// The state directory (`basis status` finds the supervisor there).
    pub state_dir: String,
    /// Why the steps were not run, when they were not.
    pub manager_note: Option<String>,
    /// The commands that enable and start the service, and what became of each.
    pub steps: Vec<Step>,
    /// The supervisor the manager started (when `applied` is `done`).
    pub supervisor_pid: Option<u32>,
    /// Things to know (starting at boot without a login, …).
    pub notes: Vec<String>,
    /// What to do next.
    pub next_step: String,
}

/// Installs the service (or, with `dry_run`, shows what would be installed). Takes the
/// `--config` path rather than a resolved `Context`: under sudo the context is resolved for
/// the invoking user ([`spec::context_for`]).
pub async fn run(config_file: Option<&Path>, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let target = Target::for_host(input.scope)?;
    let spec = spec::resolve(
        target.managed_by(),
        config_file,
        input.env_file.as_deref(),
        input.allow_root,
    )?;
    let content = target.render(&spec)?;
    let path = target.path()?;
    let change = compare(&path, &content, input.force)?;
    let mut out = Output {
        manager: target.manager,
        scope: target.scope,
        path: path.display().to_string(),
        content: content.clone(),
        change,
        written: false,
        applied: Applied::DryRun,
        run_as: spec.account.name.clone(),
        env_path: spec.env_path.display().to_string(),
        state_dir: spec.state_dir.display().to_string(),
        manager_note: None,
        steps: Vec::new(),
        supervisor_pid: None,
        notes: notes(target, &spec),
        next_step: String::new(),
    };
    let replaced = change == FileChange::Replaced;
    if input.dry_run {
        out.steps = not_run(target, &target.install_cmds(&path, replaced, false));
        out.manager_note = Some("a dry run: nothing was written or run".to_owned());
        "run it again without --dry-run to install it".clone_into(&mut out.next_step);
        return Ok(out);
    }
    spec::prepare_state_dir(&spec)?;
    if change != FileChange::Unchanged {
        write(target, &path, &content)?;
        out.written = true;
    }
    match target.reach().await {
        Reach::Yes { tool } => enable(target, &spec, &tool, &path, replaced, &mut out).await?,
        Reach::No { reason } => {
            out.applied = Applied::Manual;
            out.steps = not_run(target, &target.install_cmds(&path, replaced, false));
            out.next_step = format!(
                "nothing is enabled yet: run the commands above where {} is reachable (in a login session of {}), then check with `basis service status`",
                target.manager.name(),
                spec.account.name
            );
            out.manager_note = Some(reason);
        }
    }
    Ok(out)
}

/// Enables and starts the installed service through the reachable manager, and waits for
/// its supervisor to come up.
async fn enable(
    target: Target,
    spec: &ServiceSpec,
    tool: &Path,
    path: &Path,
    replaced: bool,
    out: &mut Output,
) -> Result<(), Problem> {
    let dirs = Dirs {
        config_dir: spec
            .env_path
            .parent()
            .map_or_else(PathBuf::new, Path::to_path_buf),
        state_dir: spec.state_dir.clone(),
    };
    if let Presence::Running(info) = probe(&dirs)
        && info.managed_by != Some(target.managed_by())
    {
        return Err(Problem::new(
            ErrorCode::WorkerAlreadyRunning,
            format!(
                "a supervisor started outside the service already runs (pid {}); {} is written but not enabled",
                info.pid, out.path
            ),
        )
        .with_fix("stop it with `basis stop`, then run `basis service install` again: the service then starts the worker"));
    }
    let loaded = target.loaded(tool).await;
    let cmds = target.install_cmds(path, replaced, loaded);
    out.steps = run_steps(target, tool, &cmds, &out.path).await?;
    let Some(pid) = wait_up(&dirs, target.managed_by()).await else {
        let (_, active) = target.state(tool).await;
        return Err(Problem::new(
            ErrorCode::ServiceManagerFailed,
            format!(
                "{} enabled the service, but its supervisor did not come up within {} s (state: {active})",
                target.manager.name(),
                UP_TIMEOUT.as_secs()
            ),
        )
        .with_fix(format!("read why: {}", journal_hint(target))));
    };
    out.supervisor_pid = Some(pid);
    out.applied = Applied::Done;
    out.next_step = format!(
        "it runs now and starts again {}: check it with `basis service status` and `basis status`; worker log: `basis logs`; supervisor messages: {}",
        match target.scope {
            Scope::User => "at every login",
            Scope::System => "at every boot",
        },
        journal_hint(target)
    );
    Ok(())
}

/// What installing `content` at `path` changes; a different file is refused without `force`.
fn compare(path: &Path, content: &str, force: bool) -> Result<FileChange, Problem> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FileChange::Created),
        Err(e) => {
            return Err(Problem::new(
                ErrorCode::IoError,
                format!("cannot read {}: {e}", path.display()),
            )
            .with_fix("make it readable, or remove it"));
        }
    };
    if existing == content {
        return Ok(FileChange::Unchanged);
    }
    if force {
        return Ok(FileChange::Replaced);
    }
    let whose = if existing.contains(MARKER) {
        "an earlier `basis service install` wrote it with other settings"
    } else {
        "basis did not write it"
    };
    Err(Problem::new(
        ErrorCode::ServiceUnitExists,
        format!(
            "{} exists and differs from the one basis would write ({whose})",
            path.display()
        ),
    )
    .with_fix("compare it with `basis service install --dry-run`; --force replaces it"))
}

fn write(target: Target, path: &Path, content: &str) -> Result<(), Problem> {
    atomic::write_atomic(path, content.as_bytes(), FILE_MODE).map_err(|e| {
        let fix = if e.kind() == io::ErrorKind::PermissionDenied && target.scope == Scope::System {
            "a system unit needs root: run `sudo basis service install --system` (the worker still runs as you), or --dry-run to print it".to_owned()
        } else if let Some(link) = atomic::symlink_refused(&e) {
            format!("{} is a symbolic link: remove it, or install by hand from --dry-run", link.display())
        } else {
            "check that the directory exists and is writable".to_owned()
        };
        Problem::new(
            ErrorCode::IoError,
            format!("cannot write {}: {e}", path.display()),
        )
        .with_fix(fix)
    })
}

/// Runs `cmds` in order; the first failure ends the install with the rest left to the user.
async fn run_steps(
    target: Target,
    tool: &Path,
    cmds: &[Cmd],
    path: &str,
) -> Result<Vec<Step>, Problem> {
    let mut steps = Vec::new();
    for (i, cmd) in cmds.iter().enumerate() {
        let ran = cmd.run(tool).await;
        if ran.ok {
            steps.push(Step {
                command: cmd.to_string(),
                outcome: StepOutcome::Ok,
                detail: None,
            });
            continue;
        }
        let rest: Vec<String> = not_run(target, &cmds[i..])
            .into_iter()
            .map(|s| s.command)
            .collect();
        return Err(Problem::new(
            ErrorCode::ServiceManagerFailed,
            format!("{path} is written, but `{cmd}` failed: {}", ran.detail()),
        )
        .with_fix(format!(
            "fix the cause ({}), then run: {}",
            journal_hint(target),
            rest.join(" && ")
        )));
    }
    Ok(steps)
}

/// `cmds` as steps for the user to run (`sudo` in front for a system unit when not root).
pub(super) fn not_run(target: Target, cmds: &[Cmd]) -> Vec<Step> {
    let sudo = target.scope == Scope::System && !nix::unistd::geteuid().is_root();
    cmds.iter()
        .map(|cmd| Step {
            command: if sudo {
                format!("sudo {cmd}")
            } else {
                cmd.to_string()
            },
            outcome: StepOutcome::NotRun,
            detail: None,
        })
        .collect()
}

/// Waits for the supervisor the manager started; its pid, or `None` on timeout.
async fn wait_up(dirs: &Dirs, managed_by: ManagedBy) -> Option<u32> {
    let deadline = tokio::time::Instant::now() + UP_TIMEOUT;
    loop {
        if let Presence::Running(info) = probe(dirs)
            && info.managed_by == Some(managed_by)
        {
            return Some(info.pid);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where the supervisor's own messages go.
pub(super) fn journal_hint(target: Target) -> String {
    match (target.manager, target.scope) {
        (Manager::Systemd, Scope::User) => {
            "`journalctl --user -u basis-worker.service -n 50`".to_owned()
        }
        (Manager::Systemd, Scope::System) => {
            "`journalctl -u basis-worker.service -n 50`".to_owned()
        }
        (Manager::Launchd, _) => "logs/supervisor.log in the state directory".to_owned(),
    }
}

/// Starting at boot: a user unit starts at login unless lingering is on.
fn notes(target: Target, spec: &ServiceSpec) -> Vec<String> {
    let name = &spec.account.name;
    match (target.manager, target.scope) {
        (Manager::Systemd, Scope::User) => {
            if Path::new("/var/lib/systemd/linger").join(name).exists() {
                vec![format!(
                    "lingering is on for {name}: the service starts at boot, without a login"
                )]
            } else {
                vec![format!(
                    "a user service starts when {name} logs in; to start it at boot without a login, run `loginctl enable-linger {name}`"
                )]
            }
        }
        (Manager::Launchd, Scope::User) => vec![format!(
            "a launchd agent starts when {name} logs in; `sudo basis service install --system` starts it at boot"
        )],
        (_, Scope::System) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_file_is_compared_and_refused_unless_forced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("basis-worker.service");
        assert_eq!(compare(&path, "a", false).unwrap(), FileChange::Created);
        std::fs::write(&path, "a").unwrap();
        assert_eq!(compare(&path, "a", false).unwrap(), FileChange::Unchanged);
        let p = compare(&path, "b", false).unwrap_err();
        assert_eq!(p.code, ErrorCode::ServiceUnitExists);
        assert!(
            p.message.contains("basis did not write it"),
            "{}",
            p.message
        );
        std::fs::write(&path, format!("# {MARKER}\nold")).unwrap();
        let p = compare(&path, "b", false).unwrap_err();
        assert!(p.message.contains("earlier"), "{}", p.message);
        assert_eq!(compare(&path, "b", true).unwrap(), FileChange::Replaced);
    }
}
