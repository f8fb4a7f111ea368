//! [`ServiceSpec`]: what the service runs and as whom, resolved the way `start` resolves it
//! (the same env file, checked complete; the same state dir), plus the checks that make the
//! unit work once installed: the account can read the env file and write the state dir, and
//! a system unit's private `/tmp` hides nothing it needs.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::unistd::User;

use super::Scope;
use crate::config::{BASIS_HOME, Overrides};
use crate::domain::{ErrorCode, Problem};
use crate::ops::Context;
use crate::ops::start::check_env;
use crate::supervisor::ManagedBy;
use crate::supervisor::logs::SUPERVISOR_LOG;

/// Variables copied from this environment into the unit, so the service resolves the same
/// config and state directories (`BASIS_CONFIG` comes from `--config` instead).
pub const PASSED_ENV: [&str; 3] = [BASIS_HOME, "XDG_CONFIG_HOME", "XDG_STATE_HOME"];

/// The variable `--config` is read from; the unit sets it when a config file was given.
pub const CONFIG_ENV: &str = "BASIS_CONFIG";

/// The account the service runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// Everything a unit or property list is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub managed_by: ManagedBy,
    /// This executable, canonical.
    pub exe: PathBuf,
    /// The worker env file (absolute).
    pub env_path: PathBuf,
    /// The state dir `basis status` and `stop` look in (absolute).
    pub state_dir: PathBuf,
    /// `(name, value)` pairs for the service's environment.
    pub environment: Vec<(String, String)>,
    pub account: Account,
}

impl ServiceSpec {
    pub fn scope(&self) -> Scope {
        match self.managed_by {
            ManagedBy::SystemdUser | ManagedBy::LaunchdAgent => Scope::User,
            ManagedBy::SystemdSystem | ManagedBy::LaunchdDaemon => Scope::System,
        }
    }

    /// `basis supervise` and its arguments (after the executable).
    pub fn supervise_args(&self) -> Result<Vec<String>, Problem> {
        Ok(vec![
            "supervise".to_owned(),
            "--env".to_owned(),
            path_text(&self.env_path)?.to_owned(),
            "--state-dir".to_owned(),
            path_text(&self.state_dir)?.to_owned(),
            "--managed-by".to_owned(),
            self.managed_by.as_str().to_owned(),
        ])
    }

    /// `logs/supervisor.log` in the state dir (launchd's stdout and stderr).
    pub fn supervisor_log(&self) -> PathBuf {
        self.state_dir.join("logs").join(SUPERVISOR_LOG)
    }
}

/// A path as text: unit files and property lists are UTF-8.
pub fn path_text(path: &Path) -> Result<&str, Problem> {
    path.to_str().ok_or_else(|| {
        Problem::new(
            ErrorCode::InvalidArgument,
            format!(
                "{} is not valid UTF-8 and cannot be written into a service file",
                path.display()
            ),
        )
        .with_fix("use paths that are valid UTF-8")
    })
}

/// Who the service runs as. User scope: this user. System scope: the user who ran `sudo`
/// (`SUDO_USER`) when run as root through sudo, else this user; root only with `allow_root`.
pub fn account(scope: Scope, allow_root: bool) -> Result<Account, Problem> {
    let euid = nix::unistd::geteuid();
    let sudo_user = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root");
    let user = match (scope, sudo_user) {
        (Scope::System, Some(name)) if euid.is_root() => User::from_name(&name)
            .map_err(|e| lookup_failed(&name, &e.to_string()))?
            .ok_or_else(|| lookup_failed(&name, "no such user"))?,
        _ => User::from_uid(euid)
            .map_err(|e| lookup_failed(&euid.to_string(), &e.to_string()))?
            .ok_or_else(|| lookup_failed(&euid.to_string(), "no such user"))?,
    };
    if scope == Scope::System && user.uid.is_root() && !allow_root {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            "the system unit would run the worker as root",
        )
        .with_fix(
            "run it through sudo from the account that should run the worker (`sudo basis service install --system` runs it as $SUDO_USER), or add --allow-root if root is what you mean",
        ));
    }
    Ok(Account {
        name: user.name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir,
    })
}

fn lookup_failed(who: &str, why: &str) -> Problem {
    Problem::new(
        ErrorCode::IoError,
        format!("cannot look up the user {who}: {why}"),
    )
    .with_fix("run it as a user listed in the password database (getent passwd)")
}

/// The operations' context as `account` sees it: this process's environment, with `HOME` set
/// to the account's home when the account is not this process's user (under sudo).
pub fn context_for(config_file: Option<&Path>, account: &Account) -> Result<Context, Problem> {
    let other = account.uid != nix::unistd::geteuid().as_raw();
    let home = account.home.display().to_string();
    let env = move |name: &str| {
        if other && name == "HOME" {
            return Some(home.clone());
        }
        std::env::var(name).ok()
    };
    Context::load_with(config_file, &Overrides::default(), &env)
}

/// Resolves and checks what the service runs.
pub fn resolve(
    managed_by: ManagedBy,
    config_file: Option<&Path>,
    env_file: Option<&str>,
    allow_root: bool,
) -> Result<ServiceSpec, Problem> {
    let scope = match managed_by {
        ManagedBy::SystemdUser | ManagedBy::LaunchdAgent => Scope::User,
        ManagedBy::SystemdSystem | ManagedBy::LaunchdDaemon => Scope::System,
    };
    let account = account(scope, allow_root)?;
    let ctx = context_for(config_file, &account)?;
    let env_path = ctx.allowed.check(&ctx.env_path(env_file))?;
    check_env(&env_path)?;
    readable_by(&env_path, &account)?;
    let exe = std::env::current_exe()
        .and_then(fs::canonicalize)
        .map_err(|e| {
            Problem::new(
                ErrorCode::IoError,
                format!("cannot find this executable's path: {e}"),
            )
            .with_fix("run basis from its installed path (not a deleted or replaced file)")
        })?;
    let state_dir = std::path::absolute(&ctx.dirs().state_dir).map_err(|e| {
        Problem::new(ErrorCode::ConfigInvalid, format!("state_dir: {e}"))
            .with_fix("set state_dir to an absolute path")
    })?;
    let mut environment: Vec<(String, String)> = PASSED_ENV
        .iter()
        .filter_map(|name| {
            let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
            Some(((*name).to_owned(), value))
        })
        .collect();
    if let Some(file) = config_file {
        let file = std::path::absolute(file).map_err(|e| {
            Problem::new(ErrorCode::InvalidArgument, format!("--config: {e}"))
                .with_fix("give basis.toml's path")
        })?;
        environment.push((CONFIG_ENV.to_owned(), file.display().to_string()));
    }
    let spec = ServiceSpec {
        managed_by,
        exe,
        env_path,
        state_dir,
        environment,
        account,
    };
    if managed_by == ManagedBy::SystemdSystem {
        outside_private_tmp(&spec, &ctx.dirs().config_dir)?;
    }
    Ok(spec)
}

/// The service runs as `account` and must read the 0600 env file.
fn readable_by(path: &Path, account: &Account) -> Result<(), Problem> {
    let meta = fs::metadata(path).map_err(|e| {
        Problem::new(
            ErrorCode::IoError,
            format!("cannot read {}: {e}", path.display()),
        )
        .with_fix("create it with `basis write-env`")
    })?;
    if account.uid == 0 || meta.uid() == account.uid || meta.mode() & 0o004 != 0 {
        return Ok(());
    }
    Err(Problem::new(
        ErrorCode::IoError,
        format!(
            "{} belongs to uid {}, but the service runs as {} (uid {}) and could not read it",
            path.display(),
            meta.uid(),
            account.name,
            account.uid
        ),
    )
    .with_fix(format!(
        "write the env file as {} (`basis write-env`), or give it to them: chown {} {}",
        account.name,
        account.name,
        path.display()
    )))
}

/// A system unit gets a private `/tmp` (`PrivateTmp=yes`): nothing it runs or reads may live
/// there.
fn outside_private_tmp(spec: &ServiceSpec, config_dir: &Path) -> Result<(), Problem> {
    let paths = [
        ("the basis executable", spec.exe.as_path()),
        ("the env file", spec.env_path.as_path()),
        ("the config directory", config_dir),
        ("the state directory", spec.state_dir.as_path()),
    ];
    for (what, path) in paths {
        if path.starts_with("/tmp") || path.starts_with("/var/tmp") {
            return Err(Problem::new(
                ErrorCode::InvalidArgument,
                format!(
                    "{what} ({}) is under /tmp, which the system service does not see (it runs with PrivateTmp=yes)",
                    path.display()
                ),
            )
            .with_fix("keep basis and its files outside /tmp and /var/tmp (install the binary, unset BASIS_HOME or point it elsewhere)"));
        }
    }
    Ok(())
}

/// Creates the state dir's `logs/` (0700) for the account, so the sandbox can bind it
/// writable and launchd can open its log; refuses a state dir the account cannot write.
pub fn prepare_state_dir(spec: &ServiceSpec) -> Result<(), Problem> {
    let account = &spec.account;
    let io_problem = |path: &Path, e: &io::Error| {
        Problem::new(
            ErrorCode::IoError,
            format!("cannot create {}: {e}", path.display()),
        )
        .with_fix("check that the state directory's parent exists and is writable")
    };
    let logs = spec.state_dir.join("logs");
    let chown_to = (account.uid != nix::unistd::geteuid().as_raw()).then_some(account);
    // The missing directories, outermost first.
    let mut missing: Vec<&Path> = logs
        .ancestors()
        .take_while(|p| fs::symlink_metadata(p).is_err())
        .collect();
    missing.reverse();
    for dir in missing {
        DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_problem(dir, &e))?;
        if let Some(account) = chown_to {
            std::os::unix::fs::chown(dir, Some(account.uid), Some(account.gid))
                .map_err(|e| io_problem(dir, &e))?;
        }
    }
    let meta = fs::metadata(&spec.state_dir).map_err(|e| io_problem(&spec.state_dir, &e))?;
    if account.uid != 0 && meta.uid() != account.uid {
        return Err(Problem::new(
            ErrorCode::IoError,
            format!(
                "the state directory {} belongs to uid {}, but the service runs as {} and must write it",
                spec.state_dir.display(),
                meta.uid(),
                account.name
            ),
        )
        .with_fix(format!(
            "give it to them: chown -R {} {}",
            account.name,
            spec.state_dir.display()
        )));
    }
    Ok(())
}

/// A spec for ada (uid 1000) with the default paths, for the renderers' tests.
#[cfg(test)]
pub(crate) fn example(managed_by: ManagedBy) -> ServiceSpec {
    ServiceSpec {
        managed_by,
        exe: "/usr/local/bin/basis".into(),
        env_path: "/home/ada/.config/basis/worker.env".into(),
        state_dir: "/home/ada/.local/state/basis".into(),
        environment: Vec::new(),
        account: Account {
            name: "ada".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/ada".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(managed_by: ManagedBy) -> ServiceSpec {
        example(managed_by)
    }

    #[test]
    fn supervise_args_pin_env_state_dir_and_manager() {
        let s = spec(ManagedBy::SystemdUser);
        assert_eq!(
            s.supervise_args().unwrap(),
            [
                "supervise",
                "--env",
                "/home/ada/.config/basis/worker.env",
                "--state-dir",
                "/home/ada/.local/state/basis",
                "--managed-by",
                "systemd-user"
            ]
        );
        assert_eq!(
            s.supervisor_log(),
            Path::new("/home/ada/.local/state/basis/logs/supervisor.log")
        );
        assert_eq!(s.scope(), Scope::User);
        assert_eq!(spec(ManagedBy::LaunchdDaemon).scope(), Scope::System);
    }

    #[test]
    fn a_system_unit_refuses_files_under_tmp() {
        let mut s = spec(ManagedBy::SystemdSystem);
        assert!(outside_private_tmp(&s, Path::new("/home/ada/.config/basis")).is_ok());
        s.state_dir = "/tmp/basis/state".into();
        let p = outside_private_tmp(&s, Path::new("/home/ada/.config/basis")).unwrap_err();
        assert_eq!(p.code, ErrorCode::InvalidArgument);
        assert!(p.message.contains("PrivateTmp"), "{}", p.message);
    }

    #[test]
    fn prepare_state_dir_creates_private_logs_once() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = spec(ManagedBy::SystemdUser);
        s.state_dir = tmp.path().join("a/state");
        s.account.uid = nix::unistd::geteuid().as_raw();
        prepare_state_dir(&s).unwrap();
        prepare_state_dir(&s).unwrap();
        let mode = fs::metadata(s.state_dir.join("logs")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Someone else's state dir is refused (root may write anywhere, so not for root).
        if s.account.uid != 0 {
            s.account.uid += 1;
            assert!(prepare_state_dir(&s).is_err());
        }
    }

    #[test]
    fn readable_by_checks_the_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("worker.env");
        fs::write(&path, "x").unwrap();
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let mut account = spec(ManagedBy::SystemdSystem).account;
        account.uid = fs::metadata(&path).unwrap().uid();
        assert!(readable_by(&path, &account).is_ok());
        account.uid += 1;
        if account.uid != 0 {
            let p = readable_by(&path, &account).unwrap_err();
            assert!(p.message.contains("could not read it"), "{}", p.message);
        }
    }
}
