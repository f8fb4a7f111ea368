//! Settlement end to end, against the real orchestrator process and the real CLI: passes
//! credited by the market are closed into a batch (`settle close`, one leaf per wallet), its
//! file is exported and verified offline (`settle export`, `rewards verify`), the worker's and
//! the wallet's views carry proofs that verify, the payment is recorded once (`settle
//! mark-paid`, bad and repeated hashes refused with nothing changed), the counters move, two
//! closes at once make one batch, a kill -9 during a close leaves the batch whole or absent,
//! and a bad `[settlement]` stops the orchestrator at start naming the key.

use std::process::{Command, Output};

use alloy_primitives::{B256, U256};
use basis::domain::{Runtime, leaf_hash, verify_proof};

use super::market::*;
use super::*;

const OTHER_WALLET: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";

const SETTLEMENT: &str = "\n[settlement]\ntoken = \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\"\n\
     chain_id = 8453\nverifying_contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\n";

/// An `--open` market orchestrator with `[settlement]`.
fn settling() -> Orchestrator {
    Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: format!("{}{SETTLEMENT}", market_toml("")),
        ..Options::default()
    })
}

/// `basis ARGS` with the admin key in `BASIS_ADMIN_KEY` (when given) and `--url`.
fn cli(orch: &Orchestrator, admin: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(common::orchestrator::bin());
    cmd.args(args)
        .args(["--url", orch.url.as_str()])
        .env_remove("BASIS_ADMIN_KEY")
        .env_remove("BASIS_ORCHESTRATOR_URL");
    if let Some(key) = admin {
        cmd.env("BASIS_ADMIN_KEY", key);
    }
    let out = cmd.output().unwrap();
    if let Some(key) = admin {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(key), "the admin key is never printed");
    }
    out
}

/// `basis orchestrator settle ARGS --json`: (success, its JSON: the result, or the error).
fn settle(orch: &Orchestrator, admin: Option<&str>, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["orchestrator", "settle"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = cli(orch, admin, &all);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

/// A task worker `id` (vLLM, paid to `wallet`) passes: credited 975000 (1000000 less 2.5 %).
async fn passes(orch: &Orchestrator, id: &str, wallet: &str, evaluator: &str) {
    let token = worker_paid_to(orch, id, Runtime::Vllm, false, wallet).await;
    let task = post_task(orch, &task_body("1000000")).await;
    assert_eq!(claim(orch, &task, id, &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = submit(
        orch,
        &task,
        &token,
        &output_body(id, "A fox jumps over a dog."),
    )
    .await;
    assert_eq!(s.status, 201, "{}", s.text);
    let sub = s.body["submission_id"].as_str().unwrap();
    let verdict = json!({"score": 90, "passed": true, "reasons": ["good"]});
    let e = evaluate(orch, sub, Some(evaluator), &verdict).await;
    assert_eq!(e.body["credit"]["net"], "975000", "{}", e.text);
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

/// After batch 1 of the case below: the worker's view shows it batched with its wallet's
/// leaf and a proof that verifies; the wallet's view adds up both of its workers.
async fn views_carry_proofs(orch: &Orchestrator) -> TestResult {
    // The worker's view: batched, with its wallet's leaf and a proof that verifies.
    let rewards = get(orch, "/api/workers/gpu-1/rewards").await;
    assert_eq!(
        (
            &rewards.body["accrued"],
            &rewards.body["pending"],
            &rewards.body["batched"]
        ),
        (&json!("975000"), &json!("0"), &json!("975000"))
    );
    let shown = &rewards.body["batches"][0];
    assert_eq!(
        (&shown["share"], &shown["leaf"]["amount"]),
        (&json!("975000"), &json!("1950000"))
    );
    let proof: Vec<B256> = shown["leaf"]["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().parse().unwrap())
        .collect();
    let root: B256 = shown["root"].as_str().unwrap().parse()?;
    let wallet = WalletAddress::parse(WALLET_LOWER)?;
    assert!(verify_proof(
        &root,
        &leaf_hash(wallet.address(), U256::from(1_950_000)),
        &proof
    ));
    assert_eq!(rewards.body["credits"][0]["status"], "batched");
    assert_eq!(rewards.body["credits"][0]["batch_id"], 1);
    let by_wallet = get(orch, &format!("/api/wallets/{WALLET_CHECKSUMMED}/rewards")).await;
    assert_eq!(
        (&by_wallet.body["batched"], &by_wallet.body["credits"]),
        (&json!("1950000"), &json!(2))
    );
    let bad = get(orch, "/api/wallets/0x12/rewards").await;
    bad.refused(400, "INVALID_WALLET");

    let record = get(orch, "/api/workers/gpu-1").await;
    assert_eq!(
        record.body["rewards_pending"], "975000",
        "credited, not paid out yet"
    );

    Ok(())
}

/// Batch 1 paid: malformed hash, unknown batch, recorded, repeated (nothing changed); the
/// workers' views and records say paid.
async fn payment_is_recorded_once(orch: &Orchestrator, admin: &str) {
    // The payment: malformed, unknown batch, recorded, repeated.
    let tx = format!("0x{}", "ab".repeat(32));
    let (ok, e) = settle(orch, Some(admin), &["mark-paid", "1", "--tx-hash", "0x12"]);
    assert!(!ok);
    assert_eq!(code(&e), "INVALID_ARGUMENT", "{e}");
    let (ok, e) = settle(orch, Some(admin), &["mark-paid", "9", "--tx-hash", &tx]);
    assert!(!ok);
    assert_eq!(code(&e), "BATCH_NOT_FOUND", "{e}");
    let (ok, paid) = settle(orch, Some(admin), &["mark-paid", "1", "--tx-hash", &tx]);
    assert!(ok, "{paid}");
    assert_eq!(
        (&paid["status"], &paid["tx_hash"]),
        (&json!("paid"), &json!(tx))
    );
    let other = format!("0x{}", "cd".repeat(32));
    let (ok, e) = settle(orch, Some(admin), &["mark-paid", "1", "--tx-hash", &other]);
    assert!(!ok);
    assert_eq!(code(&e), "SETTLEMENT_CONFLICT", "{e}");
    let (ok, listed) = settle(orch, Some(admin), &["list"]);
    assert!(ok);
    assert_eq!(
        listed["batches"][0]["tx_hash"],
        json!(tx),
        "nothing changed"
    );
    let rewards = get(orch, "/api/workers/gpu-3/rewards").await;
    assert_eq!(rewards.body["paid"], "975000");
    for id in ["gpu-1", "gpu-2", "gpu-3"] {
        let record = get(orch, &format!("/api/workers/{id}")).await;
        assert_eq!(record.body["rewards_pending"], "0", "{id} was paid out");
    }
    assert_eq!(rewards.body["batches"][0]["tx_hash"], json!(tx));
}

#[tokio::test]
async fn the_operator_closes_exports_and_records_a_payment() -> TestResult {
    let orch = settling();
    let admin = orch.create_key("admin").0.trim().to_owned();
    let evaluator = orch.create_key("evaluator").0.trim().to_owned();
    passes(&orch, "gpu-1", WALLET_LOWER, &evaluator).await;
    passes(&orch, "gpu-2", WALLET_LOWER, &evaluator).await;
    passes(&orch, "gpu-3", OTHER_WALLET, &evaluator).await;
    // Only the operator closes.
    let (ok, refused) = settle(&orch, None, &["close"]);
    assert!(!ok);
    assert_eq!(code(&refused), "ADMIN_KEY_REQUIRED", "{refused}");
    // A watermark in the future is refused: credits before it could still arrive.
    let (ok, later) = settle(&orch, Some(&admin), &["close", "--until", "4000000000"]);
    assert!(!ok);
    assert_eq!(code(&later), "INVALID_ARGUMENT", "{later}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (ok, closed) = settle(&orch, Some(&admin), &["close"]);
    assert!(ok, "{closed}");
    assert_eq!(closed["created"], true);
    let batch = &closed["batch"];
    assert_eq!(
        (
            &batch["batch_id"],
            &batch["credits"],
            &batch["leaves"],
            &batch["total"]
        ),
        (&json!(1), &json!(3), &json!(2), &json!("2925000"))
    );
    assert_eq!(batch["status"], "batched");
    // The same watermark again: the same batch.
    let until = batch["period_end"].as_u64().unwrap().to_string();
    let (ok, again) = settle(&orch, Some(&admin), &["close", "--until", &until]);
    assert!(ok);
    assert_eq!((&again["created"], &again["batch"]), (&json!(false), batch));
    // Nothing new to pay.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (ok, nothing) = settle(&orch, Some(&admin), &["close"]);
    assert!(!ok);
    assert_eq!(code(&nothing), "NOTHING_TO_SETTLE", "{nothing}");

    // Export, then verify offline with nothing but the file.
    let file = orch.dir.path().join("batch-1.json");
    let (ok, exported) = settle(
        &orch,
        Some(&admin),
        &["export", "1", "--out", file.to_str().unwrap()],
    );
    assert!(ok, "{exported}");
    assert_eq!(exported["root"], batch["root"]);
    assert_eq!(exported["digest"], batch["digest"]);
    let verified = Command::new(common::orchestrator::bin())
        .args(["rewards", "verify", "--json"])
        .arg(&file)
        .output()?;
    assert!(verified.status.success());
    let verified: Value = serde_json::from_slice(&verified.stdout)?;
    assert_eq!(
        (&verified["leaves"], &verified["total"]),
        (&json!(2), &json!("2925000"))
    );

    views_carry_proofs(&orch).await?;
    payment_is_recorded_once(&orch, &admin).await;
    // The counters, in atomic units.
    let metrics = get(&orch, "/metrics").await.text;
    for state in ["credited", "batched", "paid"] {
        let line = format!(
            "basis_orchestrator_rewards_atomic_total{{state=\"{state}\",asset=\"USDC\"}} 2925000"
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    Ok(())
}

#[tokio::test]
async fn two_closes_at_once_make_one_batch() -> TestResult {
    let orch = settling();
    let admin = orch.create_key("admin").0.trim().to_owned();
    let evaluator = orch.create_key("evaluator").0.trim().to_owned();
    passes(&orch, "gpu-1", WALLET_LOWER, &evaluator).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let until = basis_now().to_string();
    let run = |admin: String, until: String| {
        let url = orch.url.to_string();
        std::thread::spawn(move || {
            Command::new(common::orchestrator::bin())
                .args([
                    "orchestrator",
                    "settle",
                    "close",
                    "--json",
                    "--until",
                    &until,
                ])
                .args(["--url", &url])
                .env("BASIS_ADMIN_KEY", admin)
                .output()
                .unwrap()
        })
    };
    let a = run(admin.clone(), until.clone());
    let b = run(admin.clone(), until);
    let results: Vec<Value> = [a, b]
        .into_iter()
        .map(|h| {
            let out = h.join().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    let created: Vec<bool> = results
        .iter()
        .map(|r| r["created"].as_bool().unwrap())
        .collect();
    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{results:?}");
    assert_eq!(results[0]["batch"], results[1]["batch"]);
    let (_, listed) = settle(&orch, Some(&admin), &["list"]);
    assert_eq!(listed["batches"].as_array().unwrap().len(), 1);
    Ok(())
}

/// `n` pending credits of 1 atomic unit, made long ago, written straight into the stopped
/// orchestrator's database (as the market writes them), spread over 1000 wallets.
fn seed_credits(db: &std::path::Path, n: u64) {
    let mut conn = rusqlite::Connection::open(db).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO credits (submission_id, task_id, worker_id, wallet, gross, fee, net, \
                 asset, created_ms, receipt_id, receipt_hash, seq) \
                 VALUES (?1, ?2, 'gpu-seed', ?3, '1', '0', '1', 'USDC', ?4, ?5, ?6, ?4)",
            )
            .unwrap();
        for k in 0..n {
            let wallet = WalletAddress::parse(&format!("0x{:040x}", 1 + k % 1000)).unwrap();
            insert
                .execute(rusqlite::params![
                    format!("sub-{k:032x}"),
                    format!("task-{k:032x}"),
                    wallet.checksummed(),
                    i64::try_from(1_000_000 + k).unwrap(),
                    format!("rcpt-{k:032x}"),
                    format!("0x{}", "07".repeat(32)),
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Batches, the credits they count, their leaves and tree nodes as stored.
fn batched(db: &std::path::Path) -> (i64, i64, i64, i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT (SELECT count(*) FROM settlement_batches), \
         (SELECT coalesce(sum(credits), 0) FROM settlement_batches), \
         (SELECT count(*) FROM batch_leaves), (SELECT count(*) FROM batch_nodes)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .unwrap()
}

#[tokio::test]
async fn a_kill_during_a_close_leaves_the_batch_whole_or_absent() -> TestResult {
    const N: u64 = 100_000;
    let mut orch = settling();
    let admin = orch.create_key("admin").0.trim().to_owned();
    orch.kill();
    seed_credits(&orch.db, N);
    orch.restart();
    let url = orch.url.to_string();
    let closing = std::thread::spawn({
        let admin = admin.clone();
        move || {
            Command::new(common::orchestrator::bin())
                .args(["orchestrator", "settle", "close", "--json", "--url", &url])
                .env("BASIS_ADMIN_KEY", admin)
                .output()
                .unwrap()
        }
    });
    // Once the close has reached the orchestrator, a little later: mid-close.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !orch.logs().contains("/api/settlement/batches") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    orch.kill();
    let answered = closing.join().unwrap().status.success();
    let stored = batched(&orch.db);
    let batches = stored.0;
    eprintln!("killed 50 ms into the close: answered {answered}, batches {batches}");
    // Whole (one batch counting every credit, with its 1000 leaves and 1999 tree nodes) or
    // absent (nothing of it).
    assert!(
        stored == (1, 100_000, 1000, 1999) || stored == (0, 0, 0, 0),
        "stored {stored:?}"
    );
    assert!(!answered || batches == 1, "an answered close was kept");
    orch.restart();
    let (ok, closed) = settle(&orch, Some(&admin), &["close"]);
    if batches == 0 {
        assert!(ok, "{closed}");
        assert_eq!(
            (&closed["batch"]["credits"], &closed["batch"]["leaves"]),
            (&json!(N), &json!(1000))
        );
    } else {
        assert_eq!(code(&closed), "NOTHING_TO_SETTLE", "{closed}");
    }
    assert_eq!(batched(&orch.db), (1, 100_000, 1000, 1999));
    Ok(())
}

#[tokio::test]
async fn without_settlement_config_no_batch_closes_and_a_bad_table_stops_the_start() -> TestResult {
    let orch = market("");
    let admin = orch.create_key("admin").0.trim().to_owned();
    let (ok, e) = settle(&orch, Some(&admin), &["close"]);
    assert!(!ok);
    assert_eq!(code(&e), "SETTLEMENT_NOT_CONFIGURED", "{e}");
    assert!(
        e["error"]["fix"]
            .as_str()
            .unwrap_or_default()
            .contains("[settlement]"),
        "{e}"
    );
    let dir = tempfile::tempdir()?;
    for (table, key) in [
        (
            "token = \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\"",
            "chain_id",
        ),
        (
            "token = \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\"\nchain_id = 1.5\n\
             verifying_contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"",
            "chain_id",
        ),
        (
            "token = \"0x1234\"\nchain_id = 1\n\
             verifying_contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"",
            "token",
        ),
    ] {
        let config = dir.path().join("orchestrator.toml");
        std::fs::write(&config, format!("[settlement]\n{table}\n"))?;
        let out = Command::new(common::orchestrator::bin())
            .args(["orchestrator", "--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("o.db"))
            .arg("--config")
            .arg(&config)
            .env("BASIS_HOME", dir.path())
            .output()?;
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{key} named in: {stderr}");
    }
    Ok(())
}
