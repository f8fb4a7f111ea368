//! Task market: one `basis orchestrator` (the real release binary, its own process, `SQLite` in
//! a temp dir with `synchronous=FULL`), measured from outside over HTTP:
//!
//! - claims: 1,000 tasks posted over HTTP, 100 registered (multi-task) workers claiming them
//!   concurrently, 100 requests in flight. Each task is offered to three claimers at once (the
//!   work queue holds every task id three times in a row), so every claim is a real race:
//!   3,000 attempts, 1,000 wins, 2,000 `ALREADY_CLAIMED`. Reported: claims/s (wins over wall
//!   time; target ≥ 2,000/s) and attempts/s; asserted: every task claimed exactly once (one
//!   200 per task, and the stored holder is that winner), zero double claims.
//! - listing: 100,000 open tasks inserted straight into the `SQLite` file before the
//!   orchestrator starts (setup speed only; the rows are exactly what `POST /api/tasks` would
//!   store), then sequential `GET /api/tasks` pages with `min_reward` + `capabilities` +
//!   `deadline_buffer_s`: p50/p99 of the first page (target ≤ 20 ms), of the 20th page
//!   reached through the cursor, and of the worst case, a filter no task matches.
//!
//! Run with `cargo bench --bench task_market`. Overrides: `BASIS_BENCH_TASKS` (1000),
//! `BASIS_BENCH_CLAIMERS` (100), `BASIS_BENCH_CONTENDERS` (3 per task), `BASIS_BENCH_ROUNDS`
//! (3 rounds of fresh tasks on one orchestrator, each verified), `BASIS_BENCH_OPEN_TASKS`
//! (100000), `BASIS_BENCH_PAGES` (500), `BASIS_BENCH_ONLY` (`claims` or `listing`),
//! `BASIS_BENCH_REPLICAS` (0: one orchestrator on `SQLite`; N: the claims on N orchestrators
//! sharing one fresh PostgreSQL database, claimers spread over them), `BASIS_BENCH_POOL_SIZE`
//! (PostgreSQL connections per orchestrator; default `database_pool_size`'s).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use basis::domain::{Runtime, WalletAddress, WorkerId, WorkerToken};
use basis::wire::RegisterRequest;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
/// How many claimers race for each task (`BASIS_BENCH_CONTENDERS`).
fn contenders() -> usize {
    env_usize("BASIS_BENCH_CONTENDERS", 3).max(1)
}
const CAPABILITIES: [&str; 8] = [
    "runtime:vllm",
    "gpu:nvidia",
    "model:llama3.2:1b",
    "vram:24g",
    "runtime:ollama",
    "gpu:amd",
    "model:qwen2.5:7b",
    "vram:80g",
];
/// The worker asking for tasks holds the first four.
const GIVEN: &str = "runtime:vllm,gpu:nvidia,model:llama3.2:1b,vram:24g";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The orchestrator process, killed when dropped.
struct Orchestrator(Child);

impl Drop for Orchestrator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One orchestrator on `dir`: on the `SQLite` file `db`, or on PostgreSQL at `database_url`.
fn spawn(
    dir: &std::path::Path,
    db: &std::path::Path,
    database_url: Option<&str>,
) -> Result<(Orchestrator, String)> {
    let config = dir.join("orchestrator.toml");
    // BASIS_BENCH_POOL_SIZE: PostgreSQL connections per orchestrator (default: the server's).
    let pool = std::env::var("BASIS_BENCH_POOL_SIZE")
        .ok()
        .map(|n| format!("database_pool_size = {n}\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "{pool}[rate_limit]\nauth_failure_burst = 100000\nauth_failures_per_minute = 100000\n\
             register_burst = 100000\nregister_per_minute = 100000\n"
        ),
    )?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_basis"));
    cmd.args(["orchestrator", "--open", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .arg("--config")
        .arg(&config)
        .env("BASIS_HOME", dir)
        .env("RUST_LOG", "warn");
    if let Some(url) = database_url {
        cmd.env("BASIS_DATABASE_URL", url);
    }
    let mut child = cmd
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
    Ok((orchestrator, addr))
}

fn http() -> Result<reqwest::Client> {
    Ok(basis::http::client_builder(Duration::from_secs(5))
        .timeout(Duration::from_mins(1))
        .pool_max_idle_per_host(256)
        .build()?)
}

async fn post(
    http: &reqwest::Client,
    url: String,
    bearer: Option<&str>,
    body: &Value,
) -> Result<(u16, Value)> {
    let mut rb = http.post(url).json(body);
    if let Some(b) = bearer {
        rb = rb.bearer_auth(b);
    }
    let resp = rb.send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await?))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `n` per second over `secs`.
fn per_s(n: usize, secs: f64) -> f64 {
    #[allow(clippy::cast_precision_loss)] // counts here are far below 2^52
    let n = n as f64;
    n / secs
}

/// Registers `n` multi-task workers; returns (id, token).
async fn workers(
    http: &reqwest::Client,
    base: &str,
    n: usize,
) -> Result<Vec<(String, WorkerToken)>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("w-{i:03}");
        let token = WorkerToken::generate();
        let req = RegisterRequest {
            worker_id: WorkerId::parse(&id)?,
            wallet: WalletAddress::parse(WALLET)?,
            runtime: Runtime::Vllm,
            models: vec!["llama3.2:1b".into()],
            token_sha256: token.sha256(),
            public_key: None,
            hardware: None,
            version: "0.1.0".into(),
            multi_task: true,
            labels: Vec::new(),
        };
        let (status, body) = post(
            http,
            format!("{base}/api/workers/register"),
            None,
            &serde_json::to_value(&req)?,
        )
        .await?;
        if status != 201 {
            return Err(format!("register {id}: {status} {body}").into());
        }
        out.push((id, token));
    }
    Ok(out)
}

/// Posts `n` tasks, 32 in flight; returns their ids.
async fn post_tasks(http: &reqwest::Client, base: &str, n: usize) -> Result<Vec<String>> {
    let gate = Arc::new(Semaphore::new(32));
    let deadline = now_s() + 3600;
    let posts = (0..n).map(|i| {
        let (http, gate, url) = (http.clone(), Arc::clone(&gate), format!("{base}/api/tasks"));
        tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let body = json!({
                "description": format!("Task {i}: summarise the attached text."),
                "criteria": ["one sentence"],
                "reward": format!("{}", 1_000 + i),
                "deadline": deadline,
                "output_format": "text",
            });
            let (status, body) = post(&http, url, None, &body).await?;
            if status != 201 {
                return Err::<String, Box<dyn std::error::Error + Send + Sync>>(
                    format!("post: {status} {body}").into(),
                );
            }
            Ok(body["task_id"].as_str().ok_or("no task_id")?.to_owned())
        })
    });
    let mut ids = Vec::with_capacity(n);
    for r in futures::future::join_all(posts).await {
        ids.push(r??);
    }
    Ok(ids)
}

struct ClaimRun {
    elapsed: Duration,
    attempts: usize,
    /// task id → the distinct workers that got 200 for it.
    winners: HashMap<String, Vec<String>>,
    refused: usize,
    /// 200s to a worker that already held the task (its claim back).
    held: usize,
}

/// `claimers` workers pull from one queue holding each task `CONTENDERS` times in a row.
async fn claim_all(
    http: &reqwest::Client,
    bases: &[String],
    tasks: &[String],
    claimers: &[(String, WorkerToken)],
) -> Result<ClaimRun> {
    let queue: Arc<Vec<String>> = Arc::new(
        tasks
            .iter()
            .flat_map(|t| std::iter::repeat_n(t.clone(), contenders()))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    // Claimer i talks to replica i mod n (one replica: all to it).
    let runs = claimers.iter().enumerate().map(|(i, (id, token))| {
        let (http, queue, next) = (http.clone(), Arc::clone(&queue), Arc::clone(&next));
        let (id, bearer, base) = (
            id.clone(),
            token.expose_secret().to_owned(),
            bases[i % bases.len()].clone(),
        );
        tokio::spawn(async move {
            let mut won = Vec::new();
            let mut refused = 0_usize;
            let body = json!({ "worker_id": id });
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(task) = queue.get(i) else { break };
                let url = format!("{base}/api/tasks/{task}/claim");
                let (status, answer) = post(&http, url, Some(&bearer), &body).await?;
                match (status, answer["error"]["code"].as_str()) {
                    (200, _) if answer["worker_id"] == id.as_str() => won.push(task.clone()),
                    (409, Some("ALREADY_CLAIMED")) => refused += 1,
                    _ => {
                        return Err::<_, Box<dyn std::error::Error + Send + Sync>>(
                            format!("claim {task} by {id}: {status} {answer}").into(),
                        );
                    }
                }
            }
            Ok((id, won, refused))
        })
    });
    let results = futures::future::join_all(runs).await;
    let elapsed = started.elapsed();
    let mut winners: HashMap<String, Vec<String>> = HashMap::new();
    let mut refused = 0;
    let mut held = 0;
    for r in results {
        let (id, won, n) = r??;
        refused += n;
        for task in won {
            let w = winners.entry(task).or_default();
            // The holder pulling its own task again gets its claim back (200, not a new claim).
            if w.contains(&id) {
                held += 1;
            } else {
                w.push(id.clone());
            }
        }
    }
    Ok(ClaimRun {
        elapsed,
        attempts: queue.len(),
        winners,
        refused,
        held,
    })
}

/// Opens `n` pooled connections (so the timed run does not pay for TCP handshakes).
async fn warm(http: &reqwest::Client, base: &str, n: usize) -> Result {
    let gets = (0..n).map(|_| {
        let (http, url) = (http.clone(), format!("{base}/health"));
        tokio::spawn(async move { http.get(url).send().await?.bytes().await })
    });
    for r in futures::future::join_all(gets).await {
        r??;
    }
    Ok(())
}

async fn claims_bench() -> Result {
    let rounds = env_usize("BASIS_BENCH_ROUNDS", 3);
    let dir = tempfile::tempdir()?;
    // BASIS_BENCH_REPLICAS=N: N orchestrators on one fresh PostgreSQL database (the claimers
    // spread over them); unset or 0: one orchestrator on SQLite.
    let replicas = env_usize("BASIS_BENCH_REPLICAS", 0);
    let pg = if replicas > 0 {
        Some(basis::orchestrator::store::postgres::testdb::TestDb::create().await)
    } else {
        None
    };
    let mut procs = Vec::new();
    let mut bases = Vec::new();
    for i in 0..replicas.max(1) {
        let home = dir.path().join(format!("replica-{i}"));
        std::fs::create_dir_all(&home)?;
        let url = pg.as_ref().map(|db| db.url.as_str());
        let (orch, base) = spawn(&home, &home.join("orchestrator.db"), url)?;
        procs.push(orch);
        bases.push(base);
    }
    println!(
        "claims on {}",
        if replicas > 0 {
            format!("{replicas} orchestrator replicas on one PostgreSQL database")
        } else {
            "one orchestrator on SQLite".to_owned()
        }
    );
    let base = bases[0].clone();
    let http = http()?;
    let n_claimers = env_usize("BASIS_BENCH_CLAIMERS", 100);
    let claimers = workers(&http, &base, n_claimers).await?;
    let mut rates = Vec::new();
    for round in 1..=rounds {
        println!("round {round} of {rounds}:");
        rates.push(claims_round(&http, &bases, &claimers).await?);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "claims/s over {rounds} rounds: median {:.0}, best {:.0}, worst {:.0} (target >= 2000)",
        pct(&rates, 0.5),
        pct(&rates, 1.0),
        pct(&rates, 0.0)
    );
    Ok(())
}

/// One round: fresh tasks, every claimer racing; returns claims/s.
async fn claims_round(
    http: &reqwest::Client,
    bases: &[String],
    claimers: &[(String, WorkerToken)],
) -> Result<f64> {
    let (http, base) = (http.clone(), bases[0].clone());
    let n_tasks = env_usize("BASIS_BENCH_TASKS", 1000);
    let n_claimers = claimers.len();
    for b in bases {
        warm(&http, b, n_claimers.div_ceil(bases.len())).await?;
    }
    let posting = Instant::now();
    let tasks = post_tasks(&http, &base, n_tasks).await?;
    let posted = posting.elapsed();
    println!(
        "posted {n_tasks} tasks in {:.2} s ({:.0} posts/s, 32 in flight)",
        posted.as_secs_f64(),
        per_s(n_tasks, posted.as_secs_f64())
    );
    let run = claim_all(&http, bases, &tasks, claimers).await?;
    let secs = run.elapsed.as_secs_f64();
    println!(
        "claims: {n_claimers} claimers, {} attempts ({} per task), {} won, {} ALREADY_CLAIMED, {} already held in {secs:.2} s",
        run.attempts,
        contenders(),
        run.winners.values().map(Vec::len).sum::<usize>(),
        run.refused,
        run.held
    );
    let rate = per_s(n_tasks, secs);
    println!(
        "claims/s: {rate:.0} (target >= 2000); attempts/s: {:.0}",
        per_s(run.attempts, secs)
    );
    // Exactly once: one winner per task, and the store agrees.
    let doubles = run.winners.values().filter(|w| w.len() > 1).count();
    let missing = tasks
        .iter()
        .filter(|t| !run.winners.contains_key(*t))
        .count();
    println!(
        "double claims (two workers got 200 for one task): {doubles}; unclaimed tasks: {missing}"
    );
    if doubles > 0 || missing > 0 || run.refused + run.held != run.attempts - n_tasks {
        return Err("a task was not claimed exactly once".into());
    }
    for (task, who) in &run.winners {
        let t: Value = http
            .get(format!("{base}/api/tasks/{task}"))
            .send()
            .await?
            .json()
            .await?;
        if t["status"] != "claimed" || t["claimed_by"].as_str() != who.first().map(String::as_str) {
            return Err(format!("stored holder of {task} differs: {t}").into());
        }
    }
    println!("verified: every task claimed exactly once, stored holder = the one 200");
    Ok(rate)
}

/// Inserts `n` open tasks with rewards, capabilities and deadlines spread at random.
fn populate(db: &std::path::Path, n: usize) -> Result {
    use rand::Rng;
    drop(basis::orchestrator::store::SqliteStore::open(db)?);
    let mut conn = rusqlite::Connection::open(db)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    let now_ms = now_s() * 1000;
    let mut rng = rand::rng();
    {
        let mut stmt = tx.prepare(
            "INSERT INTO tasks (task_id, client, description, criteria, required_capabilities, \
             reward, reward_key, asset, deadline_ms, output_format, claim_ttl_s, evaluator, \
             pass_threshold, status, attempts, created_ms, updated_ms) VALUES (?1, 'open', ?2, \
             '[\"one sentence\"]', ?3, ?4, ?5, 'USDC', ?6, 'text', 600, 'any', 70, 'open', 0, ?7, ?7)",
        )?;
        for i in 0..n {
            let reward: u128 = rng.random_range(1..=1_000_000);
            let k = rng.random_range(0..=3_usize);
            let mut caps: Vec<&str> = (0..k)
                .map(|_| CAPABILITIES[rng.random_range(0..CAPABILITIES.len())])
                .collect();
            caps.sort_unstable();
            caps.dedup();
            let deadline_ms = now_ms + rng.random_range(60_000..7 * 86_400_000_u64);
            stmt.execute(rusqlite::params![
                basis::domain::TaskId::generate().as_str(),
                format!("Open task {i}: summarise the attached text."),
                serde_json::to_string(&caps)?,
                reward.to_string(),
                format!("{reward:040}"),
                i64::try_from(deadline_ms)?,
                i64::try_from(now_ms)?,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

async fn timed_get(http: &reqwest::Client, url: &str) -> Result<(f64, Value)> {
    let started = Instant::now();
    let resp = http.get(url).send().await?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status != 200 {
        return Err(format!("GET {url}: {status} {body}").into());
    }
    Ok((ms, body))
}

async fn listing_bench() -> Result {
    let n = env_usize("BASIS_BENCH_OPEN_TASKS", 100_000);
    let pages = env_usize("BASIS_BENCH_PAGES", 500);
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("orchestrator.db");
    let started = Instant::now();
    populate(&db, n)?;
    println!(
        "inserted {n} open tasks straight into SQLite in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (_orch, base) = spawn(dir.path(), &db, None)?;
    let http = http()?;
    let query = format!(
        "{base}/api/tasks?min_reward=500000&capabilities={GIVEN}&deadline_buffer_s=3600&limit=50"
    );
    // Warm up (connection, page cache, prepared statements).
    for _ in 0..20 {
        timed_get(&http, &query).await?;
    }
    let mut first = Vec::with_capacity(pages);
    let mut count = 0;
    for _ in 0..pages {
        let (ms, body) = timed_get(&http, &query).await?;
        count = body["tasks"].as_array().map_or(0, Vec::len);
        first.push(ms);
    }
    // The 20th page, through the cursor.
    let mut deep = Vec::new();
    for _ in 0..(pages / 20).max(5) {
        let mut url = query.clone();
        let mut last = 0.0;
        for _ in 0..20 {
            let (ms, body) = timed_get(&http, &url).await?;
            last = ms;
            let Some(cursor) = body["next_cursor"].as_str() else {
                break;
            };
            url = format!("{query}&cursor={cursor}");
        }
        deep.push(last);
    }
    // Worst case: a filter nothing matches walks the whole index (every row's deadline and
    // capabilities are checked).
    let none = format!("{base}/api/tasks?capabilities={GIVEN}&deadline_buffer_s=864000&limit=50");
    let mut empty = Vec::new();
    for _ in 0..20 {
        let (ms, body) = timed_get(&http, &none).await?;
        if body["tasks"].as_array().is_none_or(|t| !t.is_empty()) {
            return Err("the no-match query matched".into());
        }
        empty.push(ms);
    }
    first.sort_by(f64::total_cmp);
    deep.sort_by(f64::total_cmp);
    empty.sort_by(f64::total_cmp);
    println!(
        "GET /api/tasks over {n} open tasks (min_reward + capabilities + deadline buffer, {count} per page):"
    );
    println!(
        "  first page: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({pages} requests; target p99 <= 20 ms)",
        pct(&first, 0.50),
        pct(&first, 0.99),
        pct(&first, 1.0)
    );
    println!(
        "  20th page via cursor: p50 {:.2} ms, p99 {:.2} ms ({} requests)",
        pct(&deep, 0.50),
        pct(&deep, 0.99),
        deep.len()
    );
    println!(
        "  worst case, a filter no task matches (whole index walked): p50 {:.1} ms, max {:.1} ms",
        pct(&empty, 0.5),
        pct(&empty, 1.0)
    );
    Ok(())
}

fn main() -> Result {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let only = std::env::var("BASIS_BENCH_ONLY").unwrap_or_default();
    runtime.block_on(async {
        if only != "listing" {
            claims_bench().await?;
        }
        if only != "claims" {
            listing_bench().await?;
        }
        Ok(())
    })
}
