//! Leaderboard: 10,000 registered workers on one `SQLite` store (a temp file, `synchronous =
//! FULL`), each with 5 completed gateway jobs (tokens and a time to first token) and a
//! connection span in the window, 50,000 jobs in all. Measured in process, through the same
//! code `GET /api/leaderboard` runs:
//!
//! - ranking: the figures of 10,000 workers turned into ranked entries (`leaderboard::entry`
//!   then `leaderboard::rank`), for each `by`: p50/p99 (target ≤ 50 ms p99);
//! - computing: `Leaderboards::board` with the cache off, so every call runs the store's
//!   aggregate over the window's jobs, connections and submissions, then ranks: p50/p99;
//! - cached: the same call within the cache period: p50/p99.
//!
//! Run with `cargo bench --bench leaderboard`. Overrides: `BASIS_BENCH_WORKERS` (10000),
//! `BASIS_BENCH_JOBS_PER_WORKER` (5), `BASIS_BENCH_ROUNDS` (200 ranking rounds; a tenth of
//! that for computing).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use basis::domain::{
    Amount, JobId, OutputHash, RECEIPT_VERSION, Receipt, ReceiptId, ReceiptKind, Runtime, Usage,
    WalletAddress, WorkerId, WorkerToken,
};
use basis::orchestrator::discovery::leaderboard::{self, Span};
use basis::orchestrator::discovery::{Ask, Leaderboards};
use basis::orchestrator::store::{
    JobOutcome, JobRecord, Presence, SqliteStore, Store, WorkerStats,
};
use basis::wire::{LeaderboardBy, LeaderboardWindow, RegisterRequest};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

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

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

fn job(worker: &WorkerId, n: usize, now: u64) -> Result<JobRecord> {
    let job_id = JobId::generate();
    let tokens = 100 + (n as u64 * 37) % 900;
    let receipt = Receipt {
        receipt_version: RECEIPT_VERSION,
        receipt_id: ReceiptId::generate(),
        kind: ReceiptKind::GatewayJob,
        issued_at: now,
        worker_id: worker.clone(),
        wallet: None,
        model: Some("m".into()),
        job_id: Some(job_id.clone()),
        task_id: None,
        submission_id: None,
        output_hash: OutputHash::of(b"out"),
        usage: Usage {
            prompt_tokens: tokens / 2,
            completion_tokens: tokens - tokens / 2,
        },
        duration_ms: 100,
        simulated: false,
        reward: Amount::ZERO,
        asset: "USDC".into(),
        attestation_hash: None,
        metering: None,
    }
    .seal()?;
    Ok(JobRecord {
        job_id,
        worker_id: worker.clone(),
        model: "m".into(),
        outcome: JobOutcome::Completed(Box::new(receipt)),
        started_at: now - 60,
        finished_at: now - 60,
        client_key: None,
        partial_usage: None,
        ttft_ms: Some(20 + (n as u64 * 13) % 500),
    })
}

async fn populate(store: &Arc<dyn Store>, workers: usize, jobs_each: usize, now: u64) -> Result {
    let ids: Vec<WorkerId> = (0..workers)
        .map(|i| WorkerId::parse(&format!("w-{i:05}")))
        .collect::<std::result::Result<_, _>>()?;
    let wallet = WalletAddress::parse(WALLET)?;
    for chunk in ids.chunks(500) {
        let inserts = chunk.iter().map(|id| {
            let req = RegisterRequest {
                worker_id: id.clone(),
                wallet,
                runtime: Runtime::Vllm,
                models: vec!["m".into()],
                token_sha256: WorkerToken::generate().sha256(),
                public_key: None,
                hardware: None,
                version: "0.1.0".into(),
                multi_task: false,
                labels: Vec::new(),
            };
            store.insert_worker(req, now - 3_600)
        });
        for r in futures::future::join_all(inserts).await {
            r?;
        }
    }
    let spans: Vec<_> = ids
        .iter()
        .enumerate()
        .flat_map(|(i, id)| {
            let start = now - 3_000 + (i as u64 % 1_000);
            [
                (id.clone(), Presence::Connected(start)),
                (
                    id.clone(),
                    Presence::Disconnected {
                        last_seen: start + 600,
                        connected_at: start,
                    },
                ),
            ]
        })
        .collect();
    for chunk in spans.chunks(2_000) {
        store.set_presence(chunk.to_vec()).await?;
    }
    let mut records = Vec::with_capacity(workers * jobs_each);
    for (i, id) in ids.iter().enumerate() {
        for j in 0..jobs_each {
            records.push(job(id, i * jobs_each + j, now)?);
        }
    }
    for chunk in records.chunks(1_000) {
        for r in futures::future::join_all(chunk.iter().cloned().map(|j| store.record_job(j))).await
        {
            r?;
        }
    }
    Ok(())
}

fn rank_round(stats: &[WorkerStats], span: Span, by: LeaderboardBy) -> Duration {
    let started = Instant::now();
    let entries = stats.iter().map(|s| leaderboard::entry(s, span)).collect();
    let ranked = leaderboard::rank(entries, by, None);
    let took = started.elapsed();
    assert_eq!(ranked.len(), stats.len());
    took
}

#[tokio::main]
async fn main() -> Result {
    let workers = env_usize("BASIS_BENCH_WORKERS", 10_000);
    let jobs_each = env_usize("BASIS_BENCH_JOBS_PER_WORKER", 5);
    let rounds = env_usize("BASIS_BENCH_ROUNDS", 200).max(10);
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("bench.db"))?);
    let now = now_s();
    let setup = Instant::now();
    populate(&store, workers, jobs_each, now).await?;
    println!(
        "setup: {workers} workers, {} jobs, {workers} connection spans in {:.1} s",
        workers * jobs_each,
        setup.elapsed().as_secs_f64()
    );

    let span = Span {
        since: now - 86_400,
        now,
    };
    let stats = store.worker_stats(span.since, now, now - 90, None).await?;
    assert_eq!(stats.len(), workers);
    assert!(
        stats
            .iter()
            .all(|s| s.jobs_completed == jobs_each as u64 && s.online_s == 600)
    );
    for by in [
        LeaderboardBy::Score,
        LeaderboardBy::Online,
        LeaderboardBy::Tokens,
        LeaderboardBy::Ttft,
    ] {
        let times = (0..rounds).map(|_| rank_round(&stats, span, by)).collect();
        let (p50, p99) = percentiles(times);
        println!(
            "ranking {workers} workers by {}: p50 {p50:.2} ms, p99 {p99:.2} ms (target p99 <= 50 ms)",
            by.as_str()
        );
    }

    let boards = Leaderboards::default();
    let ask = || Ask {
        window: LeaderboardWindow::Day,
        by: LeaderboardBy::Score,
        family: None,
        worker: Some(WorkerId::parse("w-00042").unwrap_or_else(|_| unreachable!())),
        limit: 100,
    };
    let mut computing = Vec::new();
    for _ in 0..(rounds / 10).max(5) {
        let started = Instant::now();
        let board = boards
            .board(&*store, ask(), now, 90, Duration::ZERO)
            .await?;
        computing.push(started.elapsed());
        assert_eq!(board.total, workers as u64);
        assert!(board.you.is_some());
    }
    let (p50, p99) = percentiles(computing);
    println!("computing (store aggregate + ranking, cache off): p50 {p50:.1} ms, p99 {p99:.1} ms");
    let mut cached = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        boards
            .board(&*store, ask(), now, 90, Duration::from_mins(1))
            .await?;
        cached.push(started.elapsed());
    }
    let (p50, p99) = percentiles(cached);
    println!("cached board: p50 {p50:.2} ms, p99 {p99:.2} ms");
    Ok(())
}
