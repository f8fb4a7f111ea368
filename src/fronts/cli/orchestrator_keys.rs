//! `basis orchestrator keys list|usage ID|revoke ID|set-limits ID`: the operator's key management on a
//! running orchestrator (over HTTP, `--url`, with the admin key from `BASIS_ADMIN_KEY` or
//! `--admin-key-file`). Calls `ops::keys` and renders (`--json`: exactly the API's JSON).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::output;
use crate::config::{DEFAULT_ORCHESTRATOR_URL, ENV_ORCHESTRATOR_URL};
use crate::ops::keys::{self, Admin};
use crate::wire::{ApiKey, KeyLimits, KeyUsage};

/// Where the orchestrator is and how to prove the operator is asking.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The orchestrator's base URL.
    #[arg(long, env = ENV_ORCHESTRATOR_URL, default_value = DEFAULT_ORCHESTRATOR_URL)]
    pub url: String,
    /// A file whose first line is the admin key (default: the BASIS_ADMIN_KEY variable).
    #[arg(long, value_name = "FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// Print the result as JSON (the API's).
    #[arg(long)]
    pub json: bool,
}

/// A client key's quotas, as flags.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct LimitArgs {
    /// Requests per minute (a bucket: this many at once, then one every 60/N s); 429 past it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub requests_per_minute: Option<u32>,
    /// Prompt plus completion tokens per UTC day; 429 once used, until midnight UTC.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub tokens_per_day: Option<u64>,
}

impl From<LimitArgs> for KeyLimits {
    fn from(a: LimitArgs) -> Self {
        Self {
            requests_per_minute: a.requests_per_minute,
            tokens_per_day: a.tokens_per_day,
        }
    }
}

fn admin(a: &AdminArgs) -> Admin {
    Admin {
        url: a.url.clone(),
        admin_key_file: a.admin_key_file.clone(),
    }
}

fn limits_text(l: &KeyLimits) -> String {
    let rpm = l
        .requests_per_minute
        .map_or_else(|| "unlimited".to_owned(), |n| format!("{n}"));
    let tpd = l
        .tokens_per_day
        .map_or_else(|| "unlimited".to_owned(), |n| format!("{n}"));
    format!("requests/min {rpm}, tokens/day {tpd}")
}

fn line(k: &ApiKey) -> String {
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else {
        "active"
    };
    let label = k
        .label
        .as_deref()
        .map_or_else(String::new, |l| format!(" \"{l}\""));
    let mut text = format!("{} {:<9} {state}{label}", k.id, k.role);
    if k.role == "client" {
        let u = &k.usage_today;
        let _ = write!(
            text,
            "\n    {}; today {} requests, {} prompt + {} completion tokens, charged {} atomic \
             units",
            limits_text(&k.limits),
            u.requests,
            u.prompt_tokens,
            u.completion_tokens,
            u.amount
        );
    }
    text
}

/// `keys list`.
pub async fn list(a: &AdminArgs) -> ExitCode {
    output::render(a.json, keys::list(&admin(a)).await, |list| {
        if list.keys.is_empty() {
            return "no keys: create one with `basis orchestrator keys create --role client`"
                .to_owned();
        }
        list.keys.iter().map(line).collect::<Vec<_>>().join("\n")
    })
}

/// `keys usage ID`.
pub async fn usage(id: &str, days: u32, a: &AdminArgs) -> ExitCode {
    output::render(a.json, keys::usage(&admin(a), id, days).await, |r| {
        let shown = |u: &KeyUsage| {
            format!(
                "{} requests, {} prompt + {} completion tokens, charged {}",
                u.requests,
                u.prompt_tokens,
                u.completion_tokens,
                output::amount(u.amount, &r.asset, r.asset_decimals)
            )
        };
        let mut text = format!("{} over the last {days} days:", r.key.id);
        if r.days.is_empty() {
            text.push_str(
                "
  not used",
            );
        }
        for d in &r.days {
            let _ = write!(
                text,
                "
  {}  {}",
                d.date,
                shown(&d.usage)
            );
        }
        let _ = write!(
            text,
            "
  total       {}",
            shown(&r.total)
        );
        text
    })
}

/// `keys revoke ID`.
pub async fn revoke(id: &str, a: &AdminArgs) -> ExitCode {
    output::render(a.json, keys::revoke(&admin(a), id).await, |k| {
        format!(
            "{} is revoked: it no longer works on any route\n{}",
            k.id,
            line(k)
        )
    })
}

/// `keys set-limits ID`.
pub async fn set_limits(id: &str, limits: LimitArgs, a: &AdminArgs) -> ExitCode {
    output::render(
        a.json,
        keys::set_limits(&admin(a), id, limits.into()).await,
        |k| format!("{}: {}", k.id, limits_text(&k.limits)),
    )
}

/// `workers revoke ID`.
pub async fn revoke_worker(id: &str, a: &AdminArgs) -> ExitCode {
    output::render(a.json, keys::revoke_worker(&admin(a), id).await, |w| {
        format!(
            "worker {} is revoked: its key no longer works on any route, and its channel is \
             closed (an admin re-registration lifts it)",
            w.worker_id
        )
    })
}
