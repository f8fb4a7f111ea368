//! `basis logs`: the worker log's last lines (redacted), or `--follow` it.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use super::{Context, output};
use crate::ops::logs::{self, Follower, Input, Output};

/// Prints the last lines of the worker log (secrets redacted). With --follow, keeps printing
/// new lines until Ctrl-C.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many of the last lines [default: 50, at most 5000].
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<u32>,
    /// Keep printing lines as they are written.
    #[arg(short, long, conflicts_with = "json")]
    pub follow: bool,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input { lines: args.lines };
    let ops = match ctx.ops() {
        Ok(ops) => ops,
        Err(problem) => return output::failure(args.json, &problem),
    };
    // Start following before reading the tail, so no line falls between the two.
    let follower = args.follow.then(|| Follower::new(&ops));
    let result = logs::run(&ops, &input).await;
    let code = output::render(args.json, result, human);
    let Some(mut follower) = follower else {
        return code;
    };
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let mut out = std::io::stdout().lock();
                for line in follower.poll() {
                    let _ = writeln!(out, "{line}");
                }
                let _ = out.flush();
            }
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        }
    }
}

fn human(o: &Output) -> String {
    o.lines.join("\n")
}
