//! Small helpers the probes share: find a program on PATH without running a shell, run it with a
//! deadline (killed when the deadline passes), and turn text and durations into report values.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What a finished program printed.
#[derive(Debug, Clone)]
pub(crate) struct Output {
    /// Exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The first non-empty line of stderr, else of stdout: what to show as the reason.
    pub fn reason(&self) -> String {
        let line = first_line(&self.stderr);
        let line = if line.is_empty() {
            first_line(&self.stdout)
        } else {
            line
        };
        match self.code {
            Some(code) => format!("exit status {code}: {line}"),
            None => format!("killed by a signal: {line}"),
        }
    }
}

/// Why a program gave no output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunError {
    /// It could not be started.
    Spawn(String),
    /// It ran past the deadline and was killed.
    Timeout(Duration),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spawn(e) => write!(f, "could not start: {e}"),
            Self::Timeout(d) => write!(f, "no answer within {} ms, killed", d.as_millis()),
        }
    }
}

/// Runs `program args…` with stdin closed and `LC_ALL=C`, killing it at `deadline`.
pub(crate) async fn run(
    program: &Path,
    args: &[&str],
    deadline: Instant,
) -> Result<Output, RunError> {
    let budget = deadline.saturating_duration_since(Instant::now());
    let child = tokio::process::Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| RunError::Spawn(e.to_string()))?;
    // Dropping the future on timeout drops the child, and `kill_on_drop` kills it.
    match tokio::time::timeout(budget, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Ok(Err(e)) => Err(RunError::Spawn(e.to_string())),
        Err(_) => Err(RunError::Timeout(budget)),
    }
}

/// Finds an executable by name on `PATH`, then in `extra_dirs` (places distributions and
/// container images install to without adding them to `PATH`).
pub(crate) fn find_program(name: &str, extra_dirs: &[&str]) -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(extra_dirs.iter().map(PathBuf::from))
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file() || path.with_extension("exe").is_file()
}

/// First non-empty line, trimmed, cut to 300 characters.
pub(crate) fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    truncate(line, 300)
}

/// `text` cut to at most `max` characters, with `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max).collect();
    cut.push('…');
    cut
}

/// Milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since `start`.
pub(crate) fn elapsed_ms(start: Instant) -> u64 {
    millis(start.elapsed())
}

/// Bytes to whole MiB (rounded down).
pub(crate) fn bytes_to_mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

/// Display form of a path.
pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Rounds to one decimal place.
pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Fake programs for probe tests.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};

    /// Writes an executable `sh` script `name` into `dir` and returns its path. Written and
    /// closed before anything runs it; callers retry a spawn that fails with "text file busy"
    /// (another test thread forking while the file was open).
    #[cfg(unix)]
    pub fn fake_program(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_skips_blank_lines_and_truncates() {
        assert_eq!(first_line("\n  \n  hello  \nworld"), "hello");
        assert_eq!(first_line(""), "");
        let long = "x".repeat(400);
        assert_eq!(first_line(&long).chars().count(), 301);
    }

    #[test]
    fn find_program_misses_cleanly() {
        assert!(find_program("basis-no-such-program-xyz", &["/nonexistent"]).is_none());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn run_kills_at_deadline() {
        let Some(sleep) = find_program("sleep", &["/bin", "/usr/bin"]) else {
            return;
        };
        let start = Instant::now();
        let res = run(&sleep, &["5"], Instant::now() + Duration::from_millis(100)).await;
        assert!(matches!(res, Err(RunError::Timeout(_))), "{res:?}");
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn units() {
        assert_eq!(bytes_to_mib(85_899_345_920), 81_920);
        assert!((round1(68.53) - 68.5).abs() < f64::EPSILON);
    }
}
