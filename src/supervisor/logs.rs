//! Log files: [`RotatingLog`] (size-rotated `worker.log`, `.1`, `.2`, … each 0600, never
//! written through a symlink) and [`tail`] (the last lines across the rotated files).
//! Redaction happens before a line gets here ([`super::sink`]) and again when it is read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The worker's output, redacted and rotated (in the log dir).
pub const WORKER_LOG: &str = "worker.log";
/// The supervisor's own stderr (in the log dir), kept as one previous copy.
pub const SUPERVISOR_LOG: &str = "supervisor.log";
/// Mode of every log file.
pub const LOG_MODE: u32 = 0o600;
/// Longer worker lines are cut here (and marked).
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// The most lines [`tail`] returns.
pub const MAX_TAIL_LINES: usize = 5000;

/// `worker.log` → `worker.log.1` (`index` 0 is the file itself).
pub fn rotated_path(path: &Path, index: usize) -> PathBuf {
    if index == 0 {
        return path.to_path_buf();
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{index}"));
    path.with_file_name(name)
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Opens `path` for appending, creating it 0600; refuses a symbolic link. An existing file
/// that is open to others is narrowed to 0600.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link; logs are never written through one",
                path.display()
            ),
        ));
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(LOG_MODE)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(LOG_MODE))?;
    }
    Ok(file)
}

/// Moves `path` to `path.1` when it is larger than `max_bytes` (the supervisor's own log,
/// rotated once per start).
pub fn rotate_if_larger(path: &Path, max_bytes: u64) -> io::Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.len() > max_bytes => fs::rename(path, rotated_path(path, 1)),
        _ => Ok(()),
    }
}

/// An append-only log file that rotates before it would grow past `max_bytes`, keeping
/// `files` files in all.
#[derive(Debug)]
pub struct RotatingLog {
    path: PathBuf,
    max_bytes: u64,
    files: usize,
    file: File,
    size: u64,
}

impl RotatingLog {
    /// Opens (or creates) `path`, creating its directory 0700.
    pub fn open(path: &Path, max_bytes: u64, files: usize) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        let file = open_private_append(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            max_bytes: max_bytes.max(1),
            files: files.max(1),
            file,
            size,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` and a newline, rotating first when the file would pass the limit.
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        let len = u64::try_from(line.len())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate()?;
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        self.size = self.size.saturating_add(len);
        Ok(())
    }

    /// `.N-1` is dropped, each `.i` becomes `.i+1`, the file becomes `.1`, a new one opens.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        if self.files == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let oldest = rotated_path(&self.path, self.files - 1);
        match fs::remove_file(&oldest) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for i in (0..self.files - 1).rev() {
            let from = rotated_path(&self.path, i);
            if fs::symlink_metadata(&from).is_ok() {
                fs::rename(&from, rotated_path(&self.path, i + 1))?;
            }
        }
        self.file = open_private_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The last `n` lines (at most [`MAX_TAIL_LINES`]) of `path` and, when it has fewer, of its
/// rotated copies `path.1` … `path.{files-1}`, oldest first. Missing files count as empty.
pub fn tail(path: &Path, files: usize, n: usize) -> io::Result<Vec<String>> {
    let n = n.min(MAX_TAIL_LINES);
    let mut lines: Vec<String> = Vec::new();
    for index in 0..files.max(1) {
        if lines.len() >= n {
            break;
        }
        let mut older = tail_file(&rotated_path(path, index), n - lines.len())?;
        older.append(&mut lines);
        lines = older;
    }
    Ok(lines)
}

/// The last `n` lines of one file, read backwards in chunks.
fn tail_file(path: &Path, n: usize) -> io::Result<Vec<String>> {
    const CHUNK: u64 = 64 * 1024;
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut pos = file.metadata()?.len();
    let mut buf: Vec<u8> = Vec::new();
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK);
        let len = usize::try_from(pos - start).map_err(io::Error::other)?;
        let mut chunk = vec![0u8; len];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        pos = start;
        // One more newline than lines wanted: the first line seen may be cut.
        if newline_count(&buf) > n {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let mut all: Vec<&str> = text.lines().collect();
    if pos > 0 && !all.is_empty() {
        all.remove(0);
    }
    let skip = all.len().saturating_sub(n);
    Ok(all[skip..].iter().map(|s| (*s).to_owned()).collect())
}

/// Newlines in `buf`.
fn newline_count(buf: &[u8]) -> usize {
    buf.split(|b| *b == b'\n').count().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn rotates_at_the_limit_and_keeps_n_files() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("logs/worker.log");
        let mut log = RotatingLog::open(&path, 100, 3).unwrap();
        for i in 0..40 {
            log.write_line(&format!("line {i:03} ....")).unwrap(); // 16 bytes + newline
        }
        for i in 0..3 {
            let p = rotated_path(&path, i);
            assert!(fs::metadata(&p).unwrap().len() <= 100, "{}", p.display());
            assert_eq!(mode(&p), 0o600);
        }
        assert!(!rotated_path(&path, 3).exists());
        assert_eq!(mode(&dir.path().join("logs")), 0o700);
        let last = tail(&path, 3, 7).unwrap();
        let want: Vec<String> = (33..40).map(|i| format!("line {i:03} ....")).collect();
        assert_eq!(last, want);
        // Across files, oldest first, no more than what is kept.
        let all = tail(&path, 3, 1000).unwrap();
        assert!(all.len() < 40 && all.len() >= 12, "{}", all.len());
        assert_eq!(all.last().unwrap(), "line 039 ....");
    }

    #[test]
    fn tail_reads_backwards_across_chunks() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("big.log");
        let mut log = RotatingLog::open(&path, u64::MAX, 1).unwrap();
        let line = "x".repeat(1000);
        for i in 0..300 {
            log.write_line(&format!("{i} {line}")).unwrap();
        }
        let got = tail(&path, 1, 100).unwrap();
        assert_eq!(got.len(), 100);
        assert!(got[0].starts_with("200 "));
        assert!(got[99].starts_with("299 "));
        assert!(tail(&dir.path().join("none.log"), 3, 5).unwrap().is_empty());
    }

    #[test]
    fn symlinks_are_refused_and_loose_modes_narrowed() {
        let dir = TempDir::new().unwrap();
        let target = dir.path().join("elsewhere");
        fs::write(&target, "keep").unwrap();
        let link = dir.path().join("worker.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(RotatingLog::open(&link, 10, 2).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        let loose = dir.path().join("loose.log");
        fs::write(&loose, "").unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).unwrap();
        open_private_append(&loose).unwrap();
        assert_eq!(mode(&loose), 0o600);
    }
}
