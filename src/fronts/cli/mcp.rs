//! `basis mcp`: run the MCP server, over stdio (what Claude Code, Cursor and Windsurf launch) or
//! over streamable HTTP with `--http`; `basis mcp install` (in `mcp_install`) adds it to a
//! client's config.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::{Context, mcp_install, output};
use crate::config::Overrides;
use crate::fronts::mcp::{BasisMcp, BearerToken, HttpOptions, HttpServer, TOKEN_ENV, serve_stdio};
use crate::ops::{self, Problem};

/// Serves the basis tools, resources and prompts over MCP: stdio by default (stdout is the
/// protocol; logs go to stderr), or streamable HTTP at http://ADDR/mcp with --http.
/// `basis mcp install --client NAME` adds this server to an MCP client's config.
// The doc comments are clap's --help text, not rustdoc: URLs and names stay unquoted there.
#[allow(clippy::doc_markdown)]
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<McpCommand>,
    /// Serve streamable HTTP at http://ADDR/mcp instead of stdio [ADDR: from basis.toml,
    /// default 127.0.0.1:8765; port 0 picks a free port]. A non-loopback ADDR needs a bearer
    /// token (BASIS_MCP_TOKEN or --token-file).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
    pub http: Option<String>,
    /// Offer only the read-only tools (hidden from tools/list and refused by tools/call).
    #[arg(long)]
    pub read_only: bool,
    /// File (mode 0600) holding the bearer token HTTP clients must send
    /// [default: $BASIS_MCP_TOKEN].
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Also accept this Host name over HTTP (repeatable; loopback names are always accepted).
    #[arg(long, value_name = "HOST")]
    pub allow_host: Vec<String>,
    /// Also accept this browser Origin over HTTP, as scheme://host[:port] (repeatable;
    /// loopback origins are always accepted).
    #[arg(long, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
}

/// What `basis mcp` does besides serving.
#[derive(Debug, clap::Subcommand)]
pub enum McpCommand {
    /// Add this basis binary as the "basis" MCP server in a client's config file
    /// (claude-code, claude-desktop, cursor, windsurf, vscode, codex, gemini).
    ///
    /// The entry runs this binary by its absolute path with args ["mcp"] (plus "--read-only"
    /// with --read-only), in the file and shape the client documents; `examples/README.md`
    /// lists them. Other servers and settings in the file are kept: a JSON file is rewritten
    /// pretty-printed with its keys sorted (so their order may change), Codex's config.toml
    /// keeps its comments and layout. A different existing "basis" entry is refused unless
    /// --force; an identical one is left alone; a file that does not parse (JSON with comments
    /// included) is refused and never rewritten. A symlinked config file is written through to
    /// its target.
    Install(mcp_install::Args),
}

pub async fn run(ctx: &Context, mut args: Args) -> ExitCode {
    if let Some(McpCommand::Install(install)) = args.command.take() {
        return mcp_install::run(install);
    }
    match serve(ctx, args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => output::failure(false, &problem),
    }
}

async fn serve(ctx: &Context, args: Args) -> Result<(), Problem> {
    let overrides = Overrides {
        mcp_http_bind: args.http.clone().filter(|a| !a.is_empty()),
        mcp_read_only: args.read_only.then_some(true),
        ..Overrides::default()
    };
    let ops = ops::Context::load(ctx.config_file.as_deref(), &overrides)?;
    let read_only = ops.settings.mcp.read_only;
    let bind = ops.settings.mcp.http_bind;
    let server = BasisMcp::new(ops, read_only);
    if args.http.is_none() {
        return serve_stdio(server).await;
    }
    let options = HttpOptions {
        token: BearerToken::load(args.token_file.as_deref(), std::env::var(TOKEN_ENV).ok())?,
        allow_hosts: args.allow_host,
        allow_origins: args.allow_origin,
        ..HttpOptions::new(bind)
    };
    let http = HttpServer::bind(options).await?;
    let addr = http.local_addr()?;
    let _ = writeln!(std::io::stderr(), "listening on http://{addr}/mcp");
    http.serve(server, shutdown_signal()).await
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
