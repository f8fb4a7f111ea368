//! A fake orchestrator for the worker tests: an in-test axum WebSocket server at
//! `/api/workers/connect` that checks the bearer token, answers `hello` with `welcome`, reports
//! every frame (with its arrival time) to the test, and sends or closes on command. It plays the
//! orchestrator's side of the worker channel (docs/PROTOCOL.md, "Worker channel") so the
//! worker can be tested on its own. Also what starting the
//! real `basis worker` process takes: its env file, its command, a guard that kills it.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use url::Url;

use basis::config::WorkerEnv;
use basis::domain::{JobId, Runtime, WorkerId, WorkerToken};
use basis::runtime::{self, Backend};
use basis::wire::{OrchestratorMessage, WORKER_CONNECT, WorkerMessage};
use basis::worker::{
    BackoffPolicy, Options, Shutdown, WorkerConfig, WorkerError, WorkerState, WorkerStatus,
};

/// How long a test waits for anything before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);
pub const MODEL: &str = "echo-1";

#[derive(Debug)]
pub enum Event {
    Connected {
        conn: usize,
        auth: Option<String>,
    },
    Frame {
        conn: usize,
        msg: WorkerMessage,
        at: Instant,
    },
    Closed,
}

enum Out {
    Send(OrchestratorMessage),
    Close,
}

#[derive(Clone)]
struct FakeState {
    token: String,
    heartbeat_interval_s: u32,
    events: mpsc::UnboundedSender<Event>,
    conns: Arc<Mutex<HashMap<usize, mpsc::UnboundedSender<Out>>>>,
    next_conn: Arc<AtomicUsize>,
    refuse: Arc<AtomicBool>,
    attempts: Arc<Mutex<Vec<Instant>>>,
}

/// The fake orchestrator, as the test drives it.
pub struct Fake {
    pub url: Url,
    state: FakeState,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Fake {
    /// Serves on 127.0.0.1:0; accepts `token`; welcomes with a 1 s heartbeat interval.
    pub async fn start(token: &WorkerToken) -> Fake {
        let (tx, events) = mpsc::unbounded_channel();
        let state = FakeState {
            token: token.expose_secret().to_owned(),
            heartbeat_interval_s: 1,
            events: tx,
            conns: Arc::default(),
            next_conn: Arc::default(),
            refuse: Arc::default(),
            attempts: Arc::default(),
        };
        let app = Router::new()
            .route(WORKER_CONNECT, get(upgrade))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake {
            url: Url::parse(&format!("http://{addr}")).unwrap(),
            state,
            events,
        }
    }

    /// While set, upgrades are answered 503.
    pub fn refuse(&self, refuse: bool) {
        self.state.refuse.store(refuse, Ordering::SeqCst);
    }

    /// When each upgrade request arrived.
    pub fn attempts(&self) -> Vec<Instant> {
        self.state.attempts.lock().unwrap().clone()
    }

    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(PATIENCE, self.events.recv())
            .await
            .expect("no event from the worker in time")
            .expect("the fake's event channel closed")
    }

    /// Waits for the next connection; checks it says `hello` first. Returns its number.
    pub async fn connected(&mut self) -> (usize, WorkerMessage) {
        let conn = loop {
            if let Event::Connected { conn, auth } = self.next_event().await {
                assert!(auth.is_some_and(|a| a.starts_with("Bearer ")));
                break conn;
            }
        };
        let hello = self.frame(conn, |_| true).await;
        assert!(matches!(hello, WorkerMessage::Hello { .. }), "{hello:?}");
        (conn, hello)
    }

    /// The next frame on `conn` that `pred` accepts (earlier ones are skipped).
    pub async fn frame(
        &mut self,
        conn: usize,
        pred: impl Fn(&WorkerMessage) -> bool,
    ) -> WorkerMessage {
        self.frame_at(conn, pred).await.0
    }

    pub async fn frame_at(
        &mut self,
        conn: usize,
        pred: impl Fn(&WorkerMessage) -> bool,
    ) -> (WorkerMessage, Instant) {
        loop {
            if let Event::Frame { conn: c, msg, at } = self.next_event().await
                && c == conn
                && pred(&msg)
            {
                return (msg, at);
            }
        }
    }

    /// The next frame on `conn` that is not a heartbeat.
    pub async fn message(&mut self, conn: usize) -> WorkerMessage {
        self.frame(conn, |m| !matches!(m, WorkerMessage::Heartbeat { .. }))
            .await
    }

    /// Every non-heartbeat frame on `conn` arriving within `window`.
    pub async fn quiet(&mut self, conn: usize, window: Duration) -> Vec<WorkerMessage> {
        let end = tokio::time::Instant::now() + window;
        let mut seen = Vec::new();
        while let Ok(Some(event)) = tokio::time::timeout_at(end, self.events.recv()).await {
            if let Event::Frame { conn: c, msg, .. } = event
                && c == conn
                && !matches!(msg, WorkerMessage::Heartbeat { .. })
            {
                seen.push(msg);
            }
        }
        seen
    }

    pub fn send(&self, conn: usize, msg: OrchestratorMessage) {
        let conns = self.state.conns.lock().unwrap();
        conns[&conn].send(Out::Send(msg)).unwrap();
    }

    pub fn close(&self, conn: usize) {
        let conns = self.state.conns.lock().unwrap();
        let _ = conns[&conn].send(Out::Close);
    }

    /// Sends a chat job and returns its id.
    pub fn job(&self, conn: usize, text: &str, stream: bool, deadline_ms: u64) -> JobId {
        let job_id = JobId::generate();
        self.send(
            conn,
            OrchestratorMessage::Job {
                job_id: job_id.clone(),
                model: MODEL.into(),
                request: chat(text, stream),
                deadline_ms,
            },
        );
        job_id
    }
}

/// An OpenAI-compatible chat body with one user message.
pub fn chat(text: &str, stream: bool) -> Value {
    json!({"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": text}]})
}

async fn upgrade(
    State(st): State<FakeState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    st.attempts.lock().unwrap().push(Instant::now());
    if st.refuse.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if auth.as_deref() != Some(format!("Bearer {}", st.token).as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    ws.on_upgrade(move |socket| serve(st, socket, auth))
}

async fn serve(st: FakeState, socket: WebSocket, auth: Option<String>) {
    let conn = st.next_conn.fetch_add(1, Ordering::SeqCst);
    let (tx, mut rx) = mpsc::unbounded_channel();
    st.conns.lock().unwrap().insert(conn, tx);
    let _ = st.events.send(Event::Connected { conn, auth });
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let msg: WorkerMessage = serde_json::from_str(&text).unwrap();
                    if matches!(msg, WorkerMessage::Hello { .. }) {
                        let welcome = OrchestratorMessage::Welcome {
                            heartbeat_interval_s: st.heartbeat_interval_s,
                            online_window_s: 30,
                        };
                        let text = serde_json::to_string(&welcome).unwrap();
                        let _ = sink.send(Message::Text(text.into())).await;
                    }
                    let _ = st.events.send(Event::Frame { conn, msg, at: Instant::now() });
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            out = rx.recv() => match out {
                Some(Out::Send(msg)) => {
                    let text = serde_json::to_string(&msg).unwrap();
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close) | None => break,
            },
        }
    }
    st.conns.lock().unwrap().remove(&conn);
    let _ = st.events.send(Event::Closed);
}

/// A worker running in this process against `url`.
pub struct Worker {
    pub shutdown: Shutdown,
    pub handle: tokio::task::JoinHandle<Result<(), WorkerError>>,
    pub status_path: PathBuf,
    pub token: WorkerToken,
    _dir: tempfile::TempDir,
}

/// The env a test worker reads: echo runtime, one model.
pub fn env(url: &Url, token: &WorkerToken) -> WorkerEnv {
    WorkerEnv {
        worker_id: Some(WorkerId::parse("test-worker").unwrap()),
        runtime: Some(Runtime::Echo),
        models: vec![MODEL.into()],
        orchestrator_url: Some(url.clone()),
        token: Some(token.clone()),
        ..WorkerEnv::default()
    }
}

/// Test defaults: 2 jobs at once, 20 ms echo tokens, 200 ms health checks, a 1 s drain.
pub fn options(dir: &Path) -> Options {
    let mut o = Options::new(dir.join("state/worker-status.json"));
    o.capacity = Some(2);
    o.echo_delay = Some(Duration::from_millis(20));
    o.health_interval = Duration::from_millis(200);
    o.drain_timeout = Duration::from_secs(5);
    o.backoff = BackoffPolicy::default();
    o
}

/// Starts a worker with `token`, adjusted by `tweak`, on `backend` (default: the echo runtime).
pub fn start(
    url: &Url,
    token: &WorkerToken,
    tweak: impl FnOnce(&mut Options),
    backend: Option<Arc<dyn Backend>>,
) -> Worker {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    tweak(&mut o);
    let status_path = o.status_path.clone();
    let config = WorkerConfig::from_env(&env(url, token), o, |_| None).unwrap();
    let backend = backend.unwrap_or_else(|| runtime::build(&config.runtime_spec).unwrap());
    let shutdown = Shutdown::new();
    let handle = tokio::spawn(basis::worker::run(config, backend, shutdown.clone()));
    Worker {
        shutdown,
        handle,
        status_path,
        token: token.clone(),
        _dir: dir,
    }
}

impl Worker {
    /// Drains and waits for the worker to return.
    pub async fn stop(self) -> WorkerStatus {
        self.shutdown.drain();
        tokio::time::timeout(PATIENCE, self.handle)
            .await
            .expect("the worker did not stop")
            .unwrap()
            .unwrap();
        let status = read_status(&self.status_path, &self.token);
        assert_eq!(status.state, WorkerState::Stopped);
        status
    }

    /// Waits until the status file satisfies `pred`; returns it.
    pub async fn status_until(&self, pred: impl Fn(&WorkerStatus) -> bool) -> WorkerStatus {
        wait_status(&self.status_path, &self.token, pred).await
    }
}

/// Reads the status file, checking it is 0600 and never holds the token.
pub fn read_status(path: &Path, token: &WorkerToken) -> WorkerStatus {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        !text.contains(token.expose_secret()),
        "the status file holds the token"
    );
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    serde_json::from_str(&text).unwrap()
}

pub async fn wait_status(
    path: &Path,
    token: &WorkerToken,
    pred: impl Fn(&WorkerStatus) -> bool,
) -> WorkerStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if path.exists() {
            let status = read_status(path, token);
            if pred(&status) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "status never matched: {status:#?}"
            );
        }
        assert!(
            Instant::now() < deadline,
            "no status file at {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes `text` as `dir/worker.env`, mode 0600.
pub fn write_env(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("worker.env");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// `basis worker --env ENV_FILE` in `home`, with a clean environment and debug logs.
pub fn worker_command(home: &Path, env_file: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_basis"));
    cmd.args(["worker", "--env"])
        .arg(env_file)
        .args(["--drain-timeout-s", "20"])
        .env_clear()
        .env("BASIS_HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "basis=debug")
        .stdout(Stdio::null());
    cmd
}

/// A child process killed (SIGKILL) when dropped, so a failing test leaves nothing running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
