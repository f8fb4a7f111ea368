//! `basis tasks`: the CLI mirror of the `fetch_tasks` tool.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::tasks::fetch::{self, Input, Output};

/// Lists tasks on the orchestrator's market, highest reward first (open tasks by default).
/// Each line says whether this worker's capabilities (runtime:<runtime>, model:<name>, from
/// the env file) match the task, and whether `basis execute` can run it (it has an inference
/// input).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// open (default), claimed, submitted, completed, rejected, disputed, abandoned, expired.
    #[arg(long)]
    pub status: Option<String>,
    /// Only tasks whose required capabilities are all among these (comma separated), e.g.
    /// runtime:vllm,model:llama3.2:1b.
    #[arg(long, value_delimiter = ',', value_name = "CAPS")]
    pub capabilities: Option<Vec<String>>,
    /// Only tasks this worker can claim (the default when no --capabilities are given): its
    /// registered capabilities and GPU memory.
    #[arg(long, conflicts_with_all = ["capabilities", "all"])]
    pub matching: bool,
    /// Every task, each marked with what this worker lacks.
    #[arg(long, conflicts_with = "capabilities")]
    pub all: bool,
    /// Only tasks paying at least this many atomic units.
    #[arg(long, value_name = "AMOUNT")]
    pub min_reward: Option<String>,
    /// Only tasks whose deadline is at least this many seconds away.
    #[arg(long, value_name = "SECONDS")]
    pub deadline_buffer: Option<u64>,
    /// The next_cursor of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Tasks per page, 1 to 50 [default: 20].
    #[arg(long)]
    pub limit: Option<u32>,
    /// Env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input {
        status: args.status,
        capabilities: args.capabilities,
        only_matching: if args.all {
            Some(false)
        } else {
            args.matching.then_some(true)
        },
        min_reward: args.min_reward,
        deadline_buffer_s: args.deadline_buffer,
        cursor: args.cursor,
        limit: args.limit,
        env_file: args.env,
    };
    let result = match ctx.ops() {
        Ok(ops) => fetch::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, human)
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} task(s) at {}; this worker: {}",
        o.tasks.len(),
        o.orchestrator_url,
        if o.worker_capabilities.is_empty() {
            "no capabilities (no env file)".to_owned()
        } else {
            o.worker_capabilities.join(", ")
        }
    );
    for t in &o.tasks {
        let task = &t.task;
        let mark = if t.capabilities_match { "[x]" } else { "[ ]" };
        let kind = if t.has_input { "inference" } else { "agent" };
        let _ = writeln!(
            s,
            "{mark} {}  {}  {}  {kind}  due {}  {}",
            task.task_id,
            output::amount(task.reward, &task.asset, task.asset_decimals),
            task.status,
            output::relative(task.deadline),
            one_line(&task.description, 60)
        );
        if !t.missing_capabilities.is_empty() {
            let _ = writeln!(s, "      lacks: {}", t.missing_capabilities.join(", "));
        }
    }
    if let Some(cursor) = &o.next_cursor {
        let _ = writeln!(s, "more: --cursor {cursor}");
    }
    s.push_str(&output::next(&o.next_step));
    s
}

/// `text` on one line, cut to `max` characters.
pub(super) fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
