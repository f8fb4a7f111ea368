//! What outlives a process: receipts and counters across a restart, the frozen v1 receipt and
//! v1 database, and a graceful SIGTERM that lets the in-flight job finish.

use basis::domain::{HashedReceipt, OutputHash, ReceiptKind, verify_receipt_json};

use super::fake_worker::*;
use super::*;

fn data(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

#[test]
fn the_frozen_v1_receipt_still_verifies_and_loads() -> TestResult {
    let text = std::fs::read_to_string(data("receipts/v1.json"))?;
    let value: Value = serde_json::from_str(&text)?;
    let hash = verify_receipt_json(&value)?;
    assert_eq!(hash.to_string(), value["receipt_hash"].as_str().unwrap());
    let typed: HashedReceipt = serde_json::from_value(value)?;
    typed.verify()?;
    assert_eq!(typed.receipt.kind, ReceiptKind::GatewayJob);
    assert_eq!(
        typed.receipt.output_hash,
        OutputHash::of(b"Hello from the echo worker.")
    );
    assert!(typed.receipt.reward.is_zero());
    Ok(())
}

#[tokio::test]
async fn a_v1_database_loads_and_is_migrated() -> TestResult {
    let dir = tempfile::tempdir()?;
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state)?;
    let conn = rusqlite::Connection::open(state.join("orchestrator.db"))?;
    conn.execute_batch(&std::fs::read_to_string(data("orchestrator/v1.sql"))?)?;
    drop(conn);
    let orch = Orchestrator::in_dir(dir, fast_toml());
    let r = record(&orch, "gpu-old").await;
    assert_eq!(
        (r["jobs_completed"].as_u64(), r["jobs_failed"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(r["last_seen"], 1_780_000_100);
    assert_eq!(r["online"], false);
    // Its token (in the frozen file's comment) still opens the worker channel.
    let token = WorkerToken::parse(&"11".repeat(32))?;
    let _w = FakeWorker::connect(&orch, &token, "gpu-old", &["echo"], 1).await;
    wait_record(&orch, "gpu-old", |r| r["online"] == true).await;
    Ok(())
}

#[tokio::test]
async fn receipts_and_the_registry_survive_a_restart() -> TestResult {
    survives_kill_9(fast_toml()).await
}

/// `db_synchronous = "normal"` drops the per-commit fsync, not the kill -9 guarantee.
#[tokio::test]
async fn with_synchronous_normal_an_acknowledged_receipt_still_survives_kill_9() -> TestResult {
    // Top-level keys go before the tables `fast_toml` ends with.
    survives_kill_9(format!("db_synchronous = \"normal\"\n{}", fast_toml())).await
}

/// A receipt answered to a client, then kill -9 and a restart on the same database.
async fn survives_kill_9(toml: String) -> TestResult {
    let mut orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml,
        ..Options::default()
    });
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    // Routable only once the orchestrator has seen the worker online: without this wait a busy
    // machine could send the request first and get a 503.
    wait_record(&orch, "gpu-1", |r| r["online"] == true).await;
    let request = tokio::spawn({
        let (http, url) = (orch.http(), orch.at("/v1/chat/completions"));
        async move {
            http.post(url)
                .json(&json!({"model": "echo", "messages": [{"role": "user", "content": "x"}]}))
                .send()
                .await
                .unwrap()
        }
    });
    let (job, _) = w.next_job().await;
    w.done(&job, "kept");
    w.expect(|m| matches!(m, OrchestratorMessage::JobAck { .. }))
        .await;
    let resp = request.await?;
    let rid = resp.headers()["x-basis-receipt-id"].to_str()?.to_owned();
    let before: Value = orch
        .http()
        .get(orch.at(&format!("/api/receipts/{rid}")))
        .send()
        .await?
        .json()
        .await?;
    drop(w);
    orch.kill();
    orch.restart();
    let after: Value = orch
        .http()
        .get(orch.at(&format!("/api/receipts/{rid}")))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(after, before);
    verify_receipt_json(&after)?;
    let r = record(&orch, "gpu-1").await;
    assert_eq!(r["jobs_completed"], 1);
    assert_eq!(r["online"], false);
    assert!(r["last_seen"].as_u64().is_some());
    // The worker reconnects with the same token.
    let _w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    wait_record(&orch, "gpu-1", |r| r["online"] == true).await;
    Ok(())
}

#[tokio::test]
async fn sigterm_drains_the_workers_and_lets_the_job_finish() -> TestResult {
    let mut orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: fast_toml(),
        ..Options::default()
    });
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    // Routable only once the orchestrator has seen the worker online: without this wait a busy
    // machine could send the request first and get a 503.
    wait_record(&orch, "gpu-1", |r| r["online"] == true).await;
    let request = tokio::spawn({
        let (http, url) = (orch.http(), orch.at("/v1/chat/completions"));
        async move {
            http.post(url).json(&json!({"model": "echo", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
                .send().await.unwrap()
        }
    });
    let (job, _) = w.next_job().await;
    w.chunk(&job, "still ");
    let mut sse = Sse::new(request.await?);
    sse.next().await.unwrap();
    let pid = orch.pid();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    assert!(term.success());
    w.expect(|m| matches!(m, OrchestratorMessage::Drain)).await;
    // No new jobs while draining.
    let refused = orch
        .http()
        .post(orch.at("/v1/chat/completions"))
        .json(&json!({"model": "echo", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await;
    if let Ok(resp) = refused {
        assert_eq!(resp.status(), 503);
    }
    w.chunk(&job, "working");
    w.done(&job, "still working");
    w.expect(|m| matches!(m, OrchestratorMessage::JobAck { .. }))
        .await;
    let mut last = Value::Null;
    while let Some(data) = sse.next().await {
        if data == "[DONE]" {
            break;
        }
        last = serde_json::from_str(&data)?;
    }
    assert_eq!(last["choices"][0]["finish_reason"], "stop", "{last}");
    let status = orch.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}\n{}", orch.logs());
    assert!(orch.logs().contains("draining"));
    Ok(())
}
