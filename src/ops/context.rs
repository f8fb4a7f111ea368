//! `Context`: what every operation needs from the host, resolved once at startup from flags,
//! the environment and `basis.toml` (ripgrep's "low-level args → high-level config"), then
//! passed explicitly.

use std::path::{Path, PathBuf};

use crate::config::{AllowedDirs, ConfigError, Dirs, Overrides, Settings};
use crate::domain::Problem;

/// Resolved, validated settings for the operations of one process.
#[derive(Debug, Clone)]
pub struct Context {
    pub settings: Settings,
    pub allowed: AllowedDirs,
}

impl Context {
    /// Resolves the directories (`BASIS_HOME` / XDG), reads `basis.toml` (or `config_file`),
    /// and applies environment variables and `overrides` on top.
    pub fn load(config_file: Option<&Path>, overrides: &Overrides) -> Result<Self, Problem> {
        Self::load_with(config_file, overrides, &|name| std::env::var(name).ok())
    }

    /// [`Context::load`] with the environment read through `env` (`service install` run under
    /// sudo resolves the invoking user's directories with their `HOME`).
    pub fn load_with(
        config_file: Option<&Path>,
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Problem> {
        let dirs = Dirs::from_env(env)?;
        let settings = match config_file {
            None => Settings::load(&dirs, overrides, env)?,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                Settings::from_parts(&dirs, path, &text, overrides, env)?
            }
        };
        let allowed = AllowedDirs::from_settings(&settings)?;
        Ok(Self { settings, allowed })
    }

    /// A context rooted at `home` (config in `home`, state in `home/state`), as if
    /// `BASIS_HOME=home`, talking to `orchestrator_url`; basis.toml and the environment are
    /// not read. For self-contained runs such as the canary.
    pub fn for_home(home: &Path, orchestrator_url: &url::Url) -> Result<Self, Problem> {
        let dirs = Dirs::from_env(|name| {
            (name == crate::config::BASIS_HOME).then(|| home.display().to_string())
        })?;
        let overrides = Overrides {
            orchestrator_url: Some(orchestrator_url.to_string()),
            ..Overrides::default()
        };
        let settings =
            Settings::from_parts(&dirs, &dirs.settings_file(), "", &overrides, |_| None)?;
        let allowed = AllowedDirs::new(dirs.config_dir.clone(), home, []);
        Ok(Self { settings, allowed })
    }

    pub fn dirs(&self) -> &Dirs {
        &self.settings.dirs
    }

    /// The env file to use: `given`, or `worker.env` in the config dir.
    pub fn env_path(&self, given: Option<&str>) -> PathBuf {
        given.map_or_else(|| self.dirs().env_file(), PathBuf::from)
    }
}
