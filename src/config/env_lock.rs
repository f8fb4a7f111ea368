//! [`EnvLock`]: the one lock every basis process takes before it reads, changes and writes an
//! env file, so two of them (`basis write-env`, `basis register`, the MCP tools, in any number
//! of processes) never both find the file missing and each create it with a token of its own,
//! the last writer silently replacing a token the orchestrator may already have registered.
//!
//! The lock is an advisory, exclusive `flock` (std's [`File::lock`]) on the sibling file
//! `NAME.lock` (`worker.env.lock`), created 0600 and never removed: removing a lock file
//! while another process waits on it would let a third lock a new one. The kernel releases
//! the lock when its holder exits, however it exits, so a killed process never leaves it held.

use std::ffi::OsString;
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::atomic;
use super::env_io::ENV_FILE_MODE;
use super::error::EnvFileError;

/// How long [`EnvLock::acquire`] waits for another process to finish with the file. A holder
/// keeps it for one read-modify-write (milliseconds); this bounds the wait behind a holder that
/// is stopped (SIGSTOP, a debugger) rather than one that is working.
pub const ENV_LOCK_WAIT: Duration = Duration::from_secs(30);

/// Holds the exclusive lock on one env file until dropped.
#[derive(Debug)]
pub struct EnvLock {
    _file: File,
    env_path: PathBuf,
}

/// `DIR/NAME.lock` for `DIR/NAME`.
pub fn lock_path(env_path: &Path) -> Option<PathBuf> {
    let mut name = OsString::from(env_path.file_name()?);
    name.push(".lock");
    Some(env_path.with_file_name(name))
}

impl EnvLock {
    /// Locks `env_path` (already through [`AllowedDirs::check`](super::AllowedDirs::check)),
    /// waiting up to [`ENV_LOCK_WAIT`]. Creates the directory (0700) and the lock file (0600)
    /// when missing; refuses a lock file that is a symbolic link.
    pub fn acquire(env_path: &Path) -> Result<Self, EnvFileError> {
        Self::acquire_within(env_path, ENV_LOCK_WAIT)
    }

    /// [`acquire`](Self::acquire), waiting at most `wait`.
    pub fn acquire_within(env_path: &Path, wait: Duration) -> Result<Self, EnvFileError> {
        let lock = lock_path(env_path).ok_or_else(|| EnvFileError::Io {
            op: "lock",
            path: env_path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
        })?;
        let io_err = |source| EnvFileError::Io {
            op: "lock",
            path: lock.clone(),
            source,
        };
        if let Some(dir) = lock.parent() {
            atomic::create_private_dir(dir).map_err(io_err)?;
        }
        if atomic::is_symlink(&lock).map_err(io_err)? {
            return Err(EnvFileError::Symlink {
                path: env_path.to_path_buf(),
                link: lock,
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(ENV_FILE_MODE)
            .open(&lock)
            .map_err(io_err)?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Self {
                        _file: file,
                        env_path: env_path.to_path_buf(),
                    });
                }
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(EnvFileError::Busy {
                        path: env_path.to_path_buf(),
                        lock,
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io_err(e)),
            }
        }
    }

    /// The env file this lock is for.
    pub fn env_path(&self) -> &Path {
        &self.env_path
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path().join("sub/worker.env");
        let held = EnvLock::acquire(&env).unwrap();
        assert_eq!(held.env_path(), env);
        let lock = dir.path().join("sub/worker.env.lock");
        let mode = std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Another open file description (as another process would have) cannot take it.
        let err = EnvLock::acquire_within(&env, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(err, EnvFileError::Busy { .. }), "{err}");
        drop(held);
        EnvLock::acquire_within(&env, Duration::from_millis(50)).unwrap();
        assert!(!env.exists(), "locking creates only the lock file");
    }

    #[test]
    fn a_symlinked_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        symlink(&victim, dir.path().join("worker.env.lock")).unwrap();
        let err = EnvLock::acquire(&dir.path().join("worker.env")).unwrap_err();
        assert!(matches!(err, EnvFileError::Symlink { .. }), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
