//! Replica forwarding: what a gateway request pays when the replica it reaches has no worker
//! for its model and forwards it to the replica that has one, against the same request sent
//! to that replica directly.
//!
//! Two `basis orchestrator` replicas (the release binary, `--open`) share one fresh PostgreSQL
//! database (`BASIS_TEST_POSTGRES` or postgres@127.0.0.1:5432); one `basis worker` (vllm
//! runtime) is connected to replica B and answers from the gateway bench's in-bench upstream
//! (`gateway_overhead/upstream.rs`, a stand-in for vLLM, which needs a GPU). Calls alternate
//! in blocks between B (direct) and A (forwarding to B), so both see the same load:
//!
//! - non-streamed latency at concurrency 1, p50 and p99;
//! - streamed time to first byte at concurrency 1, p50 and p99;
//! - non-streamed throughput at concurrency 8.
//!
//! Run with `cargo bench --bench replica_forwarding`. Overrides: `BASIS_GATEWAY_REQUESTS` per
//! latency series (1000), `BASIS_GATEWAY_SECONDS` per throughput series (4). Without `--bench`
//! it only checks that both paths answer.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use basis::orchestrator::store::postgres::testdb::TestDb;
use procs::{Proc, announced, bin, percentile, vllm_worker};
use serde_json::{Value, json};
use upstream::answer;

#[path = "gateway_overhead/procs.rs"]
mod procs;
#[path = "gateway_overhead/upstream.rs"]
mod upstream;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const MODEL: &str = "bench-model";
const WORKER: &str = "bench-gpu-1";
const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const CONCURRENCY: usize = 8;
const BLOCK: usize = 50;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Replica `id` on `database`; returns it and its URL.
fn replica(dir: &Path, id: &str, database: &str, secret: &str) -> Result<(Proc, String)> {
    let home = dir.join(id);
    std::fs::create_dir_all(&home)?;
    let config = home.join("orchestrator.toml");
    std::fs::write(&config, "heartbeat_interval_s = 2\nonline_window_s = 6\n")?;
    let mut child = Command::new(bin())
        .args([
            "orchestrator",
            "--open",
            "--listen",
            "127.0.0.1:0",
            "--config",
        ])
        .arg(&config)
        .env("BASIS_HOME", &home)
        .env("BASIS_DATABASE_URL", database)
        .env("BASIS_REPLICA_ID", id)
        .env("BASIS_REPLICA_SECRET", secret)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join(format!("{id}.log")))?)
        .spawn()?;
    let url = announced(&mut child)?;
    Ok((Proc(child), url))
}

/// Waits until `url`'s `/v1/models` lists the model (on A: once B's presence flush ran).
async fn wait_model(http: &reqwest::Client, url: &str) -> Result {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let listed = async {
            let v: Value = http
                .get(format!("{url}/v1/models"))
                .send()
                .await?
                .json()
                .await?;
            Ok::<_, reqwest::Error>(
                v["data"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|m| m["id"] == MODEL)),
            )
        };
        if listed.await.unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{url} did not list the model within 60 s").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One call: µs to the first body bytes and to the end; checks the answer is whole and which
/// replica served it.
async fn call(
    http: &reqwest::Client,
    url: &str,
    stream: bool,
    forwarded: bool,
) -> Result<(u32, u32)> {
    let body = json!({"model": MODEL, "stream": stream,
        "messages": [{"role": "user", "content": "Say hello."}]});
    let started = Instant::now();
    let mut resp = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let via = resp.headers().contains_key("x-basis-replica-id");
    let mut bytes = Vec::new();
    let mut first = None;
    while let Some(chunk) = resp.chunk().await? {
        first.get_or_insert_with(|| started.elapsed());
        bytes.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    let text = String::from_utf8_lossy(&bytes);
    if !status.is_success() || via != forwarded {
        return Err(format!("{url} answered {status} (forwarded: {via}): {text}").into());
    }
    let whole = if stream {
        text.contains("[DONE]")
    } else {
        text.contains(&answer())
    };
    if !whole {
        return Err(format!("an incomplete answer from {url}: {text}").into());
    }
    let us = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
    Ok((us(first.unwrap_or(total)), us(total)))
}

/// `n` sequential calls to each of [direct, forwarding], alternating in blocks; sorted samples.
async fn latency(
    http: &reqwest::Client,
    urls: [&str; 2],
    stream: bool,
    n: usize,
) -> Result<[Vec<u32>; 2]> {
    let mut samples = [Vec::with_capacity(n), Vec::with_capacity(n)];
    while samples[1].len() < n {
        for (i, url) in urls.iter().enumerate() {
            for _ in 0..BLOCK.min(n - samples[i].len()) {
                let (first, total) = call(http, url, stream, i == 1).await?;
                samples[i].push(if stream { first } else { total });
            }
        }
    }
    for s in &mut samples {
        s.sort_unstable();
    }
    Ok(samples)
}

async fn throughput(http: &reqwest::Client, url: &str, forwarded: bool, secs: f64) -> Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (http, url) = (http.clone(), url.to_owned());
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        tasks.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                call(&http, &url, false, forwarded).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn row(what: &str, s: &[Vec<u32>; 2], q: f64) {
    let (d, f) = (percentile(&s[0], q), percentile(&s[1], q));
    println!(
        "| {what}, p{:.0} | {d:.3} ms | {f:.3} ms | {:+.3} ms |",
        q * 100.0,
        f - d
    );
}

async fn run(measuring: bool) -> Result {
    let (n, secs) = if measuring {
        #[allow(clippy::cast_precision_loss)]
        let secs = env_usize("BASIS_GATEWAY_SECONDS", 4) as f64;
        (env_usize("BASIS_GATEWAY_REQUESTS", 1000), secs)
    } else {
        (3, 0.2)
    };
    let dir = tempfile::tempdir()?;
    let db = TestDb::create().await;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let upstream = upstream::serve().await?;
    let (_a, a_url) = replica(dir.path(), "r-a", &db.url, &secret)?;
    let (_b, b_url) = replica(dir.path(), "r-b", &db.url, &secret)?;
    let _worker = vllm_worker(dir.path(), &b_url, &upstream).await?;
    let http = basis::http::client_builder(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()?;
    let with_logs = |e: Box<dyn std::error::Error + Send + Sync>| {
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
        format!(
            "{e}\nr-a log:\n{}\nr-b log:\n{}\nworker log:\n{}",
            read("r-a.log"),
            read("r-b.log"),
            read("worker.log")
        )
    };
    wait_model(&http, &b_url).await.map_err(with_logs)?;
    wait_model(&http, &a_url).await.map_err(with_logs)?;
    let urls = [b_url.as_str(), a_url.as_str()];
    // Warm up both paths (connections, prepared statements, the route cache).
    latency(&http, urls, false, n.min(200))
        .await
        .map_err(with_logs)?;
    latency(&http, urls, true, n.min(200))
        .await
        .map_err(with_logs)?;
    let plain = latency(&http, urls, false, n).await.map_err(with_logs)?;
    let ttfb = latency(&http, urls, true, n).await.map_err(with_logs)?;
    let mut rates = [0.0; 2];
    for _ in 0..2 {
        for (i, url) in urls.iter().enumerate() {
            rates[i] += throughput(&http, url, i == 1, secs / 2.0)
                .await
                .map_err(with_logs)?
                / 2.0;
        }
    }
    if !measuring {
        println!("replica_forwarding: both paths answered (smoke run; use `cargo bench`)");
        return Ok(());
    }
    println!(
        "replica forwarding: two replicas on one PostgreSQL database, the worker on B; \
         upstream = the gateway bench's in-bench stand-in for vLLM (no model)"
    );
    println!(
        "{} cores; {n} calls per latency series, {secs} s per throughput series\n",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!("| measure | direct (B) | forwarded (A → B) | added |");
    println!("|---|---|---|---|");
    row("non-stream latency, c=1", &plain, 0.5);
    row("non-stream latency, c=1", &plain, 0.99);
    row("stream time to first byte, c=1", &ttfb, 0.5);
    row("stream time to first byte, c=1", &ttfb, 0.99);
    println!(
        "| non-stream throughput, c={CONCURRENCY} | {:.0} req/s | {:.0} req/s | {:.1}% of direct |",
        rates[0],
        rates[1],
        rates[1] / rates[0] * 100.0
    );
    Ok(())
}

fn main() -> Result {
    let measure = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(measure))
}
