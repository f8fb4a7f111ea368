//! The typed failures of this module and their [`Problem`] forms. No message contains a
//! value read from `worker.env`: parse errors name the line, the key and the rule only.

use std::io;
use std::path::{Path, PathBuf};

use crate::domain::{ErrorCode, Problem};

use super::origin::Origin;

/// `basis.toml`, an environment override or a flag is unusable, or the directories cannot
/// be found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} must be an absolute path")]
    RelativeDir { var: &'static str },
    #[error(
        "cannot find the config directory: none of BASIS_HOME, XDG_CONFIG_HOME or HOME is set to an absolute path"
    )]
    NoHome,
    #[error("{}: {message}", at(.path, *.line))]
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("invalid {key} from {origin}: {reason}")]
    Invalid {
        key: &'static str,
        origin: Origin,
        reason: String,
    },
    #[error("cannot read {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn at(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{} line {line}", path.display()),
        None => path.display().to_string(),
    }
}

/// Reading, checking or writing `worker.env` failed.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("{} contains a '..' component; env file paths must not climb out of a directory", .path.display())]
    ParentComponent { path: PathBuf },
    #[error("{} is outside the directories env files may be written to ({})", .path.display(), list(.allowed))]
    NotAllowed {
        path: PathBuf,
        allowed: Vec<PathBuf>,
    },
    #[error(
        "{} is, or passes through, the symbolic link {}; basis never writes through a symlink",
        .path.display(), .link.display()
    )]
    Symlink { path: PathBuf, link: PathBuf },
    #[error("{}line {line}: {reason}", in_file(.path.as_deref()))]
    Parse {
        path: Option<PathBuf>,
        line: usize,
        reason: String,
    },
    #[error("{key}: {reason}")]
    InvalidValue { key: String, reason: String },
    #[error("{} does not exist", .path.display())]
    Missing { path: PathBuf },
    #[error(
        "{} holds the worker's secrets but its mode is {mode:o}: other users may read or change it, so basis does not use it",
        .path.display()
    )]
    LooseMode { path: PathBuf, mode: u32 },
    #[error(
        "{} holds the worker's secrets but belongs to user id {owner}, not to this user, so basis does not use it",
        .path.display()
    )]
    ForeignOwner { path: PathBuf, owner: u32 },
    #[error(
        "another basis process has been writing {} for too long (it holds {}); nothing was changed",
        .path.display(), .lock.display()
    )]
    Busy { path: PathBuf, lock: PathBuf },
    #[error(
        "{} exists and is not a worker env file (it lacks the header basis writes and holds more than BASIS_* settings), so basis does not replace it",
        .path.display()
    )]
    Foreign { path: PathBuf },
    #[error("{} was created by another writer while this one was preparing it; nothing was changed", .path.display())]
    Appeared { path: PathBuf },
    #[error("cannot {op} {}: {source}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn list(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn in_file(path: Option<&Path>) -> String {
    path.map(|p| format!("{} ", p.display()))
        .unwrap_or_default()
}

impl From<EnvFileError> for Problem {
    fn from(err: EnvFileError) -> Self {
        let message = err.to_string();
        let (code, fix) = match &err {
            EnvFileError::ParentComponent { .. } => (
                ErrorCode::EnvPathNotAllowed,
                "give the env file path without '..' (for example the default, worker.env in the config directory)".to_owned(),
            ),
            EnvFileError::NotAllowed { .. } => (
                ErrorCode::EnvPathNotAllowed,
                "write the env file inside the config directory or the current directory, or add its directory to allowed_env_dirs in basis.toml".to_owned(),
            ),
            EnvFileError::Symlink { .. } => (
                ErrorCode::EnvPathSymlink,
                "remove the symbolic link or give the real path of a regular file in a real directory".to_owned(),
            ),
            EnvFileError::Parse { path, line, .. } => (
                ErrorCode::EnvParseError,
                format!(
                    "edit line {line} of {} (KEY=value lines, # comments), or rewrite the file with `basis write-env`",
                    path.as_deref().map_or_else(|| "the env file".to_owned(), |p| p.display().to_string())
                ),
            ),
            EnvFileError::InvalidValue { .. } => (
                ErrorCode::InvalidArgument,
                "give a value on one line without quotes, '#' at its start or surrounding spaces".to_owned(),
            ),
            EnvFileError::Missing { .. } => (
                ErrorCode::IoError,
                "create it with `basis write-env`, or pass the path of an existing env file".to_owned(),
            ),
            EnvFileError::LooseMode { path, .. } => (
                ErrorCode::EnvFileInsecure,
                format!(
                    "run `chmod 600 {}`; if other users could read it, also treat the device key as exposed and replace it with `basis rotate-key`",
                    path.display()
                ),
            ),
            EnvFileError::ForeignOwner { path, .. } => (
                ErrorCode::EnvFileInsecure,
                format!(
                    "run basis as the user who owns {}, or take it over with `sudo chown \"$(id -un)\" {}`",
                    path.display(),
                    path.display()
                ),
            ),
            EnvFileError::Busy { .. } => (
                ErrorCode::IoError,
                "wait for the other write_env or register_worker to finish (a stopped one, e.g. suspended with Ctrl-Z, must be resumed or ended), then try again".to_owned(),
            ),
            EnvFileError::Foreign { .. } => (
                ErrorCode::EnvFileForeign,
                "choose another path for the env file (the default is worker.env in the config directory), or, to replace this file and lose what it holds, call write_env with force (`basis write-env --force`)".to_owned(),
            ),
            EnvFileError::Appeared { .. } => (
                ErrorCode::IoError,
                "try again: the file now exists and its device key is kept".to_owned(),
            ),
            EnvFileError::Io { .. } => (
                ErrorCode::IoError,
                "check that the directory exists, is on a writable file system and belongs to this user".to_owned(),
            ),
        };
        Problem::new(code, message).with_fix(fix)
    }
}

impl From<ConfigError> for Problem {
    fn from(err: ConfigError) -> Self {
        let message = err.to_string();
        let (code, fix) = match &err {
            ConfigError::RelativeDir { var } => (
                ErrorCode::ConfigInvalid,
                format!("set {var} to an absolute path, or unset it"),
            ),
            ConfigError::NoHome => (
                ErrorCode::ConfigInvalid,
                "set HOME, or BASIS_HOME to the directory basis should keep its files in".to_owned(),
            ),
            ConfigError::Syntax { .. } => (
                ErrorCode::ConfigInvalid,
                "fix or remove that line of basis.toml; known keys: orchestrator_url, state_dir, allowed_env_dirs, [mcp] http_bind, [mcp] read_only".to_owned(),
            ),
            ConfigError::Invalid { origin, .. } => (
                ErrorCode::ConfigInvalid,
                format!("correct the value given by {origin}"),
            ),
            ConfigError::Io { .. } => (
                ErrorCode::IoError,
                "make basis.toml readable by this user, or remove it to use the defaults".to_owned(),
            ),
        };
        Problem::new(code, message).with_fix(fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_fixes() {
        let cases: Vec<(EnvFileError, ErrorCode)> = vec![
            (
                EnvFileError::ParentComponent {
                    path: "a/../b".into(),
                },
                ErrorCode::EnvPathNotAllowed,
            ),
            (
                EnvFileError::NotAllowed {
                    path: "/x".into(),
                    allowed: vec!["/a".into()],
                },
                ErrorCode::EnvPathNotAllowed,
            ),
            (
                EnvFileError::Symlink {
                    path: "/a/b".into(),
                    link: "/a".into(),
                },
                ErrorCode::EnvPathSymlink,
            ),
            (
                EnvFileError::Parse {
                    path: Some("/a/worker.env".into()),
                    line: 7,
                    reason: "r".into(),
                },
                ErrorCode::EnvParseError,
            ),
            (
                EnvFileError::InvalidValue {
                    key: "K".into(),
                    reason: "r".into(),
                },
                ErrorCode::InvalidArgument,
            ),
            (
                EnvFileError::Missing { path: "/a".into() },
                ErrorCode::IoError,
            ),
            (
                EnvFileError::Busy {
                    path: "/a/worker.env".into(),
                    lock: "/a/worker.env.lock".into(),
                },
                ErrorCode::IoError,
            ),
            (
                EnvFileError::Foreign {
                    path: "/home/u/.bashrc".into(),
                },
                ErrorCode::EnvFileForeign,
            ),
            (
                EnvFileError::Appeared { path: "/a".into() },
                ErrorCode::IoError,
            ),
            (
                EnvFileError::Io {
                    op: "write",
                    path: "/a".into(),
                    source: io::Error::other("boom"),
                },
                ErrorCode::IoError,
            ),
        ];
        for (err, code) in cases {
            let p = Problem::from(err);
            assert_eq!(p.code, code);
            assert!(p.fix.is_some_and(|f| !f.is_empty()));
        }
        let p = Problem::from(EnvFileError::Parse {
            path: Some("/a/worker.env".into()),
            line: 7,
            reason: "r".into(),
        });
        assert!(p.message.contains("line 7"));
        assert!(p.fix.unwrap().contains("line 7"));

        let p = Problem::from(ConfigError::Invalid {
            key: "orchestrator_url",
            origin: Origin::Env("BASIS_ORCHESTRATOR_URL"),
            reason: "r".into(),
        });
        assert_eq!(p.code, ErrorCode::ConfigInvalid);
        assert!(p.message.contains("BASIS_ORCHESTRATOR_URL"));
    }
}
