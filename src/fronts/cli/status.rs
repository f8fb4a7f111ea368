//! `basis status`: the CLI mirror of the `worker_status` tool.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::status::{self, Input, Output, SupervisorPresence};
use crate::supervisor::clock;

/// Shows the supervisor (running, stale or not running), the worker's state, restarts, recent
/// exits, the worker's own status file and the last log lines (redacted).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many log lines to show [default: 20, at most 200].
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<u32>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input {
        log_lines: args.lines,
    };
    let result = match ctx.ops() {
        Ok(ops) => status::run(&ops, &input).await,
        Err(problem) => Err(problem),
    };
    output::render(args.json, result, human)
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    let pid = o.pid.map_or_else(String::new, |p| format!(" (pid {p})"));
    let presence = o.supervisor.describe();
    let _ = writeln!(s, "supervisor: {presence}{pid}");
    if let Some(note) = &o.note {
        let _ = writeln!(s, "  {note}");
    }
    if o.supervisor == SupervisorPresence::Running {
        let _ = write!(s, "worker process: {}", o.state.describe());
        if let Some(pid) = o.worker_pid {
            let _ = write!(s, " (pid {pid})");
        }
        if let Some(ms) = o.next_restart_in_ms {
            let _ = write!(
                s,
                ", restart in {}",
                clock::human(std::time::Duration::from_millis(ms))
            );
        }
        let _ = writeln!(s, ", {} restart(s)", o.restarts);
    } else if let Some(pid) = o.worker_pid {
        let _ = writeln!(s, "worker process: {} (pid {pid})", o.state.describe());
    }
    if !o.last_exits.is_empty() {
        let _ = writeln!(s, "recent exits:");
        for exit in &o.last_exits {
            let _ = writeln!(s, "  {} {}", output::when(exit.at), exit.reason);
        }
    }
    if let Some(ws) = &o.worker_status {
        let old = if o.worker_status_current {
            ""
        } else {
            " (from an earlier worker process)"
        };
        let _ = writeln!(s, "connection: {}{old}", ws.state.describe());
        if let Some(at) = ws.last_heartbeat_acked {
            let _ = writeln!(s, "  last heartbeat acknowledged: {}", output::when(at));
        }
        let health = if ws.runtime_healthy {
            "healthy"
        } else {
            "unhealthy"
        };
        let _ = writeln!(s, "  runtime {}: {health}", ws.runtime);
        let c = ws.counters;
        let _ = writeln!(
            s,
            "  jobs: {} in flight, {} completed, {} failed",
            ws.current_jobs.len(),
            c.jobs_completed,
            c.jobs_failed
        );
        if let Some(e) = &ws.last_error {
            let _ = writeln!(s, "  last error: {} {}", e.code, e.message);
        }
    }
    if !o.log_tail.is_empty() {
        let _ = writeln!(s, "log ({}):", o.log_path);
        for line in &o.log_tail {
            let _ = writeln!(s, "  {line}");
        }
    }
    s.push_str(&output::next(&o.next_step));
    s
}
