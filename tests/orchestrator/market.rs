//! Helpers for the task-market tests: an orchestrator with a fast sweeper, workers of any
//! runtime, and raw JSON calls that return the status and body (and the raw text, so tests
//! can check that a refused secret appears nowhere in the answer).

use basis::domain::{OutputHash, Runtime, WalletAddress, WorkerId, WorkerToken};
use basis::wire::RegisterRequest;
use reqwest::Method;

use super::*;

/// `[tasks]` for tests: a fast sweeper, plus `extra` keys of the section.
pub fn market_toml(extra: &str) -> String {
    let sweep = if extra.contains("sweep_interval_ms") {
        ""
    } else {
        "sweep_interval_ms = 50\n"
    };
    format!("drain_timeout_s = 2\n{RELAXED_LIMITS}\n[tasks]\n{sweep}{extra}\n")
}

/// An `--open` orchestrator (no client key needed to post) with `[tasks]` `extra`.
pub fn market(extra: &str) -> Orchestrator {
    Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: market_toml(extra),
        ..Options::default()
    })
}

/// An answer: status, parsed body, raw text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the status and error code.
    pub fn refused(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{}", self.text);
        assert!(self.body["error"]["fix"].is_string(), "{}", self.text);
    }
}

/// A JSON call: `Authorization: Bearer <bearer>` and `x-basis-admin-key: <admin>` when given.
pub async fn call(
    orch: &Orchestrator,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    admin: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut rb = orch.http().request(method, orch.at(path));
    if let Some(b) = bearer {
        rb = rb.bearer_auth(b);
    }
    if let Some(a) = admin {
        rb = rb.header("x-basis-admin-key", a);
    }
    if let Some(body) = body {
        rb = rb.json(body);
    }
    let resp = rb.send().await.unwrap_or_else(|e| panic!("{path}: {e:?}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

pub async fn get(orch: &Orchestrator, path: &str) -> Answer {
    call(orch, Method::GET, path, None, None, None).await
}

/// `GET /api/submissions/{sub}` with `Authorization: Bearer <bearer>`.
pub async fn read_submission(orch: &Orchestrator, sub: &str, bearer: &str) -> Answer {
    let path = format!("/api/submissions/{sub}");
    call(orch, Method::GET, &path, Some(bearer), None, None).await
}

pub async fn post(orch: &Orchestrator, path: &str, bearer: Option<&str>, body: &Value) -> Answer {
    call(orch, Method::POST, path, bearer, None, Some(body)).await
}

/// Registers `id` on `runtime` (multi-task or not); returns its token.
pub async fn worker(
    orch: &Orchestrator,
    id: &str,
    runtime: Runtime,
    multi_task: bool,
) -> WorkerToken {
    worker_paid_to(orch, id, runtime, multi_task, WALLET_LOWER).await
}

/// [`worker`], its rewards paid to `wallet`.
pub async fn worker_paid_to(
    orch: &Orchestrator,
    id: &str,
    runtime: Runtime,
    multi_task: bool,
    wallet: &str,
) -> WorkerToken {
    let token = WorkerToken::generate();
    let req = RegisterRequest {
        worker_id: WorkerId::parse(id).unwrap(),
        wallet: WalletAddress::parse(wallet).unwrap(),
        runtime,
        models: vec!["llama3.2:1b".into()],
        token_sha256: token.sha256(),
        public_key: None,
        hardware: None,
        version: "0.1.0".into(),
        multi_task,
        labels: Vec::new(),
    };
    orch.client().register(&req, None, None).await.unwrap();
    token
}

/// A valid task body paying `reward`, due in an hour.
pub fn task_body(reward: &str) -> Value {
    json!({
        "description": "Summarise: the quick brown fox jumps over the lazy dog.",
        "criteria": ["one sentence", "mentions the fox"],
        "reward": reward,
        "deadline": basis_now() + 3600,
        "output_format": "text",
        "input": {"model": "llama3.2:1b", "messages": [
            {"role": "user", "content": "Summarise: the quick brown fox jumps over the lazy dog."}
        ]},
    })
}

pub fn basis_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Posts `body` (open mode) and returns the task id.
pub async fn post_task(orch: &Orchestrator, body: &Value) -> String {
    let a = post(orch, "/api/tasks", None, body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.body["task_id"].as_str().unwrap().to_owned()
}

pub async fn claim(orch: &Orchestrator, task: &str, id: &str, token: &WorkerToken) -> Answer {
    post(
        orch,
        &format!("/api/tasks/{task}/claim"),
        Some(token.expose_secret()),
        &json!({ "worker_id": id }),
    )
    .await
}

/// The submit body for `output`, with its true hash.
pub fn output_body(id: &str, output: &str) -> Value {
    json!({
        "worker_id": id,
        "output": output,
        "output_hash": OutputHash::of(output.as_bytes()).to_string(),
        "usage": {"prompt_tokens": 12, "completion_tokens": 7},
        "duration_ms": 850,
    })
}

pub async fn submit(orch: &Orchestrator, task: &str, token: &WorkerToken, body: &Value) -> Answer {
    post(
        orch,
        &format!("/api/tasks/{task}/submit"),
        Some(token.expose_secret()),
        body,
    )
    .await
}

pub async fn evaluate(orch: &Orchestrator, sub: &str, key: Option<&str>, body: &Value) -> Answer {
    post(orch, &format!("/api/submissions/{sub}/evaluate"), key, body).await
}

/// A task posted, claimed and submitted by a new `runtime` worker `id`: (task, submission).
pub async fn submitted(
    orch: &Orchestrator,
    id: &str,
    runtime: Runtime,
    output: &str,
) -> (String, String, WorkerToken) {
    let token = worker(orch, id, runtime, false).await;
    let task = post_task(orch, &task_body("1000000")).await;
    let c = claim(orch, &task, id, &token).await;
    assert_eq!(c.status, 200, "{}", c.text);
    // Anti-cheat measures claim → submit: a few tokens in a few milliseconds is faster than
    // any GPU (and would pay nothing).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = submit(orch, &task, &token, &output_body(id, output)).await;
    assert_eq!(s.status, 201, "{}", s.text);
    (
        task,
        s.body["submission_id"].as_str().unwrap().to_owned(),
        token,
    )
}

/// Polls `GET path` (with `bearer`, when given) until `check` holds.
pub async fn wait_for(
    orch: &Orchestrator,
    path: &str,
    bearer: Option<&str>,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = call(orch, Method::GET, path, bearer, None, None).await;
        if check(&a.body) {
            return a.body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never matched: {}",
            a.text
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
