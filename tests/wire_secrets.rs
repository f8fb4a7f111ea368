//! "The device key never leaves the host" (docs/SECURITY.md, "Identity: worker id, wallet,
//! device key"), checked on the wire: a recording proxy sits between every `basis` process of a
//! worker host and a real orchestrator and keeps every byte both ways (HTTP and the worker's
//! WebSocket channel, whose client frames it unmasks). A full flow runs through it with the
//! real binary: write-env, register, start (supervisor and echo worker), online, a gateway job,
//! a task claimed, executed, submitted, rejected by an evaluator and disputed, the key rotated,
//! the worker restarted on the new key, a gateway job and a claim with it, stop. Then no device
//! private key the host ever held (before and after the rotation) may appear, in any encoding,
//! in the recording, in the orchestrator's log and files, in the host's logs and state files,
//! or in anything the CLI printed. The recording must hold the signed traffic (so the check
//! cannot pass vacuously).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use basis::domain::DeviceKey;
use common::orchestrator::{Options, Orchestrator, bin};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const WORKER_ID: &str = "wire-secrets-box";
/// What one `basis` command may take before the test gives up on it.
const COMMAND_LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------------
// The recording proxy
// ---------------------------------------------------------------------------------------------

/// The bytes of one proxied TCP connection, each direction kept whole (so a secret split across
/// two reads is still one contiguous run here).
#[derive(Debug, Default)]
struct Conn {
    /// client (a `basis` process) -> orchestrator
    up: Mutex<Vec<u8>>,
    /// orchestrator -> client
    down: Mutex<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Recording {
    conns: Mutex<Vec<Arc<Conn>>>,
}

/// A TCP proxy on 127.0.0.1:0 forwarding every connection to the orchestrator, byte for byte
/// (an HTTP upgrade to WebSocket passes through untouched), recording everything.
#[derive(Debug)]
struct Proxy {
    url: Url,
    recording: Arc<Recording>,
}

impl Proxy {
    /// Serves on `listener` (bound before the orchestrator started, so the orchestrator can
    /// name the proxy's URL in its `origins`: workers sign for the URL they dial).
    /// Call inside the runtime (`Runtime::enter`): it spawns the accept loop there.
    fn start(listener: std::net::TcpListener, target: SocketAddr) -> Self {
        listener
            .set_nonblocking(true)
            .expect("nonblocking proxy socket");
        let listener = TcpListener::from_std(listener).expect("proxy listener");
        let addr = listener.local_addr().expect("proxy address");
        let recording = Arc::new(Recording::default());
        let rec = Arc::clone(&recording);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let conn = Arc::new(Conn::default());
                rec.conns.lock().unwrap().push(Arc::clone(&conn));
                tokio::spawn(relay(client, target, conn));
            }
        });
        Self {
            url: Url::parse(&format!("http://{addr}/")).expect("proxy url"),
            recording,
        }
    }

    /// Every recorded stream, labelled: each connection's raw bytes both ways, and for a
    /// WebSocket connection the frames' payloads, unmasked, both ways.
    fn streams(&self) -> Vec<(String, Vec<u8>)> {
        let conns = self.recording.conns.lock().unwrap().clone();
        let mut out = Vec::new();
        for (i, conn) in conns.iter().enumerate() {
            let up = conn.up.lock().unwrap().clone();
            let down = conn.down.lock().unwrap().clone();
            if let Some((ws_up, ws_down)) = websocket_payloads(&up, &down) {
                out.push((
                    format!("connection {i}: WebSocket frames, worker -> orchestrator (unmasked)"),
                    ws_up,
                ));
                out.push((
                    format!("connection {i}: WebSocket frames, orchestrator -> worker"),
                    ws_down,
                ));
            }
            out.push((
                format!("connection {i}: raw bytes, client -> orchestrator"),
                up,
            ));
            out.push((
                format!("connection {i}: raw bytes, orchestrator -> client"),
                down,
            ));
        }
        out
    }

    fn connections(&self) -> usize {
        self.recording.conns.lock().unwrap().len()
    }
}

async fn relay(client: TcpStream, target: SocketAddr, conn: Arc<Conn>) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pump(client_read, server_write, Arc::clone(&conn), true),
        pump(server_read, client_write, conn, false),
    );
}

/// Copies `from` to `to` until end of file (then half-closes `to`) or an error, recording.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    conn: Arc<Conn>,
    up: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let side = if up { &conn.up } else { &conn.down };
        side.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains_ci(haystack: &[u8], needle: &str) -> bool {
    find(
        &haystack.to_ascii_lowercase(),
        needle.to_ascii_lowercase().as_bytes(),
    )
    .is_some()
}

/// For a connection upgraded to WebSocket (the answer is `101`), the payloads of the frames
/// after the handshake, both ways; client frames (masked, as RFC 6455 requires) are unmasked,
/// so what the worker sent on its channel is searchable as plain bytes.
fn websocket_payloads(up: &[u8], down: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    if !down.starts_with(b"HTTP/1.1 101") {
        return None;
    }
    let up_head = find(up, b"\r\n\r\n")? + 4;
    let down_head = find(down, b"\r\n\r\n")? + 4;
    assert!(
        !contains_ci(&down[..down_head], "permessage-deflate"),
        "the channel negotiated compression: the unmasked payloads would not be plain text, \
         extend the proxy to inflate them"
    );
    Some((frames(&up[up_head..]), frames(&down[down_head..])))
}

/// The payloads of consecutive WebSocket frames, concatenated (continuations stay contiguous).
fn frames(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let masked = bytes[1] & 0x80 != 0;
        let mut len = u64::from(bytes[1] & 0x7f);
        let mut at = 2;
        if len == 126 {
            if bytes.len() < 4 {
                break;
            }
            len = u64::from(u16::from_be_bytes([bytes[2], bytes[3]]));
            at = 4;
        } else if len == 127 {
            if bytes.len() < 10 {
                break;
            }
            len = u64::from_be_bytes(bytes[2..10].try_into().unwrap());
            at = 10;
        }
        let mask = if masked {
            if bytes.len() < at + 4 {
                break;
            }
            let m = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
            at += 4;
            Some(m)
        } else {
            None
        };
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| at.checked_add(l))
            .map_or(bytes.len(), |e| e.min(bytes.len()));
        out.extend(
            bytes[at..end]
                .iter()
                .enumerate()
                .map(|(i, b)| mask.map_or(*b, |m| b ^ m[i % 4])),
        );
        bytes = &bytes[end..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// What must never appear
// ---------------------------------------------------------------------------------------------

/// Every encoding of one device private key that the test looks for.
struct Needles {
    fingerprint: String,
    list: Vec<(String, Vec<u8>)>,
}

impl Needles {
    fn of(text: &str) -> Self {
        let key = DeviceKey::parse(text).expect("the env file's key parses");
        let seed = key.seed_bytes();
        let seed: &[u8] = seed.as_ref();
        let mut list: Vec<(String, Vec<u8>)> = vec![
            ("its basis_dk_ text".into(), text.as_bytes().to_vec()),
            (
                "base64url of the seed, no padding (43 chars)".into(),
                URL_SAFE_NO_PAD.encode(seed).into_bytes(),
            ),
            (
                "base64url of the seed, padded".into(),
                URL_SAFE.encode(seed).into_bytes(),
            ),
            (
                "standard base64 of the seed, padded".into(),
                STANDARD.encode(seed).into_bytes(),
            ),
            (
                "standard base64 of the seed, no padding".into(),
                STANDARD_NO_PAD.encode(seed).into_bytes(),
            ),
            (
                "lowercase hex of the seed".into(),
                hex::encode(seed).into_bytes(),
            ),
            (
                "uppercase hex of the seed".into(),
                hex::encode_upper(seed).into_bytes(),
            ),
            ("the raw 32 seed bytes".into(), seed.to_vec()),
            // Not the key, but nothing has a reason to send a hash of it either.
            (
                "lowercase hex of sha256(seed)".into(),
                hex::encode(Sha256::digest(seed)).into_bytes(),
            ),
            (
                "standard base64 of sha256(seed)".into(),
                STANDARD_NO_PAD.encode(Sha256::digest(seed)).into_bytes(),
            ),
        ];
        // The seed inside a longer base64 blob (say seed || public key, a 64-byte keypair) at
        // any of the three alignments: 30 of its bytes always encode to 40 chars of their own.
        for offset in 0..3 {
            let window = &seed[offset..offset + 30];
            list.push((
                format!(
                    "standard base64 of seed bytes {offset}..{} (inside a longer blob)",
                    offset + 30
                ),
                STANDARD_NO_PAD.encode(window).into_bytes(),
            ));
            list.push((
                format!(
                    "base64url of seed bytes {offset}..{} (inside a longer blob)",
                    offset + 30
                ),
                URL_SAFE_NO_PAD.encode(window).into_bytes(),
            ));
        }
        Self {
            fingerprint: key.fingerprint().to_string(),
            list,
        }
    }
}

/// Every place where one of `keys`, in one of its encodings, appears in `places`.
fn leaks(keys: &[Needles], places: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for (place, bytes) in places {
        for key in keys {
            for (what, needle) in &key.list {
                if let Some(at) = find(bytes, needle) {
                    found.push(format!(
                        "{what} of device key {} in {place} at byte {at}",
                        key.fingerprint
                    ));
                }
            }
        }
    }
    found
}

#[track_caller]
fn assert_no_leak(keys: &[Needles], places: &[(String, Vec<u8>)], scope: &str) {
    let found = leaks(keys, places);
    assert!(
        found.is_empty(),
        "a device private key left its place ({scope}):\n  {}",
        found.join("\n  ")
    );
}

/// Every regular file under `dir` (recursively) but those in `skip`, labelled by path.
fn files_under(dir: &Path, skip: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                todo.push(path);
            } else if kind.is_file()
                && !skip.contains(&path)
                && let Ok(bytes) = std::fs::read(&path)
            {
                out.push((format!("file {}", path.display()), bytes));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The worker's host: the real binary in a temp BASIS_HOME
// ---------------------------------------------------------------------------------------------

struct Host {
    dir: tempfile::TempDir,
    /// Everything every command printed, labelled.
    printed: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Host {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp BASIS_HOME"),
            printed: Mutex::new(Vec::new()),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env_file(&self) -> PathBuf {
        self.path().join("worker.env")
    }

    /// `basis ARGS` (BASIS_HOME = this host, logs at trace level), killed after
    /// [`COMMAND_LIMIT`]: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut child = Command::new(bin())
            .args(args)
            .env("BASIS_HOME", self.path())
            .env("RUST_LOG", "basis=trace,info")
            .env_remove("BASIS_ORCHESTRATOR_URL")
            .env_remove("BASIS_CONFIG")
            .env_remove("BASIS_DEVICE_KEY")
            .env_remove("BASIS_WORKER_TOKEN")
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn basis");
        let reader = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                buf
            })
        };
        let out = reader(Box::new(child.stdout.take().expect("stdout")));
        let err = reader(Box::new(child.stderr.take().expect("stderr")));
        let deadline = Instant::now() + COMMAND_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for basis") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`basis {}` did not finish within {COMMAND_LIMIT:?}",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = out.join().expect("stdout reader");
        let err = err.join().expect("stderr reader");
        let mut printed = self.printed.lock().unwrap();
        printed.push((format!("stdout of `basis {}`", args.join(" ")), out.clone()));
        printed.push((format!("stderr of `basis {}`", args.join(" ")), err.clone()));
        (
            status.code(),
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    /// `basis ARGS --json`, which must exit 0; its JSON.
    fn ok(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let (code, out, err) = self.run(&all);
        let json: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
            panic!(
                "`basis {}`: stdout is not JSON ({e}): {out}\nstderr: {err}",
                all.join(" ")
            )
        });
        assert_eq!(
            code,
            Some(0),
            "`basis {}` failed: {json:#}\nstderr: {err}",
            all.join(" ")
        );
        json
    }

    /// The device keys in the env file now (`BASIS_DEVICE_KEY`, and `BASIS_DEVICE_KEY_NEXT`
    /// while a rotation is pending).
    fn keys(&self) -> Vec<String> {
        std::fs::read_to_string(self.env_file())
            .expect("read worker.env")
            .lines()
            .filter_map(|l| {
                l.strip_prefix("BASIS_DEVICE_KEY=")
                    .or_else(|| l.strip_prefix("BASIS_DEVICE_KEY_NEXT="))
                    .map(|v| v.trim().trim_matches('"').to_owned())
            })
            .collect()
    }

    /// The current `BASIS_DEVICE_KEY`.
    fn key(&self) -> String {
        let text = std::fs::read_to_string(self.env_file()).expect("read worker.env");
        text.lines()
            .find_map(|l| l.strip_prefix("BASIS_DEVICE_KEY="))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .expect("worker.env holds BASIS_DEVICE_KEY")
    }
}

/// Stops the worker when dropped, so a failing test leaves no supervisor behind.
struct StopOnDrop<'a>(&'a Host);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["stop", "--drain-timeout", "1"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Orchestrator-side calls through the proxy (what a client and an evaluator send)
// ---------------------------------------------------------------------------------------------

fn http() -> reqwest::Client {
    basis::http::client_builder(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

async fn post(url: Url, bearer: Option<&str>, body: &Value) -> (u16, Value, String) {
    let mut rb = http().post(url.clone()).json(body);
    if let Some(b) = bearer {
        rb = rb.bearer_auth(b);
    }
    let resp = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("answer body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

/// A chat completion through the gateway (open mode: no client key), retried while no worker
/// serves the model yet (503) for at most 30 s; the answer's text.
async fn gateway_job(base: &Url, prompt: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = json!({
        "model": "tiny",
        "messages": [{"role": "user", "content": prompt}],
        "stream": false,
    });
    loop {
        let (status, answer, text) =
            post(base.join("/v1/chat/completions").unwrap(), None, &body).await;
        if status == 200 {
            return answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_else(|| panic!("no completion text in {text}"))
                .to_owned();
        }
        assert!(
            status == 503 && Instant::now() < deadline,
            "the gateway job through the proxy failed: {status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Posts an echo task (open mode: no client key); its id.
async fn post_task(base: &Url, prompt: &str) -> String {
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let body = json!({
        "description": "echo the prompt",
        "criteria": ["repeats the prompt"],
        "required_capabilities": ["runtime:echo", "model:tiny"],
        "reward": "700",
        "deadline": deadline,
        "output_format": "text",
        "input": {"model": "tiny", "messages": [{"role": "user", "content": prompt}]},
    });
    let (status, answer, text) = post(base.join("/api/tasks").unwrap(), None, &body).await;
    assert_eq!(status, 201, "posting a task through the proxy: {text}");
    answer["task_id"].as_str().expect("task_id").to_owned()
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

#[test]
#[allow(clippy::too_many_lines)] // one flow, start to end, then the checks
fn no_device_key_crosses_the_wire_in_a_full_flow() {
    let started = Instant::now();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let proxy_addr = listener.local_addr().expect("proxy address");
    let orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        // Workers reach it through the proxy, so they sign for the proxy's URL.
        toml: format!(
            "origins = [\"http://{proxy_addr}\"]\n{}",
            common::orchestrator::RELAXED_LIMITS
        ),
        ..Options::default()
    });
    let target: SocketAddr = format!(
        "{}:{}",
        orch.url.host_str().expect("orchestrator host"),
        orch.url.port().expect("orchestrator port")
    )
    .parse()
    .expect("orchestrator socket address");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let proxy = {
        let _in_runtime = rt.enter();
        Proxy::start(listener, target)
    };
    let via = proxy.url.clone();
    let host = Host::new();
    // Every device key this host held, in order.
    let mut held: Vec<String> = Vec::new();
    let mut remember = |keys: Vec<String>| {
        for k in keys {
            if !held.contains(&k) {
                held.push(k);
            }
        }
    };

    // Onboarding, through the proxy.
    let written = host.ok(&[
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        WORKER_ID,
        "--runtime",
        "echo",
        "--models",
        "tiny",
        "--orchestrator-url",
        via.as_str(),
    ]);
    let first = host.key();
    remember(host.keys());
    assert_eq!(
        written["key_fingerprint"],
        json!(Needles::of(&first).fingerprint),
        "{written:#}"
    );
    let registered = host.ok(&["register"]);
    assert_eq!(
        registered["key_fingerprint"], written["key_fingerprint"],
        "{registered:#}"
    );
    assert_eq!(host.key(), first, "register kept the key write-env made");
    remember(host.keys());

    // The worker, online through the proxy; a gateway job over its channel.
    let start = host.ok(&["start"]);
    let guard = StopOnDrop(&host);
    let mut log_files: Vec<PathBuf> = start["log_path"]
        .as_str()
        .map(PathBuf::from)
        .into_iter()
        .collect();
    let online = host.ok(&["verify", "--wait", "30"]);
    assert_eq!(
        online["online"], true,
        "the worker never came online through the proxy: {online:#}"
    );
    let answer = rt.block_on(gateway_job(&via, "wire secrets: gateway job"));
    assert!(
        answer.contains("wire secrets: gateway job"),
        "echo answered {answer:?}"
    );

    // The task market: claim, execute, submit; an evaluator rejects; the worker disputes.
    let task = rt.block_on(post_task(&via, "wire secrets: task"));
    host.ok(&["claim", &task]);
    let run = host.ok(&["execute", &task]);
    let output = run["output"].as_str().expect("execute's output").to_owned();
    assert!(output.contains("wire secrets: task"), "{run:#}");
    let submitted = host.ok(&["submit", &task, "--output", &output]);
    let sub = submitted["submission_id"]
        .as_str()
        .expect("submission_id")
        .to_owned();
    let evaluator = orch.create_key("evaluator").0.trim().to_owned();
    let (status, verdict, text) = rt.block_on(post(
        via.join(&format!("/api/submissions/{sub}/evaluate"))
            .unwrap(),
        Some(&evaluator),
        &json!({"score": 20, "passed": false, "reasons": ["rejected on purpose, to dispute"]}),
    ));
    assert_eq!(
        (status, &verdict["status"]),
        (200, &json!("rejected")),
        "{text}"
    );
    let disputed = host.ok(&["dispute", &sub, "--reason", "the echo is exact"]);
    assert_eq!(disputed["status"], "disputed", "{disputed:#}");
    let shown = host.ok(&["submission", &sub]);
    assert_eq!(shown["status"], "disputed", "{shown:#}");

    // Rotation: the env file read before and after.
    assert_eq!(host.key(), first, "the key changed before the rotation");
    remember(host.keys());
    let rotated = host.ok(&["rotate-key"]);
    let second = host.key();
    remember(host.keys());
    assert_ne!(second, first, "rotate-key left the same key in worker.env");
    assert_eq!(
        host.keys(),
        vec![second.clone()],
        "a pending key is left after the rotation"
    );
    assert_eq!(
        rotated["key_fingerprint"],
        json!(Needles::of(&second).fingerprint),
        "{rotated:#}"
    );
    assert_eq!(
        rotated["previous_key_fingerprint"],
        json!(Needles::of(&first).fingerprint),
        "{rotated:#}"
    );

    // The worker restarted on the new key: its channel, a gateway job and a signed claim.
    host.ok(&["stop", "--drain-timeout", "5"]);
    let restart = host.ok(&["start"]);
    if let Some(p) = restart["log_path"].as_str() {
        log_files.push(PathBuf::from(p));
    }
    let answer = rt.block_on(gateway_job(&via, "wire secrets: after rotation"));
    assert!(
        answer.contains("wire secrets: after rotation"),
        "echo answered {answer:?}"
    );
    let online = host.ok(&["verify", "--wait", "30"]);
    assert_eq!(
        online["online"], true,
        "not online with the new key: {online:#}"
    );
    let task2 = rt.block_on(post_task(&via, "wire secrets: claimed with the new key"));
    host.ok(&["claim", &task2]);
    let stopped = host.ok(&["stop", "--drain-timeout", "5"]);
    assert_eq!(stopped["stopped"], true, "{stopped:#}");
    std::mem::forget(guard); // stopped already; nothing left to clean up
    remember(host.keys());
    let flow = started.elapsed();

    assert_eq!(
        held.len(),
        2,
        "expected exactly the first and the rotated key"
    );
    let keys: Vec<Needles> = held.iter().map(|k| Needles::of(k)).collect();

    // The recording is not vacuous: it holds the signed traffic and the channel.
    let streams = proxy.streams();
    let wire: Vec<u8> = streams
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    for needle in [
        "signature-input",
        "signature:",
        "content-digest",
        "/api/workers/register",
        "/api/workers/connect",
        "/claim",
        "/submit",
        "/dispute",
        "/v1/chat/completions",
    ] {
        assert!(
            contains_ci(&wire, needle),
            "the recording lacks `{needle}`: the flow did not go through the proxy"
        );
    }
    assert!(
        find(&wire, WORKER_ID.as_bytes()).is_some(),
        "the recording never names the worker"
    );
    assert!(
        contains_ci(&wire, "previous=("),
        "the recording lacks the rotation's second signature (`previous`, by the old key)"
    );
    for key in &held {
        let public = DeviceKey::parse(key).unwrap().public().to_string();
        assert!(
            find(&wire, public.as_bytes()).is_some(),
            "the recording lacks the public key {public} (registration or rotation)"
        );
    }
    let ws_up: Vec<u8> = streams
        .iter()
        .filter(|(label, _)| label.contains("WebSocket frames, worker"))
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    for needle in ["hello", "proof", WORKER_ID, "job_done"] {
        assert!(
            find(&ws_up, needle.as_bytes()).is_some(),
            "the unmasked channel frames lack `{needle}`"
        );
    }
    assert!(
        find(&wire, b"basis_dk_").is_none(),
        "something shaped like a device private key (basis_dk_…) crossed the wire"
    );

    if let Some(dir) = std::env::var_os("WIRE_SECRETS_DUMP") {
        // For a failure's diagnosis: every recorded stream, one file each.
        for (i, (label, bytes)) in streams.iter().enumerate() {
            let path = Path::new(&dir).join(format!("{i:03}.bin"));
            std::fs::write(&path, bytes).expect("dump a stream");
            eprintln!("{}: {label}", path.display());
        }
    }

    // The checks proper.
    assert_no_leak(
        &keys,
        &streams,
        "the bytes between the host and the orchestrator",
    );
    let orch_log = orch.logs();
    assert!(
        orch_log.contains(WORKER_ID),
        "the orchestrator log never names the worker: is it the right log?"
    );
    assert_no_leak(
        &keys,
        &[("the orchestrator's log".to_owned(), orch_log.into_bytes())],
        "orchestrator log",
    );
    assert_no_leak(
        &keys,
        &files_under(orch.dir.path(), &[]),
        "the orchestrator's files (database, logs)",
    );
    let mut host_files = files_under(host.path(), &[host.env_file()]);
    for log in &log_files {
        if !log.starts_with(host.path())
            && let Ok(bytes) = std::fs::read(log)
        {
            host_files.push((format!("file {}", log.display()), bytes));
        }
    }
    assert!(
        host_files
            .iter()
            .any(|(label, bytes)| label.contains("worker.log") && !bytes.is_empty()),
        "no worker log was found under BASIS_HOME: {:?}",
        host_files.iter().map(|(l, _)| l).collect::<Vec<_>>()
    );
    assert_no_leak(
        &keys,
        &host_files,
        "the host's logs and state files other than worker.env",
    );
    let printed = host.printed.lock().unwrap().clone();
    assert_no_leak(&keys, &printed, "what the CLI printed");

    eprintln!(
        "wire_secrets: flow {:?}, checks {:?}; {} connections, {} bytes recorded, \
         {} host files, {} keys x {} encodings",
        flow,
        started.elapsed().saturating_sub(flow),
        proxy.connections(),
        wire.len(),
        host_files.len(),
        keys.len(),
        keys[0].list.len()
    );
    drop(rt);
}

/// The detector itself, so that the flow's "found nothing" means something: every encoding is
/// found inside surrounding bytes, the seed inside a longer base64 blob at any alignment, and
/// the key in a masked WebSocket frame once unmasked (and not before).
#[test]
fn the_detector_finds_the_key_in_every_encoding_and_inside_masked_frames() {
    let key = DeviceKey::generate();
    let text = (*key.expose_secret()).clone();
    let needles = Needles::of(&text);
    for (what, needle) in &needles.list {
        let mut hay = b"GET /x HTTP/1.1\r\nx-junk: ".to_vec();
        hay.extend_from_slice(needle);
        hay.extend_from_slice(b"\r\n\r\n");
        let found = leaks(&[Needles::of(&text)], &[("hay".into(), hay)]);
        assert!(!found.is_empty(), "{what} was not found");
    }
    let seed = key.seed_bytes();
    let public = key.public();
    for prefix in 0..3 {
        let mut blob = vec![0xa5u8; prefix];
        blob.extend_from_slice(seed.as_ref());
        blob.extend_from_slice(public.as_bytes());
        for engine in [STANDARD, URL_SAFE] {
            let place = vec![("blob".to_owned(), engine.encode(&blob).into_bytes())];
            assert!(
                !leaks(&[Needles::of(&text)], &place).is_empty(),
                "seed after {prefix} bytes in base64 missed"
            );
        }
    }
    // A client frame (masked, 16-bit length) carrying the key, after a 101 handshake.
    let payload = format!(
        "{{\"type\":\"hello\",\"pad\":\"{}\",\"k\":\"{text}\"}}",
        "x".repeat(200)
    );
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut up = b"GET /api/workers/connect HTTP/1.1\r\nUpgrade: websocket\r\n\r\n".to_vec();
    up.extend_from_slice(&[0x81, 0x80 | 0x7e]);
    up.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    up.extend_from_slice(&mask);
    up.extend(payload.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    up.extend_from_slice(&[0x89, 0x80, 1, 2, 3, 4]); // an empty masked ping after it
    let down = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02ok".to_vec();
    assert!(
        leaks(&[Needles::of(&text)], &[("raw".into(), up.clone())]).is_empty(),
        "masking hides it in the raw bytes"
    );
    let (ws_up, ws_down) = websocket_payloads(&up, &down).expect("a WebSocket connection");
    assert_eq!(ws_up, payload.as_bytes());
    assert_eq!(ws_down, b"ok");
    assert!(!leaks(&[Needles::of(&text)], &[("unmasked".into(), ws_up)]).is_empty());
}
