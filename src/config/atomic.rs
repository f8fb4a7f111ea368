//! Atomic file replacement that never writes through a symbolic link.
//!
//! [`prepare`] creates a temp file in the target's own directory, already carrying its final
//! mode (so the content never exists with a looser one), writes and fsyncs it;
//! [`PreparedWrite::commit`] renames it over the target and fsyncs the directory
//! ([`PreparedWrite::commit_new`] only where no target exists yet). Dropping a
//! prepared write instead removes the temp file and leaves the old target untouched, which is
//! what a crash between the two steps looks like to readers.

use std::error::Error;
use std::fmt;
use std::fs::{self, DirBuilder, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use tempfile::NamedTempFile;

/// Mode of directories this module creates.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// The payload of the [`io::Error`] returned when a path is, or passes through, a symlink.
/// Find it with [`symlink_refused`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymlinkRefused {
    /// The component that is a symbolic link.
    pub link: PathBuf,
}

impl fmt::Display for SymlinkRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusing to write through the symbolic link {}",
            self.link.display()
        )
    }
}

impl Error for SymlinkRefused {}

fn refuse(link: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        SymlinkRefused {
            link: link.to_path_buf(),
        },
    )
}

/// The symlink this error refused, if it is a [`SymlinkRefused`] error.
pub fn symlink_refused(err: &io::Error) -> Option<&Path> {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<SymlinkRefused>())
        .map(|s| s.link.as_path())
}

/// Is `path` itself a symbolic link? A missing path is not.
pub fn is_symlink(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.file_type().is_symlink()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Refuses when any existing component of `path` strictly below `root` (the target
/// included) is a symbolic link. `root` itself is trusted as configured. `path` must lie
/// lexically under `root`.
pub fn refuse_symlinks_below(root: &Path, path: &Path) -> io::Result<()> {
    let rest = path.strip_prefix(root).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not under {}", path.display(), root.display()),
        )
    })?;
    let mut current = root.to_path_buf();
    for component in rest.components() {
        match component {
            Component::Normal(name) => current.push(name),
            Component::CurDir => continue,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "path must be normalised (no '..', no root below the allowed directory)",
                ));
            }
        }
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(refuse(&current)),
            Ok(_) => {}
            // Nothing below a missing component exists either.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Creates `dir` and its missing parents with mode 0700 (existing ones are left as they are).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
}

/// The directory a file path lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A fully written, fsynced temp file next to its target, not yet visible under the target's
/// name. [`commit`](Self::commit) publishes it; dropping it removes it.
#[derive(Debug)]
pub struct PreparedWrite {
    temp: NamedTempFile,
    target: PathBuf,
}

/// Writes `bytes` to a temp file in `path`'s directory created with `mode` from the start,
/// then fsyncs it. Refuses when `path` is a symbolic link. Creates missing parent
/// directories with mode 0700.
pub fn prepare(path: &Path, bytes: &[u8], mode: u32) -> io::Result<PreparedWrite> {
    if is_symlink(path)? {
        return Err(refuse(path));
    }
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let dir = parent_dir(path);
    create_private_dir(dir)?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    // The umask may have narrowed the creation mode; set exactly what was asked for. The file
    // is still empty here.
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    Ok(PreparedWrite {
        temp,
        target: path.to_path_buf(),
    })
}

impl PreparedWrite {
    /// Where the temp file is (for tests and diagnostics).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Renames the temp file over the target and fsyncs the directory. Refuses (and removes
    /// the temp file) if the target became a symbolic link meanwhile.
    pub fn commit(self) -> io::Result<()> {
        if is_symlink(&self.target)? {
            return Err(refuse(&self.target));
        }
        let dir = parent_dir(&self.target).to_path_buf();
        self.temp.persist(&self.target).map_err(|e| e.error)?;
        File::open(&dir)?.sync_all()
    }

    /// [`commit`](Self::commit), but only when the target does not exist: if another writer
    /// created it since the caller looked, this fails with `AlreadyExists` and leaves that
    /// file as it is (the temp file is removed).
    pub fn commit_new(self) -> io::Result<()> {
        let dir = parent_dir(&self.target).to_path_buf();
        self.temp
            .persist_noclobber(&self.target)
            .map_err(|e| e.error)?;
        File::open(&dir)?.sync_all()
    }
}

/// Atomically replaces `path` with `bytes` at `mode`: [`prepare`] then
/// [`PreparedWrite::commit`].
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    prepare(path, bytes, mode)?.commit()
}

/// [`write_atomic`], refusing first when any existing component below `root` is a symlink.
pub fn write_atomic_within(root: &Path, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    refuse_symlinks_below(root, path)?;
    write_atomic(path, bytes, mode)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use tempfile::TempDir;

    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_with_exact_mode_and_replaces_looser_files() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("f");
        write_atomic(&path, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(mode_of(&path), 0o600);

        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(entries(tmp.path()), ["f"]);
    }

    #[test]
    fn temp_file_has_final_mode_before_commit() {
        let tmp = TempDir::new().unwrap();
        let prepared = prepare(&tmp.path().join("f"), b"secret", 0o600).unwrap();
        assert_eq!(mode_of(prepared.temp_path()), 0o600);
        assert!(prepared.temp_path().starts_with(tmp.path()));
        prepared.commit().unwrap();
    }

    #[test]
    fn dropping_before_commit_leaves_old_file_and_no_temp() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("f");
        write_atomic(&path, b"old", 0o600).unwrap();
        let prepared = prepare(&path, b"new", 0o600).unwrap();
        let temp_file = prepared.temp_path().to_path_buf();
        assert!(temp_file.exists());
        drop(prepared); // the "crash" between write and rename
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert!(!temp_file.exists());
        assert_eq!(entries(tmp.path()), ["f"]);
    }

    #[test]
    fn symlink_target_refused_and_its_target_untouched() {
        let tmp = TempDir::new().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let link = tmp.path().join("link");
        symlink(&victim, &link).unwrap();
        let err = write_atomic(&link, b"evil", 0o600).unwrap_err();
        assert_eq!(symlink_refused(&err), Some(link.as_path()));
        // Refused already when preparing, before any temp file exists.
        let err = prepare(&link, b"evil", 0o600).unwrap_err();
        assert_eq!(symlink_refused(&err), Some(link.as_path()));
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(entries(tmp.path()), ["link", "victim"]);
    }

    #[test]
    fn symlink_swapped_in_before_commit_is_refused() {
        let tmp = TempDir::new().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let path = tmp.path().join("f");
        let prepared = prepare(&path, b"evil", 0o600).unwrap();
        symlink(&victim, &path).unwrap();
        let err = prepared.commit().unwrap_err();
        assert!(symlink_refused(&err).is_some());
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert_eq!(entries(tmp.path()), ["f", "victim"]);
    }

    #[test]
    fn symlinked_directory_below_root_refused() {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().join("root");
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&elsewhere).unwrap();
        symlink(&elsewhere, root.join("sub")).unwrap();
        let err = write_atomic_within(&root, &root.join("sub/f"), b"x", 0o600).unwrap_err();
        assert_eq!(symlink_refused(&err), Some(root.join("sub").as_path()));
        assert!(entries(&elsewhere).is_empty());
    }

    #[test]
    fn commit_new_never_replaces_a_file_that_appeared() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("f");
        prepare(&path, b"first", 0o600)
            .unwrap()
            .commit_new()
            .unwrap();
        let late = prepare(&path, b"second", 0o600).unwrap();
        let err = late.commit_new().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(entries(tmp.path()), ["f"]);
    }

    #[test]
    fn creates_missing_parents_private() {
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join("a/b/f");
        write_atomic_within(tmp.path(), &path, b"x", 0o600).unwrap();
        assert_eq!(mode_of(&tmp.path().join("a")), 0o700);
        assert_eq!(mode_of(&tmp.path().join("a/b")), 0o700);
        assert_eq!(mode_of(&path), 0o600);
    }
}
