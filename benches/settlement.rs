//! Settlement: `settle close` over 1,000,000 pending credits paid to 100,000 wallets, through
//! the code `POST /api/settlement/batches` runs (`settlement::close`: one transaction moves
//! every credit, adds them up per wallet, builds the Merkle tree, writes the batch and its
//! leaves). On `SQLite` (a temp file, `synchronous = FULL`) and on PostgreSQL (a fresh
//! database at 127.0.0.1:5432, or `BASIS_TEST_PG_ADMIN_URL`; skipped with
//! `BASIS_BENCH_SKIP_PG=1`). For each: the close's wall time and the process's peak RSS
//! during it (the high-water mark reset just before), then exporting the batch file (the
//! leaves read back a page at a time, the tree rebuilt) and a worker's rewards view with its
//! proof (read from the stored tree).
//!
//! Targets: the close ≤ 10 s and ≤ 1 GiB peak RSS on the 2-core machine.
//!
//! Run with `cargo bench --bench settlement`. Overrides: `BASIS_BENCH_CREDITS` (1000000),
//! `BASIS_BENCH_WALLETS` (100000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use basis::domain::WorkerId;
use basis::orchestrator::settlement;
use basis::orchestrator::settlement::config::SettlementConfig;
use basis::orchestrator::store::postgres::testdb::TestDb;
use basis::orchestrator::store::settlement::RewardScope;
use basis::orchestrator::store::{PgStore, SqliteStore, Store, Synchronous};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config() -> Result<SettlementConfig> {
    let raw = toml::from_str(
        "token = \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\"\nchain_id = 8453\n\
         verifying_contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"",
    )?;
    SettlementConfig::resolve(&raw)?.ok_or_else(|| "no [settlement]".into())
}

/// The process's peak RSS since the last reset, MiB (Linux).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The credits as the market writes them: `credits` rows, net 975 each, worker `w-<k %
/// wallets>` paying wallet `0x<k % wallets + 1>`, made at 1,000,000 + k ms.
fn seed_sql(credits: u64, wallets: u64, sqlite: bool) -> String {
    let last = credits - 1;
    let zeros = "07".repeat(32);
    if sqlite {
        format!(
            "WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < {last}) \
             INSERT INTO credits (submission_id, task_id, worker_id, wallet, gross, fee, net, \
             asset, created_ms, receipt_id, receipt_hash, seq) \
             SELECT printf('sub-%032x', k), printf('task-%032x', k), \
             printf('w-%06d', k % {wallets}), printf('0x%040x', k % {wallets} + 1), '1000', \
             '25', '975', 'USDC', 1000000 + k, printf('rcpt-%032x', k), '0x{zeros}', k + 1 \
             FROM n"
        )
    } else {
        format!(
            "INSERT INTO credits (submission_id, task_id, worker_id, wallet, gross, fee, net, \
             asset, created_ms, receipt_id, receipt_hash) \
             SELECT 'sub-' || lpad(to_hex(k), 32, '0'), 'task-' || lpad(to_hex(k), 32, '0'), \
             'w-' || lpad((k % {wallets})::text, 6, '0'), \
             '0x' || lpad(to_hex(k % {wallets} + 1), 40, '0'), '1000', '25', '975', 'USDC', \
             1000000 + k, 'rcpt-' || lpad(to_hex(k), 32, '0'), '0x{zeros}' \
             FROM generate_series(0::bigint, {last}::bigint) AS n(k)"
        )
    }
}

/// A worker's rewards view with its proof (read from the stored tree): the time it took.
async fn view(store: &Arc<dyn Store>) -> Result<Duration> {
    let started = Instant::now();
    let worker = WorkerId::parse("w-000007")?;
    let totals = settlement::totals(&**store, RewardScope::Worker(worker)).await?;
    let shown = settlement::reward_batches(&**store, &totals, 10).await?;
    assert_eq!(shown.len(), 1);
    Ok(started.elapsed())
}

async fn measure(name: &str, store: Arc<dyn Store>, credits: u64, wallets: u64) -> Result {
    let config = config()?;
    let until_ms = 1_000_000 + credits + 1;
    reset_peak_rss();
    let started = Instant::now();
    let closed = settlement::close(&*store, Some(&config), "USDC", until_ms, until_ms + 1).await?;
    let close = started.elapsed();
    let peak = peak_rss_mib();
    assert!(closed.created);
    assert_eq!(closed.batch.credits, credits);
    assert_eq!(closed.batch.leaves, wallets.min(credits));
    assert_eq!(closed.batch.total.atomic(), u128::from(credits) * 975);

    // The export: every leaf read back a page at a time, the tree rebuilt, the file built.
    let started = Instant::now();
    let mut payouts = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .batch_leaves(closed.batch.batch_id, after, 10_000)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        payouts.extend(
            page.iter()
                .map(|l| (l.wallet, U256::from(l.amount.atomic()))),
        );
    }
    let file = basis::domain::build_batch_file(&settlement::header(&closed.batch)?, &payouts)?;
    let export = started.elapsed();
    assert_eq!(file.root, closed.batch.root);

    let mut views = Vec::new();
    for _ in 0..50 {
        views.push(view(&store).await?);
    }
    views.sort();
    println!(
        "{name:>10}: close {credits} credits → {} leaves in {:.2} s (peak RSS {} MiB); \
         export {:.2} s; a worker's view with its proof p50 {:.2} ms, max {:.2} ms",
        closed.batch.leaves,
        close.as_secs_f64(),
        peak.map_or_else(|| "?".to_owned(), |p| p.to_string()),
        export.as_secs_f64(),
        views[views.len() / 2].as_secs_f64() * 1000.0,
        views[views.len() - 1].as_secs_f64() * 1000.0,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result {
    let credits = env_u64("BASIS_BENCH_CREDITS", 1_000_000);
    let wallets = env_u64("BASIS_BENCH_WALLETS", 100_000);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("orchestrator.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_with(&path, Synchronous::Full)?);
    let started = Instant::now();
    rusqlite::Connection::open(&path)?.execute_batch(&seed_sql(credits, wallets, true))?;
    println!(
        "SQLite: seeded {credits} credits in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    measure("SQLite", store, credits, wallets).await?;

    if std::env::var("BASIS_BENCH_SKIP_PG").is_ok_and(|v| v == "1") {
        return Ok(());
    }
    let db = TestDb::create().await;
    let pg = PgStore::connect(&db.url, 4).await?;
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let started = Instant::now();
    client
        .batch_execute(&seed_sql(credits, wallets, false))
        .await?;
    client.batch_execute("ANALYZE credits").await?;
    println!(
        "PostgreSQL: seeded {credits} credits in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    measure("PostgreSQL", Arc::new(pg), credits, wallets).await?;
    drop(client);
    // Dropping `db` drops the database.
    drop(db);
    Ok(())
}
