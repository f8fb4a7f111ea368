//! `basis service uninstall`: stop and disable the service where the manager is reachable,
//! remove the file `basis service install` wrote (and systemd's `WantedBy=` link to it), and
//! let the manager forget it. Removes only a file basis wrote, unless forced. Idempotent.

use std::io;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::install::{journal_hint, not_run};
use super::manager::{Cmd, Manager, Reach, Target};
use super::{Applied, MARKER, Scope, Step, StepOutcome};
use crate::domain::{ErrorCode, Problem};

/// What to uninstall.
#[derive(Debug, Clone)]
pub struct Input {
    /// The user's service, or the machine's.
    pub scope: Scope,
    /// Say what would be done; change nothing.
    pub dry_run: bool,
    /// Remove the file even when basis did not write it.
    pub force: bool,
}

/// What the uninstall did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub manager: Manager,
    pub scope: Scope,
    /// The unit file (or property list).
    pub path: String,
    /// Whether it existed.
    pub was_installed: bool,
    /// True when this call removed it.
    pub removed: bool,
    /// Who ran the steps: `done` (here), `manual` (run them yourself), `dry_run`.
    pub applied: Applied,
    /// Why the steps were not run, when they were not.
    pub manager_note: Option<String>,
    /// The commands that stop and unregister the service, and what became of each.
    pub steps: Vec<Step>,
    /// What to do next.
    pub next_step: String,
}

/// Uninstalls the service (or, with `dry_run`, says what would be done).
pub async fn run(input: &Input) -> Result<Output, Problem> {
    let target = Target::for_host(input.scope)?;
    let path = target.path()?;
    let was_installed = match std::fs::read_to_string(&path) {
        Ok(text) if !text.contains(MARKER) && !input.force => {
            return Err(Problem::new(
                ErrorCode::ServiceUnitExists,
                format!(
                    "{} was not written by `basis service install`",
                    path.display()
                ),
            )
            .with_fix("leave it, or remove it anyway with --force"));
        }
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(Problem::new(
                ErrorCode::IoError,
                format!("cannot read {}: {e}", path.display()),
            )
            .with_fix("make it readable, or remove it by hand"));
        }
    };
    let mut out = Output {
        manager: target.manager,
        scope: target.scope,
        path: path.display().to_string(),
        was_installed,
        removed: false,
        applied: Applied::DryRun,
        manager_note: None,
        steps: Vec::new(),
        next_step: String::new(),
    };
    if input.dry_run {
        let (before, after) = target.uninstall_cmds(true);
        out.steps = not_run(target, &[before, after].concat());
        out.manager_note = Some("a dry run: nothing was removed or run".to_owned());
        "run it again without --dry-run to uninstall".clone_into(&mut out.next_step);
        return Ok(out);
    }
    let reach = if was_installed {
        target.reach().await
    } else {
        Reach::No {
            reason: "nothing is installed".to_owned(),
        }
    };
    match reach {
        Reach::Yes { tool } => {
            out.applied = Applied::Done;
            let (before, after) = target.uninstall_cmds(target.loaded(&tool).await);
            out.steps = run_all(target, &tool, &before, "nothing was removed").await?;
            remove(target, &path)?;
            out.removed = true;
            let done = run_all(target, &tool, &after, "the file is removed").await?;
            out.steps.extend(done);
            "the service is stopped and gone; `basis start` still starts the worker by hand"
                .clone_into(&mut out.next_step);
        }
        Reach::No { reason } => {
            remove(target, &path)?;
            out.removed = was_installed;
            if was_installed {
                out.applied = Applied::Manual;
                out.steps = not_run(target, &target.cleanup_cmds());
                out.next_step = format!(
                    "{} is not reachable here: if the service still runs, run the commands above where it is (in a login session)",
                    target.manager.name()
                );
            } else {
                // Nothing was installed: nothing is left to do, here or anywhere.
                out.applied = Applied::Done;
                let flag = match target.scope {
                    Scope::User => "",
                    Scope::System => " --system",
                };
                out.next_step =
                    format!("nothing was installed; `basis service install{flag}` installs it");
            }
            out.manager_note = Some(reason);
        }
    }
    Ok(out)
}

/// Runs `cmds`; a failure ends the uninstall with `state` saying how far it got.
async fn run_all(
    target: Target,
    tool: &Path,
    cmds: &[Cmd],
    state: &str,
) -> Result<Vec<Step>, Problem> {
    let mut steps = Vec::new();
    for cmd in cmds {
        let ran = cmd.run(tool).await;
        if !ran.ok {
            return Err(Problem::new(
                ErrorCode::ServiceManagerFailed,
                format!("`{cmd}` failed ({state}): {}", ran.detail()),
            )
            .with_fix(format!(
                "fix the cause ({}), then run `basis service uninstall` again",
                journal_hint(target)
            )));
        }
        steps.push(Step {
            command: cmd.to_string(),
            outcome: StepOutcome::Ok,
            detail: None,
        });
    }
    Ok(steps)
}

/// Removes the file and systemd's `WantedBy=` symlink to it; missing ones are fine.
fn remove(target: Target, path: &Path) -> Result<(), Problem> {
    let link = target
        .wants_link(path)
        .filter(|l| std::fs::symlink_metadata(l).is_ok_and(|m| m.file_type().is_symlink()));
    for file in [Some(path), link.as_deref()].into_iter().flatten() {
        match std::fs::remove_file(file) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                let fix = if e.kind() == io::ErrorKind::PermissionDenied
                    && target.scope == Scope::System
                {
                    "a system unit needs root: run `sudo basis service uninstall --system`"
                } else {
                    "remove it by hand"
                };
                return Err(Problem::new(
                    ErrorCode::IoError,
                    format!("cannot remove {}: {e}", file.display()),
                )
                .with_fix(fix));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_takes_the_wanted_by_link_too() {
        let tmp = tempfile::tempdir().unwrap();
        let target = Target {
            manager: Manager::Systemd,
            scope: Scope::User,
        };
        let path = tmp.path().join("basis-worker.service");
        std::fs::write(&path, "x").unwrap();
        let wants = tmp.path().join("default.target.wants");
        std::fs::create_dir(&wants).unwrap();
        std::os::unix::fs::symlink(&path, wants.join("basis-worker.service")).unwrap();
        remove(target, &path).unwrap();
        assert!(!path.exists());
        assert!(std::fs::symlink_metadata(wants.join("basis-worker.service")).is_err());
        remove(target, &path).unwrap();
    }
}
