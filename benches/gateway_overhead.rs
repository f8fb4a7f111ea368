//! Gateway overhead: what the orchestrator → worker path adds to an OpenAI-compatible runtime,
//! measured in one run against one upstream, called directly and through the gateway:
//!
//! - non-streamed latency at concurrency 1, p50 and p99 (target: added p50 ≤ 1 ms);
//! - non-streamed throughput at concurrency 8, against the worker at its default capacity
//!   (any error answer fails the run; the old "≥ 25% of direct" target is retired);
//! - streamed time to first byte at concurrency 1 (target: added p50 ≤ 1 ms);
//! - non-streamed throughput and call time at concurrency 64 through the gateway: twice the
//!   worker's default capacity (vllm: 32), so half the calls wait in the orchestrator's queue;
//!   any error answer fails the run.
//!
//! The upstream is an in-bench axum server on 127.0.0.1:0 with a fixed answer (JSON and SSE)
//! that stands in for vLLM, which cannot run on a machine without a GPU; so the figures are
//! the gateway's own cost, not a model's. The path under test is all real processes of the
//! release binary: `basis orchestrator` (SQLite in a temp dir, a client key: the production
//! path, one key lookup and one fsync'd receipt per job) and `basis worker` with the vllm
//! runtime pointed at the upstream. Direct and gateway calls alternate in blocks so both see
//! the same machine load.
//!
//! Run with `cargo bench --bench gateway_overhead`. Overrides: `BASIS_GATEWAY_REQUESTS` per
//! latency series (1000), `BASIS_GATEWAY_SECONDS` per throughput series (4),
//! `BASIS_GATEWAY_PIECE_DELAY_US` (0: the upstream answers at once; the targets are judged
//! there, the worst case for the throughput ratio), `BASIS_GATEWAY_DB_SYNCHRONOUS` (`full`,
//! the default; `normal`), `BASIS_GATEWAY_PRICED=1` (prices the model in `[pricing]`, so every
//! job is metered and writes a credit, the worker's pending rewards and the key's charged
//! amount with its receipt). Without `--bench` (as `cargo test
//! --benches` runs it) it only checks that every path answers.
//!
//! Besides the table it prints the CPU time each process spends per call and the fsync
//! latency of the disk under the database: a non-streamed gateway answer waits for one fsync
//! (its receipt is committed with `synchronous=FULL` first), so on a busy disk that dominates.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use procs::{Proc, announced, bin, percentile, vllm_worker};
use serde_json::{Value, json};
use upstream::{PIECES, answer, piece_delay};

#[path = "gateway_overhead/procs.rs"]
mod procs;
#[path = "gateway_overhead/upstream.rs"]
mod upstream;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const MODEL: &str = "bench-model";
const WORKER: &str = "bench-gpu-1";
const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const CONCURRENCY: usize = 8;
/// The concurrency of the series through the wait queue: twice the vllm worker's default
/// capacity (32), so half the calls wait for a free slot.
const QUEUED_CONCURRENCY: usize = 64;
/// Requests per direct/gateway block in the latency series.
const BLOCK: usize = 50;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `BASIS_GATEWAY_DB_SYNCHRONOUS` (`full`, the orchestrator's default): the orchestrator's
/// `db_synchronous`; `normal` drops the fsync per commit (durable through kill -9 only).
fn db_synchronous() -> String {
    std::env::var("BASIS_GATEWAY_DB_SYNCHRONOUS").unwrap_or_else(|_| "full".into())
}

/// `BASIS_GATEWAY_PRICED=1`: `[pricing]` for the model, and a tokens-per-second ceiling the
/// instant upstream stays under, so every job is paid (a credit row per job).
fn pricing() -> String {
    if std::env::var("BASIS_GATEWAY_PRICED").is_ok_and(|v| v == "1") {
        format!(
            "[tasks]\nmax_tokens_per_s = 1000000000000\n[pricing.models.\"{MODEL}\"]\n\
             prompt_per_million = \"100000\"\ncompletion_per_million = \"300000000\"\n"
        )
    } else {
        String::new()
    }
}

// ---- the processes under test ----

/// A child process, killed when dropped (also on an early error return).
/// Creates a client key in a fresh database; starts the orchestrator on it.
fn orchestrator(dir: &Path) -> Result<(Proc, String, String)> {
    let db = dir.join("orchestrator.db");
    let config = dir.join("orchestrator.toml");
    std::fs::write(
        &config,
        format!(
            "heartbeat_interval_s = 10\nonline_window_s = 30\ndb_synchronous = \"{}\"\n{}",
            db_synchronous(),
            pricing()
        ),
    )?;
    let out = Command::new(bin())
        .args(["orchestrator", "keys", "create", "--role", "client", "--db"])
        .arg(&db)
        .env("BASIS_HOME", dir)
        .output()?;
    let key = String::from_utf8(out.stdout)?.trim().to_owned();
    if !out.status.success() || key.is_empty() {
        return Err("`basis orchestrator keys create` failed".into());
    }
    let mut child = Command::new(bin())
        .args(["orchestrator", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .arg("--config")
        .arg(&config)
        .env("BASIS_HOME", dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("orchestrator.log"))?)
        .spawn()?;
    let url = announced(&mut child)?;
    Ok((Proc(child), url, key))
}

async fn wait_online(http: &reqwest::Client, orchestrator: &str) -> Result {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let online = async {
            let v: Value = http
                .get(format!("{orchestrator}/api/workers/{WORKER}"))
                .send()
                .await?
                .json()
                .await?;
            Ok::<_, reqwest::Error>(v["online"] == true)
        };
        if online.await.unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("the worker did not come online within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- the client side ----

/// One way to reach the model: directly, or through the gateway with a client key.
#[derive(Clone)]
struct Target {
    url: String,
    key: Option<String>,
}

impl Target {
    fn gateway(&self) -> bool {
        self.key.is_some()
    }
}

/// Timings of one call, in µs: to the first body bytes, and to the end of the body.
struct Call {
    first_us: u32,
    total_us: u32,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

async fn call(http: &reqwest::Client, target: &Target, stream: bool) -> Result<Call> {
    let body = json!({"model": MODEL, "stream": stream,
        "messages": [{"role": "user", "content": "Say hello."}]});
    let mut req = http.post(&target.url).json(&body);
    if let Some(key) = &target.key {
        req = req.bearer_auth(key);
    }
    let started = Instant::now();
    let mut resp = req.send().await?;
    let status = resp.status();
    let receipt = resp.headers().contains_key("x-basis-receipt-hash");
    let mut bytes = Vec::new();
    let mut first = None;
    while let Some(chunk) = resp.chunk().await? {
        first.get_or_insert_with(|| started.elapsed());
        bytes.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    let text = String::from_utf8_lossy(&bytes);
    if !status.is_success() {
        return Err(format!("{} answered {status}: {text}", target.url).into());
    }
    let complete = if stream {
        text.contains("[DONE]") && (!target.gateway() || text.contains("basis_receipt_hash"))
    } else {
        text.contains(&answer()) && (!target.gateway() || receipt)
    };
    if !complete {
        return Err(format!("an incomplete answer from {}: {text}", target.url).into());
    }
    Ok(Call {
        first_us: micros(first.unwrap_or(total)),
        total_us: micros(total),
    })
}

/// `n` sequential calls to each target, alternating in blocks; returns the samples per target
/// (time to first byte for streams, to the end of the body otherwise).
async fn latency(
    http: &reqwest::Client,
    targets: &[&Target; 2],
    stream: bool,
    n: usize,
) -> Result<[Vec<u32>; 2]> {
    let mut samples = [Vec::with_capacity(n), Vec::with_capacity(n)];
    while samples[1].len() < n {
        for (i, target) in targets.iter().enumerate() {
            for _ in 0..BLOCK.min(n - samples[i].len()) {
                let c = call(http, target, stream).await?;
                samples[i].push(if stream { c.first_us } else { c.total_us });
            }
        }
    }
    for s in &mut samples {
        s.sort_unstable();
    }
    Ok(samples)
}

/// CPU time (user + system) a process has used so far, in µs; 0 when unreadable.
fn cpu_us(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // After the command's closing parenthesis: field 3 (state) onwards; utime and stime are
    // fields 14 and 15, in ticks of USER_HZ (100 on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) * 10_000
}

/// The processes whose CPU time is shared out per gateway request.
struct Pids {
    orchestrator: String,
    worker: String,
}

impl Pids {
    /// CPU used so far by the orchestrator, the worker and this process (client + upstream).
    fn cpu(&self) -> [u64; 3] {
        [
            cpu_us(&self.orchestrator),
            cpu_us(&self.worker),
            cpu_us("self"),
        ]
    }
}

/// Completed non-streamed calls per second with `clients` concurrent clients for `secs`, how
/// many calls completed, and each call's time (µs, sorted; queue wait included). Any error
/// answer fails the run.
async fn throughput(
    http: &reqwest::Client,
    target: &Target,
    secs: f64,
    clients: usize,
) -> Result<(f64, u64, Vec<u32>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (http, target) = (http.clone(), target.clone());
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        tasks.spawn(async move {
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                times.push(call(&http, &target, false).await?.total_us);
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(times)
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut times = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        times.extend(joined??);
    }
    times.sort_unstable();
    let done = done.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    Ok((done as f64 / started.elapsed().as_secs_f64(), done, times))
}

/// fsync latency of the filesystem under `dir` (where the orchestrator's database is), µs,
/// sorted: each gateway job waits for one (its receipt is committed with `synchronous=FULL`).
fn fsync_probe(dir: &Path, n: usize) -> Result<Vec<u32>> {
    use std::io::Write as _;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        file.write_all(&[0_u8; 512])?;
        let started = Instant::now();
        file.sync_all()?;
        samples.push(micros(started.elapsed()));
    }
    std::fs::remove_file(&path)?;
    samples.sort_unstable();
    Ok(samples)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Everything one run measured.
struct Figures {
    /// Sorted samples in µs, [direct, gateway].
    plain: [Vec<u32>; 2],
    ttfb: [Vec<u32>; 2],
    rates: [f64; 2],
    /// CPU µs per call at concurrency 8: [orchestrator, worker, bench] for each target.
    cpu: [[u64; 3]; 2],
    fsync: Vec<u32>,
    /// Through the gateway at `QUEUED_CONCURRENCY`: calls/s and each call's time, sorted.
    queued: (f64, Vec<u32>),
}

async fn measure(
    http: &reqwest::Client,
    targets: &[&Target; 2],
    pids: &Pids,
    dir: &Path,
    (n, secs): (usize, f64),
) -> Result<Figures> {
    // Warm up every path (connections, allocators, SQLite pages).
    latency(http, targets, false, n.min(200)).await?;
    latency(http, targets, true, n.min(200)).await?;
    let fsync = fsync_probe(dir, n.min(200))?;
    let plain = latency(http, targets, false, n).await?;
    let mut rates = [0.0; 2];
    let mut cpu = [[0_u64; 3]; 2];
    let mut calls = [0_u64; 2];
    for _ in 0..2 {
        for (i, target) in targets.iter().enumerate() {
            let before = pids.cpu();
            let (rate, done, _) = throughput(http, target, secs / 2.0, CONCURRENCY).await?;
            let after = pids.cpu();
            rates[i] += rate / 2.0;
            calls[i] += done;
            for (c, (a, b)) in cpu[i].iter_mut().zip(after.iter().zip(before)) {
                *c += a.saturating_sub(b);
            }
        }
    }
    for (per, count) in cpu.iter_mut().zip(calls) {
        for c in per.iter_mut() {
            *c /= count.max(1);
        }
    }
    let ttfb = latency(http, targets, true, n).await?;
    let (rate, _, times) = throughput(http, targets[1], secs, QUEUED_CONCURRENCY).await?;
    Ok(Figures {
        plain,
        ttfb,
        rates,
        cpu,
        fsync,
        queued: (rate, times),
    })
}

/// One latency row: direct, gateway, added, and the verdict when `target_ms` is given.
fn row(what: &str, s: &[Vec<u32>; 2], q: f64, target_ms: Option<f64>) {
    let (d, g) = (percentile(&s[0], q), percentile(&s[1], q));
    let (target, verdict) = target_ms.map_or((String::new(), ""), |t| {
        (format!("added ≤ {t} ms"), verdict(g - d <= t))
    });
    println!(
        "| {what}, p{:.0} | {d:.3} ms | {g:.3} ms | {:+.3} ms | {target} | {verdict} |",
        q * 100.0,
        g - d
    );
}

fn report(f: &Figures, n: usize, secs: f64, peak_kib: u64) {
    let delay = piece_delay();
    let pace = if delay.is_zero() {
        "at once".to_owned()
    } else {
        format!("{} µs per piece", delay.as_micros())
    };
    println!(
        "gateway overhead: upstream = in-bench OpenAI-compatible double standing in for vLLM \
         (fixed {}-piece answer, {pace}; no model)",
        PIECES.len()
    );
    println!(
        "binary {}; {} cores; load average {} at the end; {n} calls per latency series, \
         {secs} s per throughput series; orchestrator db_synchronous = {}\n",
        bin(),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        load_average(),
        db_synchronous()
    );
    println!("| measure | direct | gateway | added | target | verdict |");
    println!("|---|---|---|---|---|---|");
    row("non-stream latency, c=1", &f.plain, 0.5, Some(1.0));
    row("non-stream latency, c=1", &f.plain, 0.99, None);
    let share = f.rates[1] / f.rates[0] * 100.0;
    // The old "≥ 25% of direct" target is retired: the direct path is an in-process upstream
    // answering at once, so the ratio measures the bench more than the gateway.
    println!(
        "| non-stream throughput, c={CONCURRENCY} | {:.0} req/s | {:.0} req/s | {share:.1}% of \
         direct | 0 errors | PASS (an error fails the run) |",
        f.rates[0], f.rates[1],
    );
    row("stream time to first byte, c=1", &f.ttfb, 0.5, Some(1.0));
    row("stream time to first byte, c=1", &f.ttfb, 0.99, None);
    println!(
        "| non-stream through the queue, c={QUEUED_CONCURRENCY} (worker at its default capacity) | | \
         {:.0} req/s; p50 {:.3} ms, p99 {:.3} ms (queue wait included) | | 0 errors | PASS (an error fails the run) |",
        f.queued.0,
        percentile(&f.queued.1, 0.5),
        percentile(&f.queued.1, 0.99)
    );
    let [direct, gateway] = f.cpu;
    println!(
        "\nCPU per call at c={CONCURRENCY} (user + system): direct: bench (client + upstream) \
         {} µs; gateway: orchestrator {} µs, worker {} µs, bench {} µs",
        direct[2], gateway[0], gateway[1], gateway[2]
    );
    println!(
        "fsync where the database lives (one per gateway job, before its answer): p50 {:.3} ms, \
         p99 {:.3} ms",
        percentile(&f.fsync, 0.5),
        percentile(&f.fsync, 0.99)
    );
    #[allow(clippy::cast_precision_loss)]
    let hwm_mib = peak_kib as f64 / 1024.0;
    println!("orchestrator peak RSS (VmHWM): {hwm_mib:.1} MiB");
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
    let upstream = upstream::serve().await?;
    let (orch, orch_url, key) = orchestrator(dir.path())?;
    let worker = vllm_worker(dir.path(), &orch_url, &upstream).await?;
    let pids = Pids {
        orchestrator: orch.0.id().to_string(),
        worker: worker.0.id().to_string(),
    };
    let http = basis::http::client_builder(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()?;
    let with_logs = |e: Box<dyn std::error::Error + Send + Sync>| {
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
        let (o, w) = (read("orchestrator.log"), read("worker.log"));
        format!("{e}\norchestrator log:\n{o}\nworker log:\n{w}")
    };
    wait_online(&http, &orch_url).await.map_err(with_logs)?;
    let direct = Target {
        url: format!("{upstream}/v1/chat/completions"),
        key: None,
    };
    let gateway = Target {
        url: format!("{orch_url}/v1/chat/completions"),
        key: Some(key),
    };
    let figures = measure(&http, &[&direct, &gateway], &pids, dir.path(), (n, secs))
        .await
        .map_err(with_logs)?;
    if measuring {
        let peak_kib = std::fs::read_to_string(format!("/proc/{}/status", pids.orchestrator))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .unwrap_or(0);
        report(&figures, n, secs, peak_kib);
        if !pricing().is_empty() {
            let rewards: Value = http
                .get(format!("{orch_url}/api/workers/{WORKER}/rewards"))
                .send()
                .await?
                .json()
                .await?;
            println!(
                "metered: the worker accrued {} atomic units (every job paid: a credit per job)",
                rewards["accrued"]
            );
        }
    } else {
        println!("gateway_overhead: every path answered (smoke run; use `cargo bench`)");
    }
    Ok(())
}

fn main() -> Result {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then it only checks
    // that every path answers, without measuring a debug build.
    let measure = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(measure))
}
