//! `mcp_install` (`basis mcp install`): add this basis binary as the `basis` MCP server in one
//! client's config file, merged with what is there, written atomically. CLI only: an agent
//! already talking to basis has no use for it.
//!
//! `clients` knows where each client keeps its servers and in which shape, `json_file` and
//! `toml_file` merge the entry into the file's text.

mod clients;
mod json_file;
mod toml_file;

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use clients::{CLIENT_NAMES, Client, Format, Host, Platform, SCOPE_NAMES, SERVER_NAME, Scope};

use crate::config::{self, atomic};
use crate::domain::{ErrorCode, Problem};
use crate::guard::{GuardText, Guarded, SecretRefused};

/// Mode of a new user-scope file (only this user reads their client settings).
const USER_FILE_MODE: u32 = 0o600;
/// Mode of a new project-scope file (meant to be committed and shared).
const PROJECT_FILE_MODE: u32 = 0o644;

/// Which client to configure, and how.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// One of [`CLIENT_NAMES`].
    pub client: String,
    /// "user" (default) or "project" (the current directory).
    #[serde(default)]
    pub scope: Option<String>,
    /// Say what would be written, and write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Replace a `basis` entry that differs from this binary's.
    #[serde(default)]
    pub force: bool,
    /// Run the server with `--read-only`.
    #[serde(default)]
    pub read_only: bool,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.client.guard("client")?;
        self.scope.guard("scope")
    }
}

/// What happened to the config file (with `dry_run`, what would have).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The file did not exist; it holds just the basis entry.
    Created,
    /// The basis entry was added beside what the file had.
    Added,
    /// A different basis entry was replaced (`force`).
    Replaced,
    /// The file already had exactly this entry; nothing was written.
    Unchanged,
}

/// The entry and where it went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    /// The client, e.g. "claude-code".
    pub client: String,
    /// "user" or "project".
    pub scope: String,
    /// Absolute path of the client's config file.
    pub path: String,
    /// Set when `path` is a symbolic link: the file actually read and written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_path: Option<String>,
    /// Where the entry sits in the file, e.g. "mcpServers.basis".
    pub key: String,
    /// The server entry (as JSON, for the TOML client too).
    pub entry: Value,
    /// What happened, or with dry_run what would happen.
    pub action: Action,
    /// True when nothing was written because of --dry-run.
    pub dry_run: bool,
    /// The file's mode after writing, e.g. "0600"; absent when nothing is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The entry as it appears in the file, to add by hand if you prefer.
    pub snippet: String,
    /// What to do next.
    pub next_step: String,
}

/// What merging the entry into a file's text decided.
#[derive(Debug)]
enum Merged {
    /// The file already has exactly this entry.
    Unchanged,
    /// The file has a different `basis` entry and `force` was not given.
    Conflict,
    /// The file's new text.
    Write { text: String, replaced: bool },
}

/// Why an existing config file cannot be merged into. No variant holds the file's content.
#[derive(Debug, thiserror::Error)]
enum Malformed {
    #[error("it does not parse (line {line}, column {column}: {reason})")]
    Syntax {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("its top level is not an object")]
    NotAnObject,
    #[error("its `{0}` is not a table of servers")]
    NotATable(String),
    #[error("it is not UTF-8 text")]
    NotUtf8,
}

/// Installs into the client named by `input`, for this process: `$HOME`, the current
/// directory and the running binary.
pub fn run(input: &Input) -> Result<Output, Problem> {
    install(&current_host()?, input)
}

/// The process's [`Host`]: directories from the environment (through `crate::config`'s
/// lookups), the current directory, the canonical path of the running executable.
pub fn current_host() -> Result<Host, Problem> {
    let lookup = |name: &str| std::env::var(name).ok();
    let home = config::home_dir(lookup).ok_or_else(|| {
        Problem::new(
            ErrorCode::ConfigInvalid,
            "cannot find your home directory: HOME is not set to an absolute path",
        )
        .with_fix("set HOME to your home directory and rerun")
    })?;
    let io = |what: &str, e: io::Error| {
        Problem::new(ErrorCode::IoError, format!("cannot find {what}: {e}"))
    };
    let cwd = std::env::current_dir().map_err(|e| io("the current directory", e))?;
    let exe = std::env::current_exe()
        .and_then(fs::canonicalize)
        .map_err(|e| io("the path of the running basis binary", e))?;
    Ok(Host {
        user_config_dir: config::user_config_dir(lookup).unwrap_or_else(|| home.join(".config")),
        codex_home: config::dir_var(lookup, "CODEX_HOME"),
        vscode_appdata: config::dir_var(lookup, "VSCODE_APPDATA"),
        home,
        cwd,
        exe,
        platform: if cfg!(target_os = "macos") {
            Platform::MacOs
        } else {
            Platform::Linux
        },
    })
}

/// Installs into the client named by `input` on `host`.
pub fn install(host: &Host, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let (client, scope) = client_and_scope(host, input)?;
    let command = host.exe.to_str().ok_or_else(|| {
        Problem::new(
            ErrorCode::IoError,
            format!(
                "the path of this basis binary is not UTF-8: {}",
                host.exe.display()
            ),
        )
        .with_fix("install basis under a path that is valid UTF-8 and run that copy")
    })?;
    let mut args = vec!["mcp".to_owned()];
    if input.read_only {
        args.push("--read-only".to_owned());
    }
    let format = client.format();
    let entry = client.entry(command, &args);
    let snippet = match format {
        Format::Json { servers_key, .. } => json_file::snippet(servers_key, SERVER_NAME, &entry),
        Format::Toml => toml_file::snippet(SERVER_NAME, command, &args),
    };
    let path = client.path(scope, host);
    let target = resolve(&path)?;
    let existing = read(&target)?;
    let merged = match format {
        Format::Json { servers_key, .. } => json_file::merge(
            existing.as_ref().map(|e| e.text.as_str()),
            servers_key,
            SERVER_NAME,
            &entry,
            input.force,
        ),
        Format::Toml => toml_file::merge(
            existing.as_ref().map(|e| e.text.as_str()),
            SERVER_NAME,
            command,
            &args,
            input.force,
        ),
    }
    .map_err(|m| malformed(&target, &m, &snippet))?;
    let key = format!("{}.{SERVER_NAME}", format.servers_key());
    let mut output = Output {
        client: client.as_str().to_owned(),
        scope: scope.as_str().to_owned(),
        path: path.display().to_string(),
        resolved_path: (target != path).then(|| target.display().to_string()),
        key,
        entry,
        action: Action::Unchanged,
        dry_run: input.dry_run,
        mode: None,
        snippet,
        next_step: client.next_step(scope).to_owned(),
    };
    let (text, replaced) = match merged {
        Merged::Unchanged => return Ok(output),
        Merged::Conflict => return Err(conflict(&target, &output.key)),
        Merged::Write { text, replaced } => (text, replaced),
    };
    output.action = match (&existing, replaced) {
        (None, _) => Action::Created,
        (Some(_), false) => Action::Added,
        (Some(_), true) => Action::Replaced,
    };
    let mode = existing.as_ref().map_or(
        match scope {
            Scope::User => USER_FILE_MODE,
            Scope::Project => PROJECT_FILE_MODE,
        },
        |e| e.mode,
    );
    output.mode = Some(format!("{mode:04o}"));
    if input.dry_run {
        output.next_step = format!(
            "nothing was written; rerun without --dry-run to write it, then {}",
            output.next_step
        );
        return Ok(output);
    }
    write(&target, scope, &text, mode)?;
    tracing::debug!(path = %target.display(), action = ?output.action, "installed the MCP server entry");
    Ok(output)
}

/// The client and scope `input` names, refused when unknown or when the client has no such
/// scope.
fn client_and_scope(host: &Host, input: &Input) -> Result<(Client, Scope), Problem> {
    let client = Client::parse(input.client.trim()).ok_or_else(|| {
        Problem::new(
            ErrorCode::InvalidArgument,
            format!("unknown MCP client {:?}", input.client),
        )
        .with_fix(format!("use one of: {}", CLIENT_NAMES.join(", ")))
    })?;
    let scope = match input.scope.as_deref().map(str::trim) {
        None | Some("") => Scope::User,
        Some(name) => Scope::parse(name).ok_or_else(|| {
            Problem::new(
                ErrorCode::InvalidArgument,
                format!("unknown scope {name:?}"),
            )
            .with_fix("use --scope user (every project) or --scope project (this directory)")
        })?,
    };
    if !client.has_scope(scope) {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!(
                "{} has no {} scope: it keeps one MCP server list per user",
                client.title(),
                scope.as_str()
            ),
        )
        .with_fix(format!(
            "use --scope user (it writes {})",
            client.path(Scope::User, host).display()
        )));
    }
    Ok((client, scope))
}

/// The file a config path stands for: itself, or the file its symbolic link points to (a
/// dotfiles manager often links client configs), so the link stays a link.
fn resolve(path: &Path) -> Result<PathBuf, Problem> {
    match atomic::is_symlink(path) {
        Ok(false) => Ok(path.to_path_buf()),
        Ok(true) => fs::canonicalize(path).map_err(|e| {
            Problem::new(
                ErrorCode::IoError,
                format!(
                    "{} is a symbolic link that cannot be followed: {e}",
                    path.display()
                ),
            )
            .with_fix("point the link at an existing file, or remove it")
        }),
        Err(e) => Err(io_problem("inspect", path, &e)),
    }
}

/// An existing config file's text and permission bits.
struct Existing {
    text: String,
    mode: u32,
}

fn read(path: &Path) -> Result<Option<Existing>, Problem> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_problem("read", path, &e)),
    };
    let mode = fs::metadata(path)
        .map_err(|e| io_problem("read", path, &e))?
        .permissions()
        .mode()
        & 0o777;
    let text = String::from_utf8(bytes).map_err(|_| malformed_plain(path, &Malformed::NotUtf8))?;
    Ok(Some(Existing { text, mode }))
}

/// Writes `text` atomically. A project file's missing directories get the usual permissions
/// (they are part of the project); a user file's are created private by `atomic`.
fn write(path: &Path, scope: Scope, text: &str, mode: u32) -> Result<(), Problem> {
    if scope == Scope::Project
        && let Some(parent) = path.parent()
    {
        fs::create_dir_all(parent).map_err(|e| io_problem("create the directory of", path, &e))?;
    }
    atomic::write_atomic(path, text.as_bytes(), mode).map_err(|e| io_problem("write", path, &e))
}

fn io_problem(op: &str, path: &Path, err: &io::Error) -> Problem {
    Problem::new(
        ErrorCode::IoError,
        format!("cannot {op} {}: {err}", path.display()),
    )
    .with_fix("check that the file and its directory belong to you and are writable")
}

fn malformed_plain(path: &Path, why: &Malformed) -> Problem {
    Problem::new(
        ErrorCode::McpConfigInvalid,
        format!(
            "cannot add basis to {}: {why}; a file basis cannot parse is never rewritten, and it was left as it was",
            path.display()
        ),
    )
}

fn malformed(path: &Path, why: &Malformed, snippet: &str) -> Problem {
    malformed_plain(path, why).with_fix(format!(
        "fix the file (comments and trailing commas are not accepted in JSON here), or add the entry by hand:\n{}",
        snippet.trim_end()
    ))
}

fn conflict(path: &Path, key: &str) -> Problem {
    Problem::new(
        ErrorCode::McpConfigConflict,
        format!(
            "{} already has a different {key} entry; it was left as it was",
            path.display()
        ),
    )
    .with_fix(
        "rerun with --force to replace it with this binary's entry (its other settings, such as env, are dropped), or edit the file by hand",
    )
}

#[cfg(test)]
mod tests;
