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
        let dirs = Dirs::resolve()?;
        let env = |name: &str| std::env::var(name).ok();
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

    pub fn dirs(&self) -> &Dirs {
        &self.settings.dirs
    }

    /// The env file to use: `given`, or `worker.env` in the config dir.
    pub fn env_path(&self, given: Option<&str>) -> PathBuf {
        given.map_or_else(|| self.dirs().env_file(), PathBuf::from)
    }
}
