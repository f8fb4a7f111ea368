//! `basis leaderboard`: the CLI mirror of the `get_leaderboard` tool, with this host's
//! worker's own rank.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::discovery::leaderboard::{self, Input, Output};
use crate::wire::LeaderboardEntry;

/// Shows how workers rank by what the orchestrator observed (tasks passed, pass rate,
/// disputes lost, online share, tokens served, time to first token; docs/DISCOVERY.md), and
/// where this host's worker stands.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The window: 24h, 7d or all.
    #[arg(long, default_value = "24h")]
    pub window: String,
    /// Rank by: score, tasks_passed, pass_rate, online, tokens, ttft, metric (with --family).
    #[arg(long, default_value = "score")]
    pub by: String,
    /// With --by metric: the task family.
    #[arg(long, value_name = "NAME", required_if_eq("by", "metric"))]
    pub family: Option<String>,
    /// Entries to show (1 to 1000).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Env file naming this worker [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input {
        window: Some(args.window),
        by: Some(args.by),
        family: args.family,
        limit: Some(args.limit),
        env_file: args.env,
    };
    let result = match ctx.ops() {
        Ok(ops) => leaderboard::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, human)
}

fn permille(v: u64) -> String {
    format!("{}.{}%", v / 10, v % 10)
}

/// Thousandths of a point as a decimal, its sign kept (−500 is "-0.500").
fn points(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let abs = milli.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

fn line(e: &LeaderboardEntry) -> String {
    format!(
        "{:>4}  {:<24} {:>9}  passed {:>4}  pass {:>6}  lost {:>2}  online {:>6}  tokens {:>9}  ttft {}{}",
        e.rank,
        e.worker_id.as_str(),
        points(e.score_milli),
        e.tasks_passed,
        permille(e.pass_rate_milli),
        e.disputes_lost,
        permille(e.online_milli),
        e.tokens_served,
        e.ttft_p50_ms
            .map_or_else(|| "-".to_owned(), |t| format!("{t} ms")),
        e.metric
            .as_ref()
            .map_or_else(String::new, |m| format!("  metric {m}")),
    )
}

fn human(o: &Output) -> String {
    let b = &o.leaderboard;
    let mut s = format!(
        "leaderboard of {} ({} window, by {}{}): {} ranked\n",
        o.orchestrator_url,
        b.window.as_str(),
        b.by.as_str(),
        b.family
            .as_ref()
            .map_or_else(String::new, |f| format!(" in family {f}")),
        match b.total {
            1 => "1 worker".to_owned(),
            n => format!("{n} workers"),
        }
    );
    if b.entries.is_empty() {
        s.push_str("  nobody is ranked yet\n");
    }
    for e in &b.entries {
        let _ = writeln!(s, "{}", line(e));
    }
    match (&o.worker_id, &b.you) {
        (Some(_), Some(you)) => {
            let _ = writeln!(
                s,
                "this worker: rank {} of {}\n{}",
                you.rank,
                b.total,
                line(you)
            );
        }
        (Some(id), None) => {
            let _ = writeln!(s, "this worker ({id}) is not ranked here");
        }
        (None, _) => s.push_str("this host names no worker (no env file)\n"),
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn points_keep_their_sign() {
        assert_eq!(super::points(-500), "-0.500");
        assert_eq!(super::points(-4_321), "-4.321");
        assert_eq!(super::points(1_005), "1.005");
        assert_eq!(super::points(0), "0.000");
    }
}
