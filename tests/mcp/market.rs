//! Helpers for the task-market tests over MCP: a real `basis orchestrator --open` with an
//! evaluator key, tasks posted through the library's client, an Evaluator Agent's host (an
//! env file holding only the orchestrator URL and the evaluator key), and an in-test
//! OpenAI-compatible server standing in for vLLM, which cannot run here.

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::routing::{get, post};
use basis::client::OrchestratorClient;
use basis::domain::{Amount, OutputFormat};
use basis::wire::{InputMessage, PostTaskRequest, Task, TaskInput};
use futures::StreamExt as _;
use rmcp::model::Tool;
use serde_json::{Value, json};

use crate::support::{self, Client, Home, Result, Spawned, WALLET, call, check_result, problem};

/// A running orchestrator (`--open`: posting needs no client key) and an evaluator key.
pub struct Market {
    /// Holds the database; removed when the market is dropped.
    _home: Home,
    pub orch: Spawned,
    pub url: String,
    pub db: std::path::PathBuf,
    pub evaluator_key: String,
}

impl Market {
    pub async fn start() -> Result<Self> {
        let home = Home::new()?;
        let db_path = home.path().join("orchestrator.db");
        let db = db_path.to_str().ok_or("temp path is not UTF-8")?.to_owned();
        let orch = support::spawn_listening(
            &home,
            &[
                "orchestrator",
                "--listen",
                "127.0.0.1:0",
                "--db",
                &db,
                "--open",
            ],
            true,
        )
        .await?;
        let out = home
            .command(&[
                "orchestrator",
                "keys",
                "create",
                "--role",
                "evaluator",
                "--db",
                &db,
            ])
            .env_remove("BASIS_ORCHESTRATOR_CONFIG")
            .output()
            .await?;
        if !out.status.success() {
            return Err(format!("keys create: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        let evaluator_key = String::from_utf8(out.stdout)?.trim().to_owned();
        let url = orch.url.clone();
        Ok(Self {
            _home: home,
            orch,
            url,
            db: db_path,
            evaluator_key,
        })
    }

    pub fn client(&self) -> Result<OrchestratorClient> {
        Ok(OrchestratorClient::new(
            url::Url::parse(&self.url)?,
            Duration::from_secs(10),
        )?)
    }

    pub async fn post(&self, request: &PostTaskRequest) -> Result<Task> {
        Ok(self.client()?.post_task(request, None).await?)
    }

    /// An Evaluator Agent's host: its env file names only the orchestrator and the key.
    pub fn evaluator_home(&self) -> Result<Home> {
        let home = Home::new()?;
        let path = home.env_file();
        std::fs::write(
            &path,
            format!(
                "BASIS_ORCHESTRATOR_URL={}\nBASIS_EVALUATOR_KEY={}\n",
                self.url, self.evaluator_key
            ),
        )?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(home)
    }
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A task whose inference input asks `model` to answer `prompt`.
pub fn inference_task(model: &str, caps: &[&str], reward: u128, prompt: &str) -> PostTaskRequest {
    PostTaskRequest {
        description: format!("answer: {prompt}"),
        criteria: vec!["answers the question".into(), "is one sentence".into()],
        required_capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
        reward: Amount::from_atomic(reward),
        asset: None,
        deadline: now_s() + 3600,
        output_format: OutputFormat::Text,
        claim_ttl_s: Some(300),
        evaluator: Some("tests".into()),
        pass_threshold: None,
        input: Some(TaskInput {
            model: model.to_owned(),
            messages: vec![InputMessage {
                role: "user".into(),
                content: prompt.to_owned(),
            }],
            max_tokens: Some(64),
        }),
        min_vram_mib: None,
        family: None,
        metric: None,
    }
}

/// A task without input (the agent produces the output), in `format`.
pub fn agent_task(format: OutputFormat) -> PostTaskRequest {
    PostTaskRequest {
        description: "write a haiku about GPUs".into(),
        input: None,
        output_format: format,
        required_capabilities: Vec::new(),
        ..inference_task("unused", &[], 500, "unused")
    }
}

/// Calls `tool`, checks the result against the tool's outputSchema, records its JSON in
/// `seen`, and fails on an error result.
pub async fn step(
    client: &Client,
    tools: &[Tool],
    seen: &mut String,
    tool: &str,
    args: Value,
) -> Result<Value> {
    let result = call(client, tool, args).await?;
    let schema = tools
        .iter()
        .find(|t| t.name == tool)
        .ok_or_else(|| format!("{tool} is not listed"))?;
    check_result(schema, &result)?;
    seen.push_str(&serde_json::to_string(&result)?);
    if result.is_error == Some(true) {
        return Err(format!("{tool} failed: {:?}", result.content).into());
    }
    Ok(result.structured_content.unwrap_or_default())
}

/// Calls `tool`, which must fail with a structured problem that has a fix; returns it.
pub async fn refused(client: &Client, tool: &str, args: Value) -> Result<Value> {
    let result = call(client, tool, args).await?;
    if result.is_error != Some(true) {
        return Err(format!("{tool} succeeded: {:?}", result.structured_content).into());
    }
    let problem = problem(&result).ok_or("no problem in the error result")?;
    if !problem["fix"].is_string() {
        return Err(format!("{tool}: no fix in {problem}").into());
    }
    Ok(problem)
}

/// write_env + register_worker for `worker_id` on `runtime` serving `models`; `extra` adds
/// write_env arguments (e.g. vllm_url).
pub async fn onboard(
    client: &Client,
    tools: &[Tool],
    seen: &mut String,
    worker: (&str, &str, &[&str]),
    orch_url: &str,
    extra: Value,
) -> Result {
    let (worker_id, runtime, models) = worker;
    let mut args = json!({
        "wallet": WALLET, "worker_id": worker_id, "runtime": runtime, "models": models,
        "orchestrator_url": orch_url,
    });
    if let (Some(args), Some(extra)) = (args.as_object_mut(), extra.as_object()) {
        args.extend(extra.clone());
    }
    step(client, tools, seen, "write_env", args).await?;
    let registered = step(client, tools, seen, "register_worker", json!({})).await?;
    if registered["record"]["worker_id"] != worker_id {
        return Err(format!("registered as {}", registered["record"]["worker_id"]).into());
    }
    Ok(())
}

/// An OpenAI-compatible server standing in for vLLM (which cannot run in these tests): it
/// serves `/v1/models` and `/health`, and streams `answer` from `/v1/chat/completions` one
/// word every `delay`, as SSE `data:` events with a usage chunk and `[DONE]`, like vLLM does.
pub struct FakeVllm {
    pub url: String,
    /// Set when a client went away mid-stream (its connection closed).
    pub dropped: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeVllm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn fake_vllm(
    model: &'static str,
    answer: &'static str,
    delay: Duration,
) -> Result<FakeVllm> {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let chat = move |Json(body): Json<Value>| {
        let flag = flag.clone();
        async move { stream_answer(&body, model, answer, delay, flag) }
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route(
            "/v1/models",
            get(move || async move {
                Json(json!({"object": "list", "data": [{"id": model, "object": "model"}]}))
            }),
        )
        .route("/health", get(|| async { "" }))
        .route(
            "/version",
            get(|| async { Json(json!({"version": "0.0-test"})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(FakeVllm {
        url,
        dropped,
        server,
    })
}

/// Streams `answer` as vLLM would; sets `dropped` if the client goes away mid-stream.
fn stream_answer(
    body: &Value,
    model: &'static str,
    answer: &'static str,
    delay: Duration,
    flag: Arc<AtomicBool>,
) -> Response {
    let prompt_tokens = body["messages"]
        .as_array()
        .map_or(0, |m| m.len() as u64 * 8);
    let (tx, rx) = futures::channel::mpsc::unbounded::<Bytes>();
    tokio::spawn(async move {
        let words: Vec<String> = answer.split_inclusive(' ').map(str::to_owned).collect();
        let count = words.len() as u64;
        for word in words {
            tokio::time::sleep(delay).await;
            let event = json!({"object": "chat.completion.chunk", "model": model,
                "choices": [{"index": 0, "delta": {"content": word}}]});
            if tx
                .unbounded_send(Bytes::from(format!("data: {event}\n\n")))
                .is_err()
            {
                flag.store(true, Ordering::SeqCst);
                return;
            }
        }
        let usage = json!({"object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": count}});
        let _ = tx.unbounded_send(Bytes::from(format!("data: {usage}\n\n")));
        let _ = tx.unbounded_send(Bytes::from_static(b"data: [DONE]\n\n"));
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(rx.map(Ok::<_, Infallible>)))
        .unwrap_or_default()
}
