//! `basis network`: the CLI mirror of the `network_status` tool.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::network::{self, Input, Output};

/// Shows the orchestrator's onboarding posture and whether this host's env file is complete
/// and registered there.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Orchestrator URL [default: the env file's, else basis.toml / BASIS_ORCHESTRATOR_URL].
    #[arg(long)]
    pub orchestrator_url: Option<String>,
    /// Env file [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub env: Option<String>,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: Args) -> ExitCode {
    let input = Input {
        orchestrator_url: args.orchestrator_url,
        env_file: args.env,
    };
    let result = match ctx.ops() {
        Ok(ops) => network::run(&ops, &input).await,
        Err(p) => Err(p),
    };
    output::render(args.json, result, human)
}

/// The JSON name of a unit enum value, e.g. `off-chain`.
fn wire_name(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "?".to_owned(),
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "[x]" } else { "[ ]" }
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} orchestrator reachable at {}",
        mark(o.reachable),
        o.orchestrator_url
    );
    if let Some(p) = &o.orchestrator_error {
        let _ = writeln!(s, "      {}: {}", p.code, output::cli(&p.message));
    }
    if let Some(b) = &o.onboarding {
        let _ = writeln!(
            s,
            "      registration {}, job routing {}, settlement {}, heartbeat every {} s, online window {} s",
            wire_name(&b.registration),
            if b.job_routing { "on" } else { "off" },
            wire_name(&b.settlement),
            b.heartbeat_interval_s,
            b.online_window_s
        );
        if let Some(m) = &b.task_market {
            let units = m
                .asset_decimals
                .map_or_else(|| "atomic units".to_owned(), |d| format!("{d} decimals"));
            let _ = writeln!(
                s,
                "      task market: rewards in {} ({units}), protocol fee {}.{:02} %",
                m.asset,
                m.protocol_fee_bps / 100,
                m.protocol_fee_bps % 100
            );
        }
    }
    let _ = writeln!(
        s,
        "{} env file complete ({})",
        mark(o.env.complete),
        o.env.path
    );
    if !o.env.missing.is_empty() {
        let _ = writeln!(s, "      missing: {}", o.env.missing.join(", "));
    }
    if let Some(p) = &o.env.error {
        let _ = writeln!(s, "      {}: {}", p.code, output::cli(&p.message));
        if let Some(fix) = &p.fix {
            let _ = writeln!(s, "      fix: {}", output::cli(fix));
        }
    }
    if o.reachable {
        let _ = writeln!(s, "{} registered", mark(o.registered));
        let held = if o.legacy {
            "orchestrator holds this host's legacy token (not yet its device key)"
        } else {
            "orchestrator holds this host's device key"
        };
        let _ = writeln!(s, "{} {held}", mark(o.credential_matches));
    } else {
        let _ = writeln!(s, "[?] registered: unknown until the orchestrator answers");
    }
    s.push_str(&output::next(&o.next_step));
    s
}
