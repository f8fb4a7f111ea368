//! `basis.toml`: non-secret settings, resolved with precedence flag > env > file > defaults.
//!
//! ```toml
//! orchestrator_url = "http://127.0.0.1:8787"   # BASIS_ORCHESTRATOR_URL, --orchestrator-url
//! state_dir = "/var/lib/basis"                 # BASIS_STATE_DIR, --state-dir
//! allowed_env_dirs = ["/etc/basis"]            # extra dirs worker.env may be written to
//!
//! [mcp]
//! http_bind = "127.0.0.1:8765"                 # BASIS_MCP_HTTP_BIND, --http-bind
//! read_only = false                            # BASIS_MCP_READ_ONLY, --read-only
//! ```
//!
//! Relative paths in the file are relative to the config dir; relative paths from a flag or
//! the environment are relative to the current directory. Unknown keys are errors.

use std::io;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::error::ConfigError;
use super::origin::Origin;
use super::paths::Dirs;

pub const DEFAULT_ORCHESTRATOR_URL: &str = "http://127.0.0.1:8787";
pub const DEFAULT_MCP_HTTP_BIND: &str = "127.0.0.1:8765";

/// Environment variables that override `basis.toml`.
pub const ENV_ORCHESTRATOR_URL: &str = "BASIS_ORCHESTRATOR_URL";
pub const ENV_MCP_HTTP_BIND: &str = "BASIS_MCP_HTTP_BIND";
pub const ENV_MCP_READ_ONLY: &str = "BASIS_MCP_READ_ONLY";
pub const ENV_STATE_DIR: &str = "BASIS_STATE_DIR";

/// Values given as CLI flags (highest precedence). `None` means the flag was not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--orchestrator-url`
    pub orchestrator_url: Option<String>,
    /// `--state-dir`
    pub state_dir: Option<PathBuf>,
    /// `--http-bind`
    pub mcp_http_bind: Option<String>,
    /// `--read-only`
    pub mcp_read_only: Option<bool>,
}

/// The `[mcp]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSettings {
    pub http_bind: SocketAddr,
    pub read_only: bool,
}

/// Where each overridable value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origins {
    pub orchestrator_url: Origin,
    pub state_dir: Origin,
    pub mcp_http_bind: Origin,
    pub mcp_read_only: Origin,
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub orchestrator_url: Url,
    /// The config dir and the effective state dir (the `state_dir` setting applied).
    pub dirs: Dirs,
    pub mcp: McpSettings,
    /// Absolute directories (besides the config and current dirs) env files may be written to.
    pub allowed_env_dirs: Vec<PathBuf>,
    pub origins: Origins,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    orchestrator_url: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
    #[serde(default)]
    allowed_env_dirs: Vec<Spanned<String>>,
    #[serde(default)]
    mcp: FileMcp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMcp {
    http_bind: Option<Spanned<String>>,
    read_only: Option<Spanned<bool>>,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// The first value present, in precedence order, with its origin.
fn pick<T>(candidates: [Option<(T, Origin)>; 3]) -> Option<(T, Origin)> {
    candidates.into_iter().flatten().next()
}

impl Settings {
    /// Reads `dirs.settings_file()` (missing is fine) and applies `env` and `overrides` on
    /// top, then validates every value, naming its origin on failure.
    pub fn load(
        dirs: &Dirs,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let path = dirs.settings_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ConfigError::Io { path, source }),
        };
        Self::from_parts(dirs, &path, &text, overrides, env)
    }

    /// [`Settings::load`] with the file's text given.
    pub fn from_parts(
        dirs: &Dirs,
        path: &Path,
        text: &str,
        overrides: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let file: FileSettings = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim_end().to_owned(),
        })?;
        let layers = Layers { path, text, env };

        let (url_text, url_origin) = pick([
            overrides
                .orchestrator_url
                .clone()
                .map(|v| (v, Origin::Flag("--orchestrator-url"))),
            layers.env(ENV_ORCHESTRATOR_URL),
            layers.file(file.orchestrator_url),
        ])
        .unwrap_or_else(|| (DEFAULT_ORCHESTRATOR_URL.to_owned(), Origin::Default));
        let orchestrator_url =
            parse_http_url(&url_text).map_err(|reason| ConfigError::Invalid {
                key: "orchestrator_url",
                origin: url_origin.clone(),
                reason,
            })?;

        let (bind_text, bind_origin) = pick([
            overrides
                .mcp_http_bind
                .clone()
                .map(|v| (v, Origin::Flag("--http-bind"))),
            layers.env(ENV_MCP_HTTP_BIND),
            layers.file(file.mcp.http_bind),
        ])
        .unwrap_or_else(|| (DEFAULT_MCP_HTTP_BIND.to_owned(), Origin::Default));
        let http_bind = bind_text.trim().parse::<SocketAddr>().map_err(|_| {
            invalid(
                "mcp.http_bind",
                &bind_origin,
                "expected an IP address and port, such as 127.0.0.1:8765 or [::1]:8765",
            )
        })?;

        let read_only_env = match layers.env(ENV_MCP_READ_ONLY) {
            Some((v, origin)) => Some((
                parse_bool(&v).ok_or_else(|| {
                    invalid(
                        "mcp.read_only",
                        &origin,
                        "expected true or false (also accepted: 1/0, yes/no, on/off)",
                    )
                })?,
                origin,
            )),
            None => None,
        };
        let (read_only, read_only_origin) = pick([
            overrides
                .mcp_read_only
                .map(|v| (v, Origin::Flag("--read-only"))),
            read_only_env,
            layers.file(file.mcp.read_only),
        ])
        .unwrap_or((false, Origin::Default));

        let (state_dir, state_origin) =
            resolve_state_dir(&layers, overrides, file.state_dir, dirs)?;

        let allowed_env_dirs = file
            .allowed_env_dirs
            .into_iter()
            .map(|entry| {
                let origin = layers.origin(&entry.span());
                let base = Some(dirs.config_dir.as_path());
                absolute_dir(
                    "allowed_env_dirs",
                    &origin,
                    Path::new(entry.get_ref()),
                    base,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Settings {
            orchestrator_url,
            dirs: dirs.clone().with_state_dir(state_dir),
            mcp: McpSettings {
                http_bind,
                read_only,
            },
            allowed_env_dirs,
            origins: Origins {
                orchestrator_url: url_origin,
                state_dir: state_origin,
                mcp_http_bind: bind_origin,
                mcp_read_only: read_only_origin,
            },
        })
    }
}

/// The env and file layers, with what is needed to say where a value came from.
struct Layers<'a, E> {
    path: &'a Path,
    text: &'a str,
    env: E,
}

impl<E: Fn(&str) -> Option<String>> Layers<'_, E> {
    /// A non-empty environment variable.
    fn env(&self, name: &'static str) -> Option<(String, Origin)> {
        (self.env)(name)
            .filter(|v| !v.is_empty())
            .map(|v| (v, Origin::Env(name)))
    }

    /// The origin of a span of basis.toml.
    fn origin(&self, span: &std::ops::Range<usize>) -> Origin {
        Origin::File {
            path: self.path.to_path_buf(),
            line: Some(line_of(self.text, span.start)),
        }
    }

    /// A value from basis.toml, with its line.
    fn file<T>(&self, value: Option<Spanned<T>>) -> Option<(T, Origin)> {
        value.map(|s| {
            let origin = self.origin(&s.span());
            (s.into_inner(), origin)
        })
    }
}

/// `state_dir`: flag, env, file (relative to the config dir), else the default state dir.
fn resolve_state_dir<E: Fn(&str) -> Option<String>>(
    layers: &Layers<'_, E>,
    overrides: &Overrides,
    file_value: Option<Spanned<String>>,
    dirs: &Dirs,
) -> Result<(PathBuf, Origin), ConfigError> {
    Ok(match (&overrides.state_dir, layers.env(ENV_STATE_DIR)) {
        (Some(dir), _) => {
            let origin = Origin::Flag("--state-dir");
            (absolute_dir("state_dir", &origin, dir, None)?, origin)
        }
        (None, Some((dir, origin))) => (
            absolute_dir("state_dir", &origin, Path::new(&dir), None)?,
            origin,
        ),
        (None, None) => match layers.file(file_value) {
            Some((dir, origin)) => {
                let base = Some(dirs.config_dir.as_path());
                (
                    absolute_dir("state_dir", &origin, Path::new(&dir), base)?,
                    origin,
                )
            }
            None => (dirs.state_dir.clone(), Origin::Default),
        },
    })
}

fn invalid(key: &'static str, origin: &Origin, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        origin: origin.clone(),
        reason: reason.to_owned(),
    }
}

/// A directory setting made absolute: against `base` (the config dir, for file values) or
/// the current directory (flags and env). Empty values and `..` components are refused.
fn absolute_dir(
    key: &'static str,
    origin: &Origin,
    dir: &Path,
    base: Option<&Path>,
) -> Result<PathBuf, ConfigError> {
    if dir.as_os_str().is_empty() {
        return Err(invalid(key, origin, "the directory is empty"));
    }
    if has_parent_component(dir) {
        return Err(invalid(
            key,
            origin,
            "give the directory without '..' components",
        ));
    }
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    match base {
        Some(base) => Ok(base.join(dir)),
        None => std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .map_err(|source| ConfigError::Io {
                path: PathBuf::from("."),
                source,
            }),
    }
}

fn has_parent_component(path: &Path) -> bool {
    path.components().any(|c| c == Component::ParentDir)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses an `http`/`https` URL with a host and no credentials. The reason never repeats
/// the value.
pub fn parse_http_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim())
        .map_err(|e| format!("not a valid URL ({e}); expected e.g. http://127.0.0.1:8787"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http:// and https:// URLs are supported".to_owned());
    }
    if url.host().is_none() {
        return Err("the URL has no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the URL must not carry a user name or password; credentials never go in URLs"
                .to_owned(),
        );
    }
    Ok(url)
}
