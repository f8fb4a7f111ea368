//! `basis write-env`: the CLI mirror of the `write_env` tool.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::{Context, output};
use crate::ops::write_env::{self, Input, Output};

/// Writes worker.env (mode 0600, atomically). Omitted flags keep the file's current values; the
/// device key is generated on this host when absent and never printed (only its fingerprint).
/// Another orchestrator than the file's needs --new-orchestrator; a plain http:// one off this
/// machine needs --allow-insecure-http.
// Each bool is an independent on/off flag of the command line.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, clap::Args)]
pub struct Args {
    /// PUBLIC EVM reward address (0x + 40 hex). Never a private key.
    #[arg(long)]
    pub wallet: Option<String>,
    /// Worker name: 2-63 lowercase letters, digits and '-'.
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Runtime: echo (simulator, no GPU), ollama or vllm [new files: echo].
    #[arg(long)]
    pub runtime: Option<String>,
    /// Models served, comma separated (e.g. llama3.1:8b,qwen2.5:7b) [echo: echo].
    #[arg(long, value_delimiter = ',')]
    pub models: Option<Vec<String>>,
    /// Ollama model to run (ollama runtime).
    #[arg(long)]
    pub ollama_model: Option<String>,
    /// Ollama URL [default: http://127.0.0.1:11434].
    #[arg(long)]
    pub ollama_url: Option<String>,
    /// vLLM URL [default: http://127.0.0.1:8000].
    #[arg(long)]
    pub vllm_url: Option<String>,
    /// Orchestrator URL [default: from basis.toml or BASIS_ORCHESTRATOR_URL].
    #[arg(long)]
    pub orchestrator_url: Option<String>,
    /// Confirm moving this worker to another orchestrator than the one its env file names.
    #[arg(long)]
    pub new_orchestrator: bool,
    /// Accept a plain http:// orchestrator that is not on this machine (jobs and outputs
    /// would travel in clear).
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Let this worker hold several task claims at once (`--multi-task` or
    /// `--multi-task=false`; saved in the env file) [default: one claim at a time].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub multi_task: Option<bool>,
    /// Gateway jobs the worker runs at once, 1-256; applies at its next start [default by
    /// runtime: vllm 32, ollama OLLAMA_NUM_PARALLEL or 4, echo 16].
    #[arg(long, value_name = "N")]
    pub capacity: Option<u32>,
    /// Another replica of the orchestrator to fail over to; repeat for several, in order
    /// (`--fallback-url=` alone removes them).
    #[arg(long = "fallback-url", value_name = "URL", num_args = 0..=1, require_equals = false, default_missing_value = "")]
    pub fallback_urls: Option<Vec<String>>,
    /// A label this worker registers with, e.g. region=eu; repeat for several (`--label=`
    /// alone removes them). Tasks may require one; gateway clients may ask for one.
    #[arg(long = "label", value_name = "LABEL", num_args = 0..=1, require_equals = false, default_missing_value = "")]
    pub labels: Option<Vec<String>>,
    /// Env file to write [default: worker.env in the config directory].
    #[arg(long, value_name = "PATH")]
    pub out: Option<String>,
    /// Replace the file at --out even when it is not a worker env file (what it holds is lost).
    #[arg(long)]
    pub force: bool,
    /// Print the tool's structured output as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, args: Args) -> ExitCode {
    let json = args.json;
    let input = Input {
        wallet: args.wallet,
        worker_id: args.worker_id,
        runtime: args.runtime,
        models: args.models,
        ollama_model: args.ollama_model,
        ollama_url: args.ollama_url,
        vllm_url: args.vllm_url,
        orchestrator_url: args.orchestrator_url,
        new_orchestrator: args.new_orchestrator.then_some(true),
        allow_insecure_http: args.allow_insecure_http.then_some(true),
        multi_task: args.multi_task,
        capacity: args.capacity,
        fallback_orchestrator_urls: args
            .fallback_urls
            .map(|urls| urls.into_iter().filter(|u| !u.trim().is_empty()).collect()),
        labels: args.labels.map(|labels| {
            labels
                .into_iter()
                .filter(|l| !l.trim().is_empty())
                .collect()
        }),
        out: args.out,
        force: args.force.then_some(true),
    };
    let result = ctx.ops().and_then(|ops| write_env::run(&ops, &input));
    output::render(json, result, human)
}

fn human(o: &Output) -> String {
    let mut s = String::new();
    let verb = if o.created { "created" } else { "updated" };
    let _ = writeln!(s, "{verb} {} (mode {})", o.path, o.mode);
    let _ = writeln!(s, "  keys: {}", o.keys_written.join(", "));
    let key = if o.key_kept { "kept" } else { "generated" };
    let _ = writeln!(s, "  device key: {key}, fingerprint {}", o.key_fingerprint);
    if o.legacy_token {
        let _ = writeln!(
            s,
            "  legacy token: still in the file until registration moves the worker to the key"
        );
    }
    if let Some(from) = &o.previous_orchestrator_url {
        let _ = writeln!(
            s,
            "  orchestrator: moved from {from} to {}",
            o.orchestrator_url
        );
    }
    let _ = writeln!(s, "  worker {} pays to {}", o.worker_id, o.wallet);
    if o.multi_task {
        let _ = writeln!(s, "  it may hold several task claims at once (multi-task)");
    }
    let _ = writeln!(
        s,
        "  runs up to {} gateway jobs at once (from its next start)",
        o.capacity
    );
    if !o.fallback_orchestrator_urls.is_empty() {
        let _ = writeln!(
            s,
            "  fails over to {}",
            o.fallback_orchestrator_urls.join(", ")
        );
    }
    if !o.labels.is_empty() {
        let _ = writeln!(s, "  labels: {}", o.labels.join(", "));
    }
    s.push_str(&output::next(&o.next_step));
    s
}
