//! Scale: one `basis orchestrator` (the real release binary, its own process, `SQLite` in a temp
//! dir) holding 10,000 connected workers that heartbeat every 10 s (1,000 heartbeats a second,
//! staggered evenly), measured from outside:
//!
//! - peak RSS of the orchestrator process (`VmHWM`; target ≤ 512 MiB);
//! - heartbeat handling p99 (target ≤ 5 ms), as a round trip: each heartbeat is followed on the
//!   same connection by a WebSocket ping, whose pong the orchestrator can only write after it
//!   has read and handled the heartbeat (frames are handled in order);
//! - routing still correct under that load: three concurrent requests for a model three
//!   workers serve land on three different workers (least busy first, capacity 1 each), a
//!   fourth gets 503; and the gateway's round trip to a model 500 workers serve.
//!
//! Run with `cargo bench --bench orchestrator_scale`. Both processes need about 10,100 open
//! files: the bench raises its soft `RLIMIT_NOFILE` to the hard limit (and the orchestrator
//! does the same); if the hard limit is lower, run `ulimit -n 20000` first. Overrides:
//! `BASIS_SCALE_WORKERS` (10000), `BASIS_SCALE_SECONDS` of steady state (30),
//! `BASIS_SCALE_REPLICAS` (0: one orchestrator on `SQLite`; N: N replicas sharing one fresh
//! PostgreSQL database, worker `i` connected to replica `i % N`, RSS reported per replica;
//! the routing checks then go to replica 0, which forwards to the others what its own
//! workers cannot take).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use basis::domain::{JobId, Runtime, Usage, WorkerId, WorkerToken};
use basis::wire::{JobTimings, OrchestratorMessage, WorkerMessage};
use futures::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const INTERVAL: Duration = Duration::from_secs(10);
const MODELS: usize = 20;
const PROBE: &str = "probe";
const PROBES: usize = 3;
const CONNECTING_AT_ONCE: usize = 128;
const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn token(i: usize) -> WorkerToken {
    WorkerToken::parse(&format!("{:064x}", i + 1)).unwrap_or_else(|_| WorkerToken::generate())
}

fn worker_id(i: usize) -> String {
    format!("w-{i:05}")
}

fn models(i: usize) -> Vec<String> {
    let mut m = vec![format!("m{}", i % MODELS)];
    if i < PROBES {
        m.push(PROBE.to_owned());
    }
    m
}

/// Creates the schema through the store, then inserts the workers in one transaction.
fn populate(db: &std::path::Path, n: usize) -> Result {
    drop(basis::orchestrator::store::SqliteStore::open(db)?);
    let mut conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO workers (worker_id, wallet, runtime, models, token_sha256, version, \
             registered_at, updated_at) VALUES (?1, ?2, 'echo', ?3, ?4, '0.1.0', 1, 1)",
        )?;
        for i in 0..n {
            let models = serde_json::to_string(&models(i))?;
            let hash = token(i).sha256();
            stmt.execute(rusqlite::params![
                worker_id(i),
                WALLET,
                models,
                &hash.as_bytes()[..]
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The same rows on PostgreSQL (schema by the store's own migrations), for replicas.
async fn populate_pg(url: &str, n: usize) -> Result {
    drop(basis::orchestrator::store::PgStore::connect(url, 1).await?);
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare(
            "INSERT INTO workers (worker_id, wallet, runtime, models, token_sha256, version, \
             registered_at, updated_at) VALUES ($1, $2, 'echo', $3, $4, '0.1.0', 1, 1)",
        )
        .await?;
    for i in 0..n {
        let models = serde_json::to_string(&models(i))?;
        let hash = token(i).sha256();
        tx.execute(
            &stmt,
            &[&worker_id(i), &WALLET, &models, &&hash.as_bytes()[..]],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Where the orchestrators keep their state: one `SQLite` file, or a shared database.
enum Backing<'a> {
    Sqlite,
    Replica {
        url: &'a str,
        id: String,
        secret: &'a str,
    },
}

fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
        println!("open-file limit: {soft}");
    }
}

fn spawn(dir: &std::path::Path, backing: &Backing<'_>) -> Result<(Child, String)> {
    let config = dir.join("orchestrator.toml");
    std::fs::write(
        &config,
        // All 10,000 simulated workers connect from 127.0.0.1: no per-address cap.
        // No wait queue: the routing check expects the fourth probe refused at once.
        "heartbeat_interval_s = 10\nonline_window_s = 30\nqueue_timeout_ms = 0\n[rate_limit]\nauth_failure_burst = 100000\nauth_failures_per_minute = 100000\n[http]\nmax_connections_per_ip = 0\n",
    )?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_basis"));
    cmd.args(["orchestrator", "--open", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("orchestrator.db"))
        .arg("--config")
        .arg(&config)
        .env("BASIS_HOME", dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Backing::Replica { url, id, secret } = backing {
        cmd.env("BASIS_DATABASE_URL", url)
            .env("BASIS_REPLICA_ID", id)
            .env("BASIS_REPLICA_SECRET", secret);
    }
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    let mut reader = BufReader::new(stdout);
    reader.read_line(&mut line)?;
    std::thread::spawn(move || for _ in reader.lines() {});
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .ok_or("no address announced")?
        .to_owned();
    Ok((child, addr))
}

/// An orchestrator process, killed when dropped (also on an early error return).
struct Orchestrator(Child);

impl Drop for Orchestrator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Shared {
    rtts_us: Mutex<Vec<u32>>,
    measuring: std::sync::atomic::AtomicBool,
    connected: std::sync::atomic::AtomicUsize,
}

/// One simulated worker: hello, then a heartbeat (+ ping) every INTERVAL from `offset`,
/// answering jobs (probe jobs after 300 ms, so concurrent probes overlap).
async fn worker(
    addr: String,
    i: usize,
    offset: Duration,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
) -> Result {
    let permit = gate.acquire_owned().await?;
    let mut request = format!("ws://{addr}/api/workers/connect").into_client_request()?;
    let bearer = format!("Bearer {}", token(i).expose_secret());
    request
        .headers_mut()
        .insert("authorization", HeaderValue::from_str(&bearer)?);
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let (mut tx, mut rx) = ws.split();
    let hello = WorkerMessage::Hello {
        protocol: 1,
        worker_id: WorkerId::parse(&worker_id(i))?,
        version: "0.1.0".into(),
        runtime: Runtime::Echo,
        models: models(i),
        capacity: 1,
        proof: None,
    };
    tx.send(Message::text(serde_json::to_string(&hello)?))
        .await?;
    drop(permit);
    let (jobs_tx, mut jobs) = tokio::sync::mpsc::unbounded_channel::<(JobId, bool)>();
    let mut sent_at: Option<(u64, Instant)> = None;
    let mut seq = 0_u64;
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + offset, INTERVAL);
    let mut welcomed = false;
    loop {
        tokio::select! {
            frame = rx.next() => match frame {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<OrchestratorMessage>(t.as_str())? {
                    OrchestratorMessage::Welcome { .. } if !welcomed => {
                        welcomed = true;
                        shared.connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    OrchestratorMessage::Job { job_id, model, .. } => {
                        let probe = model == PROBE;
                        let jobs_tx = jobs_tx.clone();
                        tokio::spawn(async move {
                            if probe {
                                tokio::time::sleep(Duration::from_millis(300)).await;
                            }
                            let _ = jobs_tx.send((job_id, probe));
                        });
                    }
                    _ => {}
                },
                Some(Ok(Message::Pong(payload))) => {
                    if let Some((s, at)) = sent_at.take()
                        && payload.as_ref() == s.to_be_bytes()
                        && shared.measuring.load(std::sync::atomic::Ordering::Relaxed)
                    {
                        let us = u32::try_from(at.elapsed().as_micros()).unwrap_or(u32::MAX);
                        shared.rtts_us.lock().map_err(|_| "poisoned")?.push(us);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err("closed by the orchestrator".into()),
            },
            Some((job_id, _)) = jobs.recv() => {
                let done = WorkerMessage::JobDone {
                    job_id,
                    output: Some(format!("answer from {}", worker_id(i))),
                    usage: Usage { prompt_tokens: 1, completion_tokens: 3 },
                    timings: JobTimings::default(),
                    simulated: true,
                };
                tx.send(Message::text(serde_json::to_string(&done)?)).await?;
            }
            _ = beat.tick() => {
                seq += 1;
                let hb = WorkerMessage::Heartbeat { seq, in_flight: 0, ready: true };
                let at = Instant::now();
                tx.send(Message::text(serde_json::to_string(&hb)?)).await?;
                tx.send(Message::Ping(seq.to_be_bytes().to_vec().into())).await?;
                sent_at = Some((seq, at));
            }
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

async fn chat(http: &reqwest::Client, addr: &str, model: &str) -> Result<(u16, String)> {
    let resp = http
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await?;
    let worker = resp
        .headers()
        .get("x-basis-worker-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok((resp.status().as_u16(), worker))
}

#[allow(clippy::too_many_lines)]
async fn run() -> Result {
    let n = env_usize("BASIS_SCALE_WORKERS", 10_000);
    let steady = Duration::from_secs(u64::try_from(env_usize("BASIS_SCALE_SECONDS", 30))?);
    raise_nofile();
    let replicas = env_usize("BASIS_SCALE_REPLICAS", 0);
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    let pg = if replicas > 0 {
        let db = basis::orchestrator::store::postgres::testdb::TestDb::create().await;
        populate_pg(&db.url, n).await?;
        Some(db)
    } else {
        populate(&dir.path().join("orchestrator.db"), n)?;
        None
    };
    println!(
        "registered {n} workers in the database in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let secret = format!("{:064x}", rand::random::<u128>());
    let mut orchestrators = Vec::new();
    let mut addrs = Vec::new();
    for r in 0..replicas.max(1) {
        let home = dir.path().join(format!("replica-{r}"));
        std::fs::create_dir_all(&home)?;
        let backing = match &pg {
            Some(db) => Backing::Replica {
                url: &db.url,
                id: format!("r-{r}"),
                secret: &secret,
            },
            None => Backing::Sqlite,
        };
        let (child, addr) = spawn(if pg.is_some() { &home } else { dir.path() }, &backing)?;
        orchestrators.push(Orchestrator(child));
        addrs.push(addr);
    }
    let pids: Vec<u32> = orchestrators.iter().map(|o| o.0.id()).collect();
    let addr = addrs[0].clone();
    let shared = Arc::new(Shared::default());
    let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        // Heartbeats spread evenly over the interval: n / 10 per second.
        let offset = INTERVAL * u32::try_from(i).unwrap_or(0) / u32::try_from(n).unwrap_or(1);
        tasks.spawn(worker(
            addrs[i % addrs.len()].clone(),
            i,
            offset,
            Arc::clone(&shared),
            Arc::clone(&gate),
        ));
    }
    while shared.connected.load(std::sync::atomic::Ordering::Relaxed) < n {
        if let Some(Ok(Err(e))) = tasks.try_join_next() {
            return Err(format!("a worker failed while connecting: {e}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if t.elapsed() > Duration::from_mins(5) {
            return Err("workers did not all connect within 300 s".into());
        }
    }
    let rss: Vec<u64> = pids
        .iter()
        .map(|p| status_kib(*p, "VmRSS:") / 1024)
        .collect();
    println!(
        "{n} workers connected in {:.1} s; orchestrator RSS {rss:?} MiB",
        t.elapsed().as_secs_f64()
    );
    // Let one full interval pass so every worker is heartbeating, then measure.
    tokio::time::sleep(INTERVAL).await;
    shared
        .measuring
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let t = Instant::now();
    while t.elapsed() < steady {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some(Ok(Err(e))) = tasks.try_join_next() {
            return Err(format!("a worker failed: {e}").into());
        }
    }
    shared
        .measuring
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let mut rtts = std::mem::take(&mut *shared.rtts_us.lock().map_err(|_| "poisoned")?);
    rtts.sort_unstable();

    // Routing under load.
    let http = basis::http::client_builder(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()?;
    let models: serde_json::Value = http
        .get(format!("http://{addr}/v1/models"))
        .send()
        .await?
        .json()
        .await?;
    let model_count = models["data"].as_array().map_or(0, Vec::len);
    let probes: Vec<_> = (0..PROBES)
        .map(|_| {
            let (http, addr) = (http.clone(), addr.clone());
            tokio::spawn(async move { chat(&http, &addr, PROBE).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (extra, _) = chat(&http, &addr, PROBE).await?;
    let mut served = Vec::new();
    for p in probes {
        let (status, w) = p.await??;
        if status == 200 {
            served.push(w);
        }
    }
    served.sort();
    served.dedup();
    let expected: Vec<String> = (0..PROBES).map(worker_id).collect();
    let routing_ok = served == expected && extra == 503;
    let mut gateway_ms = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let (status, w) = chat(&http, &addr, "m5").await?;
        let idx: usize = w.trim_start_matches("w-").parse().unwrap_or(usize::MAX);
        if status != 200 || idx % MODELS != 5 {
            return Err(format!("m5 routed wrongly: {status} {w}").into());
        }
        gateway_ms.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    gateway_ms.sort_unstable();
    let peaks: Vec<u64> = pids.iter().map(|p| status_kib(*p, "VmHWM:")).collect();
    let peak = peaks.iter().copied().max().unwrap_or(0);
    let online: serde_json::Value = http
        .get(format!("http://{addr}/api/workers/w-00007"))
        .send()
        .await?
        .json()
        .await?;
    for (pid, orchestrator) in pids.iter().zip(&mut orchestrators) {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let _ = orchestrator.0.wait();
    }
    tasks.abort_all();

    let p99 = percentile(&rtts, 0.99);
    let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };
    #[allow(clippy::cast_precision_loss)]
    let rate = rtts.len() as f64 / steady.as_secs_f64();
    println!(
        "workers connected:            {n} (every {} s; {rate:.0} heartbeats/s measured)",
        INTERVAL.as_secs()
    );
    println!(
        "heartbeat round trip:         p50 {:.2} ms, p99 {p99:.2} ms, max {:.2} ms over {} beats ({} target <= 5 ms)",
        percentile(&rtts, 0.5),
        percentile(&rtts, 1.0),
        rtts.len(),
        verdict(p99 <= 5.0)
    );
    println!(
        "orchestrators:                {} ({})",
        addrs.len(),
        if pg.is_some() {
            "replicas on one PostgreSQL database"
        } else {
            "one on SQLite"
        }
    );
    println!(
        "peak RSS per orchestrator:    {:?} MiB ({} target <= 512 MiB)",
        peaks.iter().map(|k| k / 1024).collect::<Vec<_>>(),
        verdict(peak <= 512 * 1024)
    );
    println!(
        "models listed:                {model_count} (expected {})",
        MODELS + 1
    );
    println!(
        "routing (3 probes + 1 extra): {served:?}, extra -> {extra} ({})",
        if routing_ok { "correct" } else { "WRONG" }
    );
    println!(
        "gateway round trip (m5):      p50 {:.2} ms, p99 {:.2} ms over 200 sequential requests",
        percentile(&gateway_ms, 0.5),
        percentile(&gateway_ms, 0.99)
    );
    println!("w-00007 online:               {}", online["online"]);
    if !routing_ok || model_count != MODELS + 1 || online["online"] != true {
        return Err("routing under load is not correct".into());
    }
    Ok(())
}

fn main() -> Result {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}
