//! Signed worker requests (docs/SECURITY.md, "Signed requests"): what a device key's RFC 9421
//! signature costs, and what it adds to a worker action end to end.
//!
//! - per operation, in-process, 20,000 times each: the worker signing a claim (the signature
//!   base, Ed25519, the three headers), the orchestrator reading and verifying it (parse the
//!   profile, rebuild the base, strict Ed25519 verification), and the body digest of a 64 KiB
//!   submit body;
//! - end to end at c=1: one `basis orchestrator` (the release binary, its own process, `SQLite`
//!   with `synchronous=FULL`), two workers, one legacy (bearer token) and one with a device key,
//!   each claiming and releasing its own tasks, alternately, `BASIS_BENCH_CLAIMS` (400) times:
//!   the claim's p50/p99 each way, and the difference (target: the added p50 at most 1 ms).
//!   A signed claim does what a bearer claim does plus the digest, the verification and one
//!   nonce insert in the same database.
//!
//! The gateway's own path is not signed per request: a worker's channel is authenticated once,
//! by signing its challenge at connect, so the gateway's added latency is that of
//! `cargo bench --bench gateway_overhead`, unchanged.
//!
//! Run with `cargo bench --bench signed_requests`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use basis::domain::{DeviceKey, Runtime, TokenSha256, WalletAddress, WorkerId, WorkerToken};
use basis::wire::RegisterRequest;
use basis::wire::signature::{self, LABEL};
use serde_json::{Value, json};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Mean microseconds per call of `f` over `n` calls.
fn per_call_us(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn micro() {
    const N: u32 = 20_000;
    let key = DeviceKey::generate();
    let public = key.public();
    let id = WorkerId::parse("gpu-1").unwrap_or_else(|_| unreachable!("a valid id"));
    let uri = "https://orch.example/api/tasks/task-0123456789abcdef0123456789abcdef/claim";
    let body = br#"{"worker_id":"gpu-1"}"#;
    let sign = per_call_us(N, || {
        let m = signature::sign_member(&key, LABEL, &id, "POST", uri, body, 1_000);
        std::hint::black_box(signature::headers(body, &[m]));
    });
    let h = signature::headers(
        body,
        &[signature::sign_member(
            &key, LABEL, &id, "POST", uri, body, 1_000,
        )],
    );
    let digest = signature::content_digest(body);
    let verify = per_call_us(N, || {
        let got = signature::received(LABEL, &h.signature_input, &h.signature);
        let ok = got.is_ok_and(|g| g.verifies(&public, "POST", uri, &digest));
        assert!(ok, "the signature must verify");
    });
    let big = vec![b'x'; 64 * 1024];
    let digest_64k = per_call_us(N / 10, || {
        std::hint::black_box(signature::content_digest(&big));
    });
    println!("per operation ({N} calls each, one core):");
    println!("  worker signs a claim (base + Ed25519 + headers):     {sign:>8.1} µs");
    println!("  orchestrator reads and verifies it:                  {verify:>8.1} µs");
    println!("  Content-Digest of a 64 KiB body (sha-256):           {digest_64k:>8.1} µs");
}

/// The orchestrator process, killed when dropped.
struct Orchestrator(Child);

impl Drop for Orchestrator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &std::path::Path) -> Result<(Orchestrator, String)> {
    let config = dir.join("orchestrator.toml");
    std::fs::write(
        &config,
        "db_synchronous = \"full\"\n[rate_limit]\nauth_failure_burst = 100000\n\
         auth_failures_per_minute = 100000\nregister_burst = 100000\nregister_per_minute = 100000\n",
    )?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_basis"))
        .args(["orchestrator", "--open", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("orchestrator.db"))
        .arg("--config")
        .arg(&config)
        .env("BASIS_HOME", dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let orchestrator = Orchestrator(child);
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    reader.read_line(&mut line)?;
    std::thread::spawn(move || for _ in reader.lines() {});
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or("no address announced")?
        .to_owned();
    Ok((orchestrator, addr.trim_end_matches('/').to_owned()))
}

/// How a request proves its worker.
enum Proof<'a> {
    Bearer(&'a WorkerToken),
    Signed(&'a WorkerId, &'a DeviceKey),
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    body: &Value,
    proof: Option<&Proof<'_>>,
) -> Result<(u16, Value)> {
    let bytes = serde_json::to_vec(body)?;
    let mut rb = http.post(url).header("content-type", "application/json");
    match proof {
        Some(Proof::Bearer(token)) => rb = rb.bearer_auth(token.expose_secret()),
        Some(Proof::Signed(id, key)) => {
            let m = signature::sign_member(key, LABEL, id, "POST", url, &bytes, now_s());
            let h = signature::headers(&bytes, &[m]);
            rb = rb
                .header("content-digest", h.content_digest)
                .header("signature-input", h.signature_input)
                .header("signature", h.signature);
        }
        None => {}
    }
    let resp = rb.body(bytes).send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await?))
}

fn registration(id: &str, credential: TokenSha256, key: Option<&DeviceKey>) -> Result<Value> {
    Ok(serde_json::to_value(RegisterRequest {
        worker_id: WorkerId::parse(id)?,
        wallet: WalletAddress::parse(WALLET)?,
        runtime: Runtime::Vllm,
        models: vec!["llama3.2:1b".into()],
        token_sha256: credential,
        public_key: key.map(DeviceKey::public),
        hardware: None,
        version: "0.1.0".into(),
        multi_task: true,
        labels: Vec::new(),
    })?)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len().max(1) - 1) as f64 * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

async fn end_to_end() -> Result {
    let claims = std::env::var("BASIS_BENCH_CLAIMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_usize);
    let dir = tempfile::tempdir()?;
    let (_orch, base) = spawn(dir.path())?;
    let http = basis::http::client_builder(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()?;
    let register = format!("{base}/api/workers/register");
    let token = WorkerToken::generate();
    let (status, body) = post(
        &http,
        &register,
        &registration("legacy", token.sha256(), None)?,
        None,
    )
    .await?;
    if status != 201 {
        return Err(format!("register legacy: {status} {body}").into());
    }
    let key = DeviceKey::generate();
    let keyed_id = WorkerId::parse("keyed")?;
    let keyed = Proof::Signed(&keyed_id, &key);
    let pk_sha = TokenSha256::sha256(key.public().as_bytes());
    let (status, body) = post(
        &http,
        &register,
        &registration("keyed", pk_sha, Some(&key))?,
        Some(&keyed),
    )
    .await?;
    if status != 201 {
        return Err(format!("register keyed: {status} {body}").into());
    }
    let legacy = Proof::Bearer(&token);
    let task = |i: usize| {
        json!({
            "description": format!("Task {i}: summarise the attached text."),
            "criteria": ["one sentence"],
            "reward": "1000",
            "deadline": now_s() + 3600,
            "output_format": "text",
        })
    };
    let (mut bearer_ms, mut signed_ms) = (Vec::new(), Vec::new());
    // Two warm-up rounds, then `claims` measured rounds, the two kinds alternating.
    for round in 0..claims + 2 {
        for (who, proof, sink) in [
            ("legacy", &legacy, &mut bearer_ms),
            ("keyed", &keyed, &mut signed_ms),
        ] {
            let (status, posted) =
                post(&http, &format!("{base}/api/tasks"), &task(round), None).await?;
            if status != 201 {
                return Err(format!("post: {status} {posted}").into());
            }
            let id = posted["task_id"].as_str().ok_or("no task_id")?;
            let body = json!({ "worker_id": who });
            let claim = format!("{base}/api/tasks/{id}/claim");
            let start = Instant::now();
            let (status, answer) = post(&http, &claim, &body, Some(proof)).await?;
            let ms = start.elapsed().as_secs_f64() * 1e3;
            if status != 200 {
                return Err(format!("claim as {who}: {status} {answer}").into());
            }
            if round >= 2 {
                sink.push(ms);
            }
            let release = format!("{base}/api/tasks/{id}/release");
            let (status, answer) = post(&http, &release, &body, Some(proof)).await?;
            if status != 200 {
                return Err(format!("release as {who}: {status} {answer}").into());
            }
        }
    }
    bearer_ms.sort_by(f64::total_cmp);
    signed_ms.sort_by(f64::total_cmp);
    let (b50, s50) = (pct(&bearer_ms, 0.5), pct(&signed_ms, 0.5));
    println!("claim at c=1 over HTTP ({claims} each, alternating; SQLite synchronous=FULL):");
    println!(
        "  bearer token (legacy):  p50 {b50:.3} ms  p99 {:.3} ms",
        pct(&bearer_ms, 0.99)
    );
    println!(
        "  device-key signature:   p50 {s50:.3} ms  p99 {:.3} ms",
        pct(&signed_ms, 0.99)
    );
    println!("  added p50: {:+.3} ms (target ≤ 1 ms)", s50 - b50);
    Ok(())
}

fn main() -> Result {
    micro();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(end_to_end())
}
