//! `logs`: the last lines of the worker log, redacted: through the supervisor's socket while
//! it runs, from the file when it is gone. [`Follower`] backs `basis logs --follow`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Context;
use crate::config::Dirs;
use crate::domain::{ErrorCode, Problem};
use crate::guard::{Guarded, SecretRefused};
use crate::supervisor::control::{self, Request, Response};
use crate::supervisor::logs::{self as log_files, MAX_TAIL_LINES, WORKER_LOG};
use crate::supervisor::redact::Redactor;
use crate::supervisor::{Presence, Tuning, pidfile, probe};

/// Lines returned when none are asked for.
pub const DEFAULT_LINES: u32 = 50;

/// How long to wait for the supervisor's answer before reading the file instead.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(3);

/// Which lines of the worker log to show.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// How many of the last lines to return (default 50, at most 5000).
    #[serde(default)]
    pub lines: Option<u32>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        Ok(())
    }
}

/// Where the lines came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    /// The running supervisor answered.
    Supervisor,
    /// No supervisor answered: read from the log files on disk.
    File,
}

/// The last lines of the worker log. Secrets (the device key, a legacy token, anything shaped like a key)
/// are replaced by `[REDACTED]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// The log file (rotated copies are `.1`, `.2` beside it).
    pub path: String,
    /// The lines, oldest first. The worker's own output, and `[supervisor …]` lines for
    /// starts, exits, restarts and stops.
    pub lines: Vec<String>,
    pub source: LogSource,
    /// Whether a supervisor is running now.
    pub supervisor_running: bool,
}

/// The requested line count, bounded.
fn line_count(lines: Option<u32>) -> usize {
    usize::try_from(lines.unwrap_or(DEFAULT_LINES))
        .unwrap_or(MAX_TAIL_LINES)
        .min(MAX_TAIL_LINES)
}

/// `logs/worker.log` in the state dir.
pub fn worker_log(dirs: &Dirs) -> PathBuf {
    dirs.log_dir().join(WORKER_LOG)
}

/// Redacts with the token of the supervisor's env file when known, else the default one.
fn redactor(ctx: &Context, presence: &Presence) -> Redactor {
    let env_path = match presence {
        Presence::Running(info)
        | Presence::Stale {
            info: Some(info), ..
        } => PathBuf::from(&info.env_path),
        _ => ctx.env_path(None),
    };
    Redactor::from_env_file(&env_path)
}

/// The last `n` lines from the files on disk, redacted.
pub(crate) fn tail_file(
    dirs: &Dirs,
    redactor: &Redactor,
    n: usize,
) -> Result<Vec<String>, Problem> {
    let path = worker_log(dirs);
    let lines = log_files::tail(&path, Tuning::default().log_files, n).map_err(|e| {
        Problem::new(
            ErrorCode::IoError,
            format!("cannot read {}: {e}", path.display()),
        )
        .with_fix("check that the state directory belongs to this user")
    })?;
    Ok(lines
        .iter()
        .map(|l| redactor.redact(l).into_owned())
        .collect())
}

/// Asks the running supervisor for its last `n` lines; `None` when it does not answer.
pub(crate) async fn tail_socket(
    dirs: &Dirs,
    redactor: &Redactor,
    n: usize,
) -> Option<(String, Vec<String>)> {
    let request = Request::Logs { lines: Some(n) };
    match control::request(&dirs.supervisor_sock(), &request, SOCKET_TIMEOUT).await {
        Ok(Response::Logs { path, lines }) => Some((
            path,
            lines
                .iter()
                .map(|l| redactor.redact(l).into_owned())
                .collect(),
        )),
        _ => None,
    }
}

/// The last lines of the worker log. Read-only.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let n = line_count(input.lines);
    let dirs = ctx.dirs();
    let presence = probe(dirs);
    let redactor = redactor(ctx, &presence);
    let running = presence.is_running();
    if running && let Some((path, lines)) = tail_socket(dirs, &redactor, n).await {
        return Ok(Output {
            path,
            lines,
            source: LogSource::Supervisor,
            supervisor_running: true,
        });
    }
    Ok(Output {
        path: worker_log(dirs).display().to_string(),
        lines: tail_file(dirs, &redactor, n)?,
        source: LogSource::File,
        supervisor_running: running,
    })
}

/// Follows `worker.log` like `tail -f`: each [`poll`](Follower::poll) returns the complete
/// lines appended since the last one, redacted. After a rotation it finishes the old file
/// (now `.1`) and goes on with the new one.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    pos: u64,
    ino: Option<u64>,
    partial: Vec<u8>,
    redactor: Redactor,
}

impl Follower {
    /// Starts at the current end of the log.
    pub fn new(ctx: &Context) -> Self {
        let dirs = ctx.dirs();
        let path = worker_log(dirs);
        let meta = std::fs::metadata(&path).ok();
        let presence = pidfile::read(&dirs.supervisor_json()).ok().flatten();
        let redactor = match presence {
            Some(info) => Redactor::from_env_file(Path::new(&info.env_path)),
            None => Redactor::from_env_file(&ctx.env_path(None)),
        };
        Self {
            pos: meta.as_ref().map_or(0, std::fs::Metadata::len),
            ino: meta.map(|m| m.ino()),
            path,
            partial: Vec::new(),
            redactor,
        }
    }

    /// New complete lines since the last call.
    pub fn poll(&mut self) -> Vec<String> {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if self.ino.is_some_and(|ino| ino != meta.ino()) {
            // Rotated: the rest of the old file is now `.1`.
            let old = log_files::rotated_path(&self.path, 1);
            if std::fs::metadata(&old).is_ok_and(|m| Some(m.ino()) == self.ino) {
                read_from(&old, self.pos, &mut bytes);
            }
            self.pos = 0;
        } else if meta.len() < self.pos {
            self.pos = 0;
        }
        self.ino = Some(meta.ino());
        self.pos += read_from(&self.path, self.pos, &mut bytes);
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .map(|l| self.redactor.redact(l).into_owned())
            .collect()
    }
}

/// Appends `path`'s bytes from `pos` to `out`; returns how many were read.
fn read_from(path: &Path, pos: u64, out: &mut Vec<u8>) -> u64 {
    let Ok(mut file) = File::open(path) else {
        return 0;
    };
    if file.seek(SeekFrom::Start(pos)).is_err() {
        return 0;
    }
    file.read_to_end(out)
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}
