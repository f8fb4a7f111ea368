//! A minimal in-test worker that speaks the worker channel
//! (docs/PROTOCOL.md, "Worker channel") over tokio-tungstenite, so the
//! orchestrator side can be tested on its own; plus helpers to register workers, make client
//! keys, call the gateway and read server-sent events.

use std::time::Duration;

use basis::domain::{JobId, Runtime, Usage, WalletAddress, WorkerId, WorkerToken};
use basis::wire::{JobTimings, OrchestratorMessage, RegisterRequest, WorkerMessage};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::*;

/// How long a test waits for anything before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// An orchestrator.toml with short heartbeat timings (1 s beats, 2 s window).
pub fn fast_toml() -> String {
    format!("heartbeat_interval_s = 1\nonline_window_s = 2\ndrain_timeout_s = 5\n{RELAXED_LIMITS}")
}

pub fn fast() -> Orchestrator {
    Orchestrator::with(Options {
        toml: fast_toml(),
        ..Options::default()
    })
}

/// Registers `id` serving `models`; returns its token.
pub async fn register(orch: &Orchestrator, id: &str, models: &[&str]) -> WorkerToken {
    register_on(orch, id, models, Runtime::Echo).await
}

/// Registers `id` serving `models` on `runtime`; returns its token.
pub async fn register_on(
    orch: &Orchestrator,
    id: &str,
    models: &[&str],
    runtime: Runtime,
) -> WorkerToken {
    let token = WorkerToken::generate();
    let req = RegisterRequest {
        worker_id: WorkerId::parse(id).unwrap(),
        wallet: WalletAddress::parse(WALLET_LOWER).unwrap(),
        runtime,
        models: models.iter().map(|m| (*m).to_owned()).collect(),
        token_sha256: token.sha256(),
        public_key: None,
        hardware: None,
        version: "0.1.0".into(),
        multi_task: false,
        labels: Vec::new(),
    };
    orch.client().register(&req, None, None).await.unwrap();
    token
}

/// A fresh client key.
pub fn client_key(orch: &Orchestrator) -> String {
    orch.create_key("client").0.trim().to_owned()
}

/// `POST /v1/chat/completions` for `model`.
pub async fn chat(
    orch: &Orchestrator,
    key: Option<&str>,
    model: &str,
    stream: bool,
) -> reqwest::Response {
    let mut req = orch
        .http()
        .post(orch.at("/v1/chat/completions"))
        .json(&json!({
            "model": model,
            "messages": [{"role": "user", "content": "Say hello."}],
            "stream": stream,
        }));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

/// The record `GET /api/workers/{id}` returns.
pub async fn record(orch: &Orchestrator, id: &str) -> Value {
    let resp = orch
        .http()
        .get(orch.at(&format!("/api/workers/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Polls `check` on the worker's record until it holds (or the patience runs out).
pub async fn wait_record(orch: &Orchestrator, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = record(orch, id).await;
        if check(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "record never matched: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads `data:` payloads of a server-sent event stream, one event at a time.
pub struct Sse {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>,
    buf: String,
}

impl Sse {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            body: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next event's data, `None` at the end of the stream.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if !data.is_empty() {
                    return Some(data.join("\n"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next())
                .await
                .expect("no event in time")?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk.ok()?));
        }
    }
}

enum Cmd {
    Send(WorkerMessage),
    Heartbeats { on: bool, ready: bool },
}

/// A connected, welcomed fake worker. Heartbeats every 300 ms until told otherwise.
pub struct FakeWorker {
    pub welcome: OrchestratorMessage,
    cmds: mpsc::UnboundedSender<Cmd>,
    inbox: mpsc::UnboundedReceiver<OrchestratorMessage>,
    task: JoinHandle<()>,
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the channel with `bearer` (if any): the socket, or the refusal's HTTP status.
pub async fn open(orch: &Orchestrator, bearer: Option<&str>) -> Result<Ws, u16> {
    let mut url = orch.at("/api/workers/connect");
    url.set_scheme("ws").unwrap();
    let mut request = url.as_str().into_client_request().unwrap();
    if let Some(b) = bearer {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {b}")).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("cannot connect: {e}"),
    }
}

pub async fn send_frame(ws: &mut Ws, msg: &WorkerMessage) {
    ws.send(Message::text(serde_json::to_string(msg).unwrap()))
        .await
        .unwrap();
}

/// The next orchestrator frame, or `None` once the connection closes.
pub async fn recv_frame(ws: &mut Ws) -> Option<OrchestratorMessage> {
    loop {
        match tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("no frame in time")
        {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

pub fn hello(id: &str, models: &[&str], capacity: u32) -> WorkerMessage {
    hello_on(id, models, capacity, Runtime::Echo)
}

/// A `hello` from a worker on `runtime`.
pub fn hello_on(id: &str, models: &[&str], capacity: u32, runtime: Runtime) -> WorkerMessage {
    WorkerMessage::Hello {
        protocol: 1,
        worker_id: WorkerId::parse(id).unwrap(),
        version: "0.1.0".into(),
        runtime,
        models: models.iter().map(|m| (*m).to_owned()).collect(),
        capacity,
        proof: None,
    }
}

impl FakeWorker {
    pub async fn connect(
        orch: &Orchestrator,
        token: &WorkerToken,
        id: &str,
        models: &[&str],
        capacity: u32,
    ) -> Self {
        Self::connect_with(orch, token, hello(id, models, capacity)).await
    }

    /// Connects and says `hello`.
    pub async fn connect_with(
        orch: &Orchestrator,
        token: &WorkerToken,
        hello: WorkerMessage,
    ) -> Self {
        let mut ws = open(orch, Some(token.expose_secret()))
            .await
            .expect("upgrade refused");
        send_frame(&mut ws, &hello).await;
        let welcome = recv_frame(&mut ws).await.expect("closed before welcome");
        assert!(
            matches!(welcome, OrchestratorMessage::Welcome { .. }),
            "{welcome:?}"
        );
        let (cmds, mut rx) = mpsc::unbounded_channel();
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let (mut on, mut ready, mut seq) = (true, true, 0_u64);
            let mut beat = tokio::time::interval(Duration::from_millis(300));
            loop {
                tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(Cmd::Send(m)) => send_frame(&mut ws, &m).await,
                        Some(Cmd::Heartbeats { on: o, ready: r }) => {
                            (on, ready) = (o, r);
                            beat.reset_immediately();
                        }
                        None => return,
                    },
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(t))) => {
                            let _ = inbox_tx.send(serde_json::from_str(t.as_str()).unwrap());
                        }
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                        Some(Ok(_)) => {}
                    },
                    _ = beat.tick(), if on => {
                        seq += 1;
                        let hb = WorkerMessage::Heartbeat { seq, in_flight: 0, ready };
                        if ws.send(Message::text(serde_json::to_string(&hb).unwrap())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Self {
            welcome,
            cmds,
            inbox,
            task,
        }
    }

    pub fn send(&self, msg: WorkerMessage) {
        let _ = self.cmds.send(Cmd::Send(msg));
    }

    pub fn heartbeats(&self, on: bool, ready: bool) {
        let _ = self.cmds.send(Cmd::Heartbeats { on, ready });
    }

    /// The next frame from the orchestrator; `None` once the connection closed.
    pub async fn recv(&mut self) -> Option<OrchestratorMessage> {
        tokio::time::timeout(PATIENCE, self.inbox.recv())
            .await
            .expect("no frame in time")
    }

    /// Skips frames until a `job`.
    pub async fn next_job(&mut self) -> (JobId, Value) {
        loop {
            match self.recv().await {
                Some(OrchestratorMessage::Job {
                    job_id, request, ..
                }) => return (job_id, request),
                Some(_) => {}
                None => panic!("connection closed while waiting for a job"),
            }
        }
    }

    /// Skips frames until one matches.
    pub async fn expect(
        &mut self,
        want: impl Fn(&OrchestratorMessage) -> bool,
    ) -> OrchestratorMessage {
        loop {
            match self.recv().await {
                Some(m) if want(&m) => return m,
                Some(_) => {}
                None => panic!("connection closed while waiting"),
            }
        }
    }

    pub fn chunk(&self, job_id: &JobId, delta: &str) {
        self.send(WorkerMessage::JobChunk {
            job_id: job_id.clone(),
            delta: delta.into(),
        });
    }

    pub fn done(&self, job_id: &JobId, output: &str) {
        self.send(done_frame(job_id, output));
    }

    /// Drops the connection without a close frame, as a killed process would.
    pub fn kill(self) {
        self.task.abort();
    }
}

pub fn done_frame(job_id: &JobId, output: &str) -> WorkerMessage {
    WorkerMessage::JobDone {
        job_id: job_id.clone(),
        output: Some(output.into()),
        usage: Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
        },
        timings: JobTimings {
            first_token_ms: 1,
            total_ms: 2,
        },
        simulated: true,
    }
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}
