//! Where basis keeps its files (docs/FILES.md, "Directories"): the config dir (`worker.env`,
//! `basis.toml`) and the state dir.
//!
//! Order: `$BASIS_HOME` (config) and `$BASIS_HOME/state` (state); otherwise the XDG base
//! directories, `$XDG_CONFIG_HOME/basis` or `$HOME/.config/basis`, and `$XDG_STATE_HOME/basis`
//! or `$HOME/.local/state/basis`. Relative XDG values are ignored, as the XDG spec requires.

use std::path::PathBuf;

use super::error::ConfigError;

/// The env variable that puts every basis file under one directory.
pub const BASIS_HOME: &str = "BASIS_HOME";

/// File names inside the config and state dirs.
pub const ENV_FILE_NAME: &str = "worker.env";
pub const SETTINGS_FILE_NAME: &str = "basis.toml";

/// The user's home directory: `HOME` when it is set to an absolute path (empty or relative
/// values count as unset).
pub fn home_dir(lookup: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    lookup("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The directory an environment variable names (e.g. `XDG_CONFIG_HOME`, `CODEX_HOME`) when it
/// is set to an absolute path; a relative value is ignored, as the XDG spec requires.
pub fn dir_var(lookup: impl Fn(&str) -> Option<String>, var: &str) -> Option<PathBuf> {
    lookup(var).map(PathBuf::from).filter(|p| p.is_absolute())
}

/// `$XDG_CONFIG_HOME`, else `$HOME/.config`: where Linux applications keep their settings.
pub fn user_config_dir(lookup: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    dir_var(&lookup, "XDG_CONFIG_HOME").or_else(|| home_dir(&lookup).map(|h| h.join(".config")))
}

/// The config and state directories. Neither is created here: writers create what they need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirs {
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl Dirs {
    /// Resolves the directories from an injected environment lookup (empty values count as
    /// unset). Fails when `BASIS_HOME` is relative, or when neither `BASIS_HOME`, an absolute
    /// XDG directory nor an absolute `HOME` is available.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Dirs, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        if let Some(home) = get(BASIS_HOME) {
            let home = PathBuf::from(home);
            if !home.is_absolute() {
                return Err(ConfigError::RelativeDir { var: BASIS_HOME });
            }
            return Ok(Dirs {
                state_dir: home.join("state"),
                config_dir: home,
            });
        }
        let home = || home_dir(&lookup).ok_or(ConfigError::NoHome);
        let config_dir = match dir_var(&lookup, "XDG_CONFIG_HOME") {
            Some(dir) => dir.join("basis"),
            None => home()?.join(".config").join("basis"),
        };
        let state_dir = match dir_var(&lookup, "XDG_STATE_HOME") {
            Some(dir) => dir.join("basis"),
            None => home()?.join(".local").join("state").join("basis"),
        };
        Ok(Dirs {
            config_dir,
            state_dir,
        })
    }

    /// [`Dirs::from_env`] over the process environment (non-UTF-8 values count as unset).
    pub fn resolve() -> Result<Dirs, ConfigError> {
        Self::from_env(|name| std::env::var(name).ok())
    }

    /// The same config dir with another state dir (the `state_dir` setting).
    #[must_use]
    pub fn with_state_dir(mut self, state_dir: impl Into<PathBuf>) -> Self {
        self.state_dir = state_dir.into();
        self
    }

    /// `config_dir/worker.env`: the 0600 dotenv file holding the worker token.
    pub fn env_file(&self) -> PathBuf {
        self.config_dir.join(ENV_FILE_NAME)
    }

    /// `config_dir/basis.toml`: non-secret settings.
    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join(SETTINGS_FILE_NAME)
    }

    /// `state_dir/supervisor.json`: pid, start time, env path, socket path, version.
    pub fn supervisor_json(&self) -> PathBuf {
        self.state_dir.join("supervisor.json")
    }

    /// `state_dir/supervisor.sock` (0600).
    pub fn supervisor_sock(&self) -> PathBuf {
        self.state_dir.join("supervisor.sock")
    }

    /// `state_dir/worker-status.json`, written by the worker.
    pub fn worker_status_json(&self) -> PathBuf {
        self.state_dir.join("worker-status.json")
    }

    /// `state_dir/logs`.
    pub fn log_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }

    /// `state_dir/work` (0700): where an agent writes a task's output for `submit_output`'s
    /// `output_file`; output files are read from here (or an `allowed_env_dirs` directory).
    pub fn work_dir(&self) -> PathBuf {
        self.state_dir.join("work")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use std::path::Path;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn basis_home_wins_over_xdg_and_home() {
        let dirs = Dirs::from_env(env(&[
            ("BASIS_HOME", "/opt/basis"),
            ("XDG_CONFIG_HOME", "/xdg/config"),
            ("XDG_STATE_HOME", "/xdg/state"),
            ("HOME", "/home/u"),
        ]))
        .unwrap();
        assert_eq!(dirs.config_dir, Path::new("/opt/basis"));
        assert_eq!(dirs.state_dir, Path::new("/opt/basis/state"));
        assert_eq!(dirs.env_file(), Path::new("/opt/basis/worker.env"));
        assert_eq!(dirs.settings_file(), Path::new("/opt/basis/basis.toml"));
        assert_eq!(
            dirs.supervisor_json(),
            Path::new("/opt/basis/state/supervisor.json")
        );
        assert_eq!(
            dirs.supervisor_sock(),
            Path::new("/opt/basis/state/supervisor.sock")
        );
        assert_eq!(
            dirs.worker_status_json(),
            Path::new("/opt/basis/state/worker-status.json")
        );
        assert_eq!(dirs.log_dir(), Path::new("/opt/basis/state/logs"));
    }

    #[test]
    fn xdg_wins_over_home() {
        let dirs = Dirs::from_env(env(&[
            ("XDG_CONFIG_HOME", "/xdg/config"),
            ("XDG_STATE_HOME", "/xdg/state"),
            ("HOME", "/home/u"),
        ]))
        .unwrap();
        assert_eq!(dirs.config_dir, Path::new("/xdg/config/basis"));
        assert_eq!(dirs.state_dir, Path::new("/xdg/state/basis"));
    }

    #[test]
    fn home_fallback_and_mixed() {
        let dirs = Dirs::from_env(env(&[("HOME", "/home/u")])).unwrap();
        assert_eq!(dirs.config_dir, Path::new("/home/u/.config/basis"));
        assert_eq!(dirs.state_dir, Path::new("/home/u/.local/state/basis"));
        let dirs = Dirs::from_env(env(&[("XDG_STATE_HOME", "/s"), ("HOME", "/home/u")])).unwrap();
        assert_eq!(dirs.config_dir, Path::new("/home/u/.config/basis"));
        assert_eq!(dirs.state_dir, Path::new("/s/basis"));
    }

    #[test]
    fn relative_and_empty_xdg_values_are_ignored() {
        let dirs = Dirs::from_env(env(&[
            ("BASIS_HOME", ""),
            ("XDG_CONFIG_HOME", "relative/config"),
            ("XDG_STATE_HOME", ""),
            ("HOME", "/home/u"),
        ]))
        .unwrap();
        assert_eq!(dirs.config_dir, Path::new("/home/u/.config/basis"));
        assert_eq!(dirs.state_dir, Path::new("/home/u/.local/state/basis"));
    }

    #[test]
    fn relative_basis_home_and_missing_home_are_errors() {
        assert!(matches!(
            Dirs::from_env(env(&[("BASIS_HOME", "rel"), ("HOME", "/home/u")])),
            Err(ConfigError::RelativeDir { var: "BASIS_HOME" })
        ));
        assert!(matches!(Dirs::from_env(env(&[])), Err(ConfigError::NoHome)));
        assert!(matches!(
            Dirs::from_env(env(&[("HOME", "not/absolute")])),
            Err(ConfigError::NoHome)
        ));
        // Absolute XDG dirs alone are enough.
        assert!(
            Dirs::from_env(env(&[("XDG_CONFIG_HOME", "/c"), ("XDG_STATE_HOME", "/s")])).is_ok()
        );
    }

    #[test]
    fn home_and_user_config_dir() {
        assert_eq!(
            home_dir(env(&[("HOME", "/home/u")])),
            Some("/home/u".into())
        );
        assert_eq!(home_dir(env(&[("HOME", "rel")])), None);
        assert_eq!(
            user_config_dir(env(&[("HOME", "/home/u")])),
            Some("/home/u/.config".into())
        );
        assert_eq!(
            user_config_dir(env(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/x")])),
            Some("/x".into())
        );
        assert_eq!(
            user_config_dir(env(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "x")])),
            Some("/home/u/.config".into())
        );
        assert_eq!(dir_var(env(&[("CODEX_HOME", "")]), "CODEX_HOME"), None);
    }

    #[test]
    fn with_state_dir_keeps_config_dir() {
        let dirs = Dirs::from_env(env(&[("BASIS_HOME", "/b")]))
            .unwrap()
            .with_state_dir("/elsewhere");
        assert_eq!(dirs.config_dir, Path::new("/b"));
        assert_eq!(dirs.log_dir(), Path::new("/elsewhere/logs"));
    }
}
