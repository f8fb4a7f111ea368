//! `basis start`: the CLI mirror of the `start_worker` tool, with a spinner on stderr (when it
//! is a terminal) while the supervisor comes up.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{Context, output};
use crate::ops::start::{self, Input, Output};

/// Starts the worker under a supervisor that runs on in the background (restarts it with
/// backoff, keeps redacted logs). Refuses when one already runs.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The worker env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input { env_file: args.env };
    let spinner = Spinner::start("starting");
    let result = match ctx.ops() {
        Ok(ops) => start::run_with_progress(&ops, &input, &|p| spinner.set(&p.message)).await,
        Err(problem) => Err(problem),
    };
    spinner.finish();
    output::render(args.json, result, human)
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "supervisor started (pid {}), worker {}", o.pid, o.state);
    if let Some(pid) = o.worker_pid {
        let _ = writeln!(s, "  worker pid: {pid}");
    }
    let _ = writeln!(s, "  env: {}", o.env_path);
    let _ = writeln!(s, "  log: {}", o.log_path);
    if let Some(cleaned) = &o.cleaned_up {
        let _ = writeln!(s, "  cleaned up first: {cleaned}");
    }
    s.push_str(&output::next(&o.next_step));
    s
}

/// A one-line spinner on stderr, drawn only when stderr is a terminal.
pub(super) struct Spinner {
    message: Arc<Mutex<String>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Spinner {
    pub(super) fn start(message: &str) -> Self {
        let message = Arc::new(Mutex::new(message.to_owned()));
        let task = std::io::stderr().is_terminal().then(|| {
            let message = Arc::clone(&message);
            tokio::spawn(async move {
                const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
                for frame in FRAMES.iter().cycle() {
                    let text = message
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    draw(&format!("\r\x1b[2K{frame} {text}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        });
        Self { message, task }
    }

    pub(super) fn set(&self, text: &str) {
        text.clone_into(&mut self.message.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(super) fn finish(self) {
        if let Some(task) = self.task {
            task.abort();
            draw("\r\x1b[2K");
        }
    }
}

fn draw(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{text}");
    let _ = err.flush();
}
