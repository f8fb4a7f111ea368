//! Helpers for the MCP tests: start the real `basis` binary (`basis mcp` over stdio or
//! `--http`, `basis orchestrator`) in a temp `BASIS_HOME`, connect rmcp clients, capture
//! stderr (the log lines), validate `structuredContent` against a tool's `outputSchema`.
// Each test binary uses a different part of these helpers.
#![allow(dead_code)]
// Notifications/message is deprecated by SEP-2577 in rmcp; these tests check basis still sends it.
#![allow(deprecated)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, JsonObject, LoggingMessageNotificationParam,
    ProgressNotificationParam, Tool,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T = ()> = std::result::Result<T, BoxError>;
pub type Client = RunningService<RoleClient, Collector>;

/// A public test address (EIP-55 checksummed).
pub const WALLET: &str = "0x52908400098527886E0F7030069857D2E4169EE7";
/// A valid BIP-39 test mnemonic (what a user might paste by mistake).
pub const MNEMONIC: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";

/// Secrets in the formats beyond 64 hex and English words that the guard refuses: a BIP-32
/// extended private key, a WIF key, a JWT, a labelled AWS secret key, a hex key in groups, a
/// Spanish seed phrase and an English one abbreviated to four letters a word.
pub const SECRET_FAMILIES: &[&str] = &[
    "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi",
    "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "4c08:83a6:9102:937d:6231:471b:5dbb:6204:fe51:2961:7082:792a:e468:d01a:3f36:2318",
    "ábaco abdomen abeja abierto abogado abono aborto abrazo abrir abuelo abuso acabar",
    "lega winn than year wave saus wort usef lega winn than yell",
    // A basis device key (the seed 32 × 0x07).
    "basis_dk_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
];

/// A private-key-shaped value (0x + 64 hex).
pub fn private_key() -> String {
    format!(
        "0x{}",
        "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
    )
}

/// Locks `mutex`, also after a panicking test thread poisoned it.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A temp `BASIS_HOME` (also the current dir of the children, so env files may go there).
#[derive(Debug)]
pub struct Home {
    pub dir: TempDir,
}

impl Home {
    pub fn new() -> Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn env_file(&self) -> PathBuf {
        self.dir.path().join("worker.env")
    }

    /// `basis ARGS` with only this home's settings in its environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_basis"));
        cmd.args(args)
            .current_dir(self.path())
            .env("BASIS_HOME", self.path())
            .env("RUST_LOG", "basis=debug,rmcp=info")
            // Nothing listens on the discard port: no test reaches a real orchestrator by accident.
            .env("BASIS_ORCHESTRATOR_URL", "http://127.0.0.1:9")
            .kill_on_drop(true);
        for var in [
            "BASIS_CONFIG",
            "BASIS_ENROLLMENT_KEY",
            "BASIS_MCP_TOKEN",
            "BASIS_MCP_HTTP_BIND",
            "BASIS_MCP_READ_ONLY",
            "BASIS_STATE_DIR",
            "XDG_CONFIG_HOME",
            "XDG_STATE_HOME",
        ] {
            cmd.env_remove(var);
        }
        cmd
    }
}

/// Everything a child wrote to a stream, collected in the background.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<String>>);

impl Captured {
    pub fn text(&self) -> String {
        lock(&self.0).clone()
    }

    /// Reads `stream` line by line into this capture; sends the first line containing
    /// `marker` (if any) on `found`.
    pub fn collect(
        &self,
        stream: impl AsyncRead + Unpin + Send + 'static,
        marker: Option<&'static str>,
        found: Option<tokio::sync::oneshot::Sender<String>>,
    ) {
        let sink = self.0.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            let mut found = found;
            while let Ok(Some(line)) = lines.next_line().await {
                if let (Some(m), true) = (marker, found.is_some())
                    && line.contains(m)
                    && let Some(tx) = found.take()
                {
                    let _ = tx.send(line.clone());
                }
                let mut text = lock(&sink);
                text.push_str(&line);
                text.push('\n');
            }
        });
    }
}

/// An rmcp client handler that keeps the log and progress notifications it receives.
#[derive(Debug, Clone, Default)]
pub struct Collector {
    pub logs: Arc<Mutex<Vec<LoggingMessageNotificationParam>>>,
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Collector {
    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        lock(&self.logs).push(params);
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        lock(&self.progress).push(params);
    }
}

/// `basis mcp ARGS` over stdio, connected; with its stderr.
pub async fn stdio(home: &Home, args: &[&str]) -> Result<(Client, Captured)> {
    stdio_with_env::<&str>(home, args, &[]).await
}

/// [`stdio`] with extra environment variables for the server (its `HOME`, `RUST_LOG`, …).
pub async fn stdio_with_env<V: AsRef<std::ffi::OsStr>>(
    home: &Home,
    args: &[&str],
    env: &[(&str, V)],
) -> Result<(Client, Captured)> {
    let mut all = vec!["mcp"];
    all.extend_from_slice(args);
    let mut command = home.command(&all);
    for (name, value) in env {
        command.env(name, value);
    }
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()?;
    let captured = Captured::default();
    if let Some(stderr) = stderr {
        captured.collect(stderr, None, None);
    }
    let client = Collector::default().serve(transport).await?;
    Ok((client, captured))
}

/// A child server that printed its URL.
#[derive(Debug)]
pub struct Spawned {
    pub child: Child,
    pub url: String,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Spawns `basis ARGS` and waits (10 s at most) for a `listening on http://…` line on
/// stdout (`on_stdout`) or stderr; `url` is what follows `listening on `.
pub async fn spawn_listening(home: &Home, args: &[&str], on_stdout: bool) -> Result<Spawned> {
    spawn_prepared(home.command(args), on_stdout).await
}

/// `basis mcp --http 127.0.0.1:0 ARGS` (extra env via `env`), with its `/mcp` URL.
pub async fn http(home: &Home, args: &[&str], env: &[(&str, &str)]) -> Result<Spawned> {
    let mut all = vec!["mcp", "--http", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut cmd = home.command(&all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    spawn_prepared(cmd, false).await
}

/// Spawns the prepared `cmd` and waits for its `listening on` line (see [`spawn_listening`]).
pub async fn spawn_prepared(mut cmd: Command, on_stdout: bool) -> Result<Spawned> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let (stdout, stderr) = (Captured::default(), Captured::default());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let marker = Some("listening on http://");
    let (out, err) = (
        child.stdout.take().ok_or("no stdout")?,
        child.stderr.take().ok_or("no stderr")?,
    );
    if on_stdout {
        stdout.collect(out, marker, Some(tx));
        stderr.collect(err, None, None);
    } else {
        stdout.collect(out, None, None);
        stderr.collect(err, marker, Some(tx));
    }
    let Ok(Ok(line)) = tokio::time::timeout(Duration::from_secs(10), rx).await else {
        let _ = child.kill().await;
        return Err(format!("no `listening on` line; stderr:\n{}", stderr.text()).into());
    };
    let url = line
        .split("listening on ")
        .nth(1)
        .ok_or("malformed line")?
        .trim()
        .to_owned();
    Ok(Spawned {
        child,
        url,
        stdout,
        stderr,
    })
}

/// An rmcp client over streamable HTTP, with a bearer token when given.
pub async fn http_client(url: &str, token: Option<&str>) -> Result<Client> {
    basis::http::install_tls_provider();
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(token) = token {
        config = config.auth_header(token.to_owned());
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    Ok(Collector::default().serve(transport).await?)
}

/// A plain HTTP client for raw requests.
pub fn raw_http() -> Result<reqwest::Client> {
    basis::http::install_tls_provider();
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?)
}

/// The JSON body of an `initialize` request.
pub fn initialize_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "basis-tests", "version": "1"}}})
}

/// Calls `tool` with `args`.
pub async fn call(client: &Client, tool: &str, args: Value) -> Result<CallToolResult> {
    let Value::Object(args) = args else {
        return Err("arguments must be an object".into());
    };
    Ok(client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await?)
}

/// The `{code, message, fix?}` problem of an `isError` result: the JSON text of its first
/// content block (errors carry no `structuredContent`). `None` for a success or another shape.
pub fn problem(result: &CallToolResult) -> Option<Value> {
    if result.is_error != Some(true) {
        return None;
    }
    let text = &result.content.first()?.as_text()?.text;
    serde_json::from_str(text).ok()
}

/// Checks a tool result: a success's `structuredContent` validates against the tool's
/// `outputSchema`; an error has no `structuredContent` and its text is a `{code, message,
/// fix?}` with a known code.
pub fn check_result(tool: &Tool, result: &CallToolResult) -> Result {
    if result.is_error == Some(true) {
        if result.structured_content.is_some() {
            return Err(format!("{}: an error result with structuredContent", tool.name).into());
        }
        let problem = problem(result).ok_or("an error result whose text is not a problem")?;
        let code = problem["code"].as_str().ok_or("error without a code")?;
        let known = basis::domain::ErrorCode::ALL
            .iter()
            .any(|c| c.as_str() == code);
        if !known || !problem["message"].is_string() {
            return Err(format!("{}: malformed problem {problem}", tool.name).into());
        }
        return Ok(());
    }
    let structured = result
        .structured_content
        .as_ref()
        .ok_or("no structuredContent")?;
    let schema = Value::Object(
        tool.output_schema
            .as_deref()
            .ok_or("no outputSchema")?
            .clone(),
    );
    let validator = jsonschema::validator_for(&schema)?;
    let errors: Vec<String> = validator
        .iter_errors(structured)
        .map(|e| e.to_string())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: structuredContent fails outputSchema: {errors:?}\n{structured}",
            tool.name
        )
        .into())
    }
}

/// Arguments that make each known tool succeed in a fresh home (or `{}`).
pub fn sample_args(tool: &str) -> JsonObject {
    let value = match tool {
        // No env file there: the call fails before anything is started.
        "start_worker" => json!({"env_file": "no-such-worker.env"}),
        "write_env" | "register_worker" => {
            json!({"wallet": WALLET, "worker_id": "box-1", "runtime": "echo"})
        }
        _ => json!({}),
    };
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// The names of `tool`'s string (or string-list) input properties, each with whether it is a
/// list and whether it is typed as a hash (where a 64-hex value is legitimate).
pub fn string_properties(tool: &Tool) -> Vec<(String, bool, bool)> {
    let Some(Value::Object(props)) = tool.input_schema.get("properties") else {
        return Vec::new();
    };
    let has_type = |schema: &Value, t: &str| match &schema["type"] {
        Value::String(s) => s == t,
        Value::Array(a) => a.iter().any(|x| x == t),
        _ => false,
    };
    props
        .iter()
        .filter_map(|(name, schema)| {
            let is_hash = schema["pattern"]
                .as_str()
                .is_some_and(|p| p.contains("{64}"));
            if has_type(schema, "string") {
                Some((name.clone(), false, is_hash))
            } else if has_type(schema, "array") && has_type(&schema["items"], "string") {
                Some((name.clone(), true, is_hash))
            } else {
                None
            }
        })
        .collect()
}

/// The worker token in an env file.
pub fn token_in(env_file: &Path) -> Result<String> {
    let text = std::fs::read_to_string(env_file)?;
    text.lines()
        .find_map(|l| l.strip_prefix("BASIS_DEVICE_KEY="))
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| "no device key in the env file".into())
}
