//! The worker process: how it is started ([`WorkerCommand`]; its stdin is the lifeline that
//! ends it if this supervisor dies, see `worker::lifeline`), and the pumps that copy its stdout
//! and stderr, line by line, into the redacting [`LogSink`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinHandle;

use super::clock;
use super::logs::MAX_LINE_BYTES;
use super::sink::LogSink;
use crate::config::ENV_STATE_DIR;
use crate::config::{LIFELINE_ENV, LIFELINE_STDIN};

/// The variable naming a test worker command (tests only; see [`WorkerCommand::Shell`]).
pub const WORKER_CMD_ENV: &str = "BASIS_SUPERVISE_WORKER_CMD";

/// What the supervisor runs as its worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerCommand {
    /// `EXE worker --env PATH`: the real worker daemon (normally this same executable).
    Basis { exe: PathBuf },
    /// Tests only: `/bin/sh -c CMD basis-worker --env PATH` (so `$1` is `--env` and `$2` the
    /// env path). Set through the hidden `basis supervise --worker-cmd` flag or
    /// [`WORKER_CMD_ENV`], which `basis start` passes down by inheritance.
    Shell(String),
}

impl WorkerCommand {
    /// The command line for an env file (arguments only; never the file's contents), with
    /// `BASIS_STATE_DIR` set so the worker writes `worker-status.json` where the supervisor
    /// and `worker_status` look.
    fn command(&self, env_path: &Path, state_dir: &Path) -> Command {
        let mut cmd = match self {
            WorkerCommand::Basis { exe } => {
                let mut c = Command::new(exe);
                c.arg("worker");
                c
            }
            WorkerCommand::Shell(script) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(script).arg("basis-worker");
                c
            }
        };
        cmd.arg("--env").arg(OsString::from(env_path.as_os_str()));
        cmd.env(ENV_STATE_DIR, state_dir);
        cmd.env(LIFELINE_ENV, LIFELINE_STDIN);
        cmd
    }
}

/// A running worker process and its output pumps.
#[derive(Debug)]
pub struct RunningWorker {
    pub child: Child,
    pub pid: u32,
    /// When it started (for the healthy-run reset and `ran_for_ms`).
    pub started: Instant,
    /// Unix seconds when it started.
    pub started_at: u64,
    pumps: Vec<JoinHandle<()>>,
    /// The write end of the worker's stdin, its lifeline (`worker::lifeline`): held, never
    /// written, closed by the kernel when this process ends, which tells the worker to go.
    /// Kept out of `child`, whose `wait` would close it at once.
    _lifeline: Option<ChildStdin>,
}

impl RunningWorker {
    /// Waits (briefly) for the pumps to copy the last output after the process ended. A
    /// grandchild holding the pipes open does not hold the supervisor up.
    pub async fn finish_pumps(&mut self) {
        for pump in self.pumps.drain(..) {
            let abort = pump.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), pump)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// Starts the worker with its lifeline as stdin and stdout/stderr piped into `sink`. `started` runs
/// with its pid before any of its output is copied (so the start event comes first). It is
/// killed if the supervisor drops it (only after it ended, or on a bug).
pub fn spawn(
    command: &WorkerCommand,
    env_path: &Path,
    state_dir: &Path,
    sink: &Arc<LogSink>,
    started: impl FnOnce(u32),
) -> std::io::Result<RunningWorker> {
    let mut cmd = command.command(env_path, state_dir);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("the worker exited before its pid was known"))?;
    started(pid);
    let lifeline = child.stdin.take();
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(out, Arc::clone(sink))));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(err, Arc::clone(sink))));
    }
    Ok(RunningWorker {
        child,
        pid,
        started: Instant::now(),
        started_at: clock::unix_now(),
        pumps,
        _lifeline: lifeline,
    })
}

/// Copies lines from `reader` to `sink` until EOF. Lines longer than [`MAX_LINE_BYTES`] are
/// cut and marked; invalid UTF-8 is replaced.
async fn pump<R: AsyncRead + Unpin>(reader: R, sink: Arc<LogSink>) {
    let mut reader = BufReader::new(reader);
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    loop {
        let (consumed, ended) = match reader.fill_buf().await {
            Ok([]) | Err(_) => {
                if !line.is_empty() || cut {
                    emit(&sink, &line, cut);
                }
                return;
            }
            Ok(buf) => {
                if let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    take(&mut line, &buf[..i], &mut cut);
                    (i + 1, true)
                } else {
                    take(&mut line, buf, &mut cut);
                    (buf.len(), false)
                }
            }
        };
        reader.consume(consumed);
        if ended {
            emit(&sink, &line, cut);
            line.clear();
            cut = false;
        }
    }
}

/// Appends what fits under the line limit; notes when something was cut.
fn take(line: &mut Vec<u8>, bytes: &[u8], cut: &mut bool) {
    let room = MAX_LINE_BYTES.saturating_sub(line.len());
    if bytes.len() > room {
        *cut = true;
    }
    line.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

fn emit(sink: &LogSink, line: &[u8], cut: bool) {
    let text = String::from_utf8_lossy(line);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    if cut {
        // Drop the word the cut went through: a token split there would escape redaction.
        let kept = text.rfind(char::is_whitespace).map_or("", |i| &text[..i]);
        sink.line(&format!("{kept} … [line cut at {MAX_LINE_BYTES} bytes]"));
    } else {
        sink.line(text);
    }
}
