//! Reading and writing `worker.env` on disk: 0600, atomic, only inside [`AllowedDirs`],
//! never through a symlink; reading refuses a file open to other users; [`env_target`] tells
//! a worker env file from another file a write must not replace.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::domain::{DeviceKey, KeyFingerprint, TokenFingerprint, WorkerToken};

use super::allowed::AllowedDirs;
use super::atomic;
use super::env_file::WorkerEnv;
use super::error::EnvFileError;

/// The env file's mode: owner read/write only.
pub const ENV_FILE_MODE: u32 = 0o600;

/// Env files larger than this are refused on read (a real one is well under 1 KiB).
const MAX_ENV_FILE_BYTES: u64 = 1 << 20;

/// What [`WorkerEnv::write`] did. Never holds a secret, only fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The absolute path written.
    pub path: PathBuf,
    /// The keys written, in file order.
    pub keys: Vec<String>,
    /// The legacy token's, while the file still holds one.
    pub token_fingerprint: Option<TokenFingerprint>,
    /// The device key's.
    pub key_fingerprint: Option<KeyFingerprint>,
    /// Whether a file was replaced (false: newly created).
    pub replaced: bool,
}

/// What an env file path holds before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvTarget {
    /// Nothing: the file is created.
    Missing,
    /// A worker env file ([`WorkerEnv::is_worker_env_text`]): it is merged and rewritten.
    WorkerEnv,
    /// Any other file (or not a regular file, or larger than a worker env file can be): it is
    /// replaced only when the caller forces it.
    Foreign,
}

/// Classifies `path` (already through [`AllowedDirs::check`]) by [`EnvTarget`]. Reads the
/// file to decide, and never shows what it read.
pub fn env_target(path: &Path) -> Result<EnvTarget, EnvFileError> {
    let io_err = |source| EnvFileError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    };
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(EnvTarget::Missing),
        Err(e) => return Err(io_err(e)),
    };
    if !meta.is_file() || meta.len() > MAX_ENV_FILE_BYTES {
        return Ok(EnvTarget::Foreign);
    }
    let bytes = fs::read(path).map_err(io_err)?;
    Ok(
        if WorkerEnv::is_worker_env_text(&String::from_utf8_lossy(&bytes)) {
            EnvTarget::WorkerEnv
        } else {
            EnvTarget::Foreign
        },
    )
}

impl WorkerEnv {
    /// Reads and parses `path`. Warns (tracing) when the file is readable or writable by
    /// group or others.
    pub fn read(path: &Path) -> Result<WorkerEnv, EnvFileError> {
        let io_err = |source| EnvFileError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        };
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EnvFileError::Missing {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => return Err(io_err(e)),
        };
        if !meta.is_file() {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        if meta.len() > MAX_ENV_FILE_BYTES {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "larger than 1 MiB; this is not a worker env file",
            )));
        }
        // The file holds the device key: one others may read or change, or that another user
        // owns, is refused, not used with a warning nobody (an agent) reads.
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(EnvFileError::LooseMode {
                path: path.to_path_buf(),
                mode,
            });
        }
        let owner = meta.uid();
        if owner != nix::unistd::geteuid().as_raw() {
            return Err(EnvFileError::ForeignOwner {
                path: path.to_path_buf(),
                owner,
            });
        }
        let bytes = fs::read(path).map_err(io_err)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            EnvFileError::Parse {
                path: Some(path.to_path_buf()),
                line: valid.split(|b| *b == b'\n').count(),
                reason: "the line is not valid UTF-8".to_owned(),
            }
        })?;
        Self::parse(&text).map_err(|e| match e {
            EnvFileError::Parse { line, reason, .. } => EnvFileError::Parse {
                path: Some(path.to_path_buf()),
                line,
                reason,
            },
            other => other,
        })
    }

    /// [`read`](Self::read), with a missing file as `None`.
    pub fn read_optional(path: &Path) -> Result<Option<WorkerEnv>, EnvFileError> {
        match Self::read(path) {
            Ok(env) => Ok(Some(env)),
            Err(EnvFileError::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Validates, then atomically writes the file with mode 0600 at `path`, which must pass
    /// [`AllowedDirs::check`]. Missing parent directories are created 0700.
    pub fn write(&self, path: &Path, allowed: &AllowedDirs) -> Result<WriteOutcome, EnvFileError> {
        self.write_as(path, allowed, false)
    }

    /// [`write`](Self::write) for a file the caller found missing: it is created only if it is
    /// still missing; a file another writer created meanwhile is left as it is and the answer
    /// is [`EnvFileError::Appeared`] (read it and merge again).
    pub fn create(&self, path: &Path, allowed: &AllowedDirs) -> Result<WriteOutcome, EnvFileError> {
        self.write_as(path, allowed, true)
    }

    fn write_as(
        &self,
        path: &Path,
        allowed: &AllowedDirs,
        new: bool,
    ) -> Result<WriteOutcome, EnvFileError> {
        let target = allowed.check(path)?;
        self.validate()?;
        let replaced = fs::symlink_metadata(&target).is_ok();
        if new && replaced {
            return Err(EnvFileError::Appeared { path: target });
        }
        let prepared = atomic::prepare(&target, self.render().as_bytes(), ENV_FILE_MODE);
        let committed = prepared.and_then(|p| if new { p.commit_new() } else { p.commit() });
        committed.map_err(|e| {
            if new && e.kind() == std::io::ErrorKind::AlreadyExists {
                return EnvFileError::Appeared {
                    path: target.clone(),
                };
            }
            match atomic::symlink_refused(&e) {
                Some(link) => EnvFileError::Symlink {
                    path: target.clone(),
                    link: link.to_path_buf(),
                },
                None => EnvFileError::Io {
                    op: "write",
                    path: target.clone(),
                    source: e,
                },
            }
        })?;
        Ok(WriteOutcome {
            keys: self.keys(),
            token_fingerprint: self.token.as_ref().map(WorkerToken::fingerprint),
            key_fingerprint: self.device_key.as_ref().map(DeviceKey::fingerprint),
            replaced,
            path: target,
        })
    }
}
