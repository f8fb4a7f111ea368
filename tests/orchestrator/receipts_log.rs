//! Receipts anyone can check, against the real orchestrator and the real CLI: `GET
//! /api/receipts` pages through them in issue order (filtered by worker and time); `basis
//! receipts export` writes them as a hash-chained log that `basis receipts verify-log`
//! accepts, and rejects at the right line once one byte is changed, a line removed or two
//! lines swapped; `basis receipt verify` checks one receipt by id or from a file.

use std::process::Command;

use super::fake_worker::*;
use super::*;

/// `basis ARGS` against `orch`, in its own home; (exit code, stdout, stderr).
fn basis(orch: &Orchestrator, home: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::orchestrator::bin())
        .args(args)
        .env("BASIS_HOME", home)
        .env("BASIS_ORCHESTRATOR_URL", orch.url.as_str())
        .env_remove("BASIS_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// An `--open` orchestrator whose echo worker completed `n` gateway jobs: their receipt ids.
async fn with_receipts(n: usize) -> (Orchestrator, Vec<String>) {
    let orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: fast_toml(),
        ..Options::default()
    });
    let token = register(&orch, "gpu-r", &["m"]).await;
    let mut worker = FakeWorker::connect(&orch, &token, "gpu-r", &["m"], 4).await;
    let answers = tokio::spawn(async move {
        loop {
            let (job, _) = worker.next_job().await;
            worker.done(&job, "ok");
        }
    });
    let mut ids = Vec::new();
    for _ in 0..n {
        let resp = chat(&orch, None, "m", false).await;
        assert_eq!(resp.status(), 200);
        ids.push(
            resp.headers()["x-basis-receipt-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    answers.abort();
    (orch, ids)
}

#[tokio::test]
async fn receipts_are_paged_in_issue_order_and_filtered() -> TestResult {
    let (orch, ids) = with_receipts(5).await;

    // Pages of 2, in issue order, every receipt once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = orch.at("/api/receipts");
        url.query_pairs_mut().append_pair("limit", "2");
        if let Some(a) = &after {
            url.query_pairs_mut().append_pair("after", a);
        }
        let page: Value = orch.http().get(url).send().await?.json().await?;
        for r in page["receipts"].as_array().unwrap() {
            basis::domain::verify_receipt_json(r)?;
            seen.push(r["receipt_id"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    assert_eq!(sorted_seen, sorted_ids);
    let other: Value = orch
        .http()
        .get(orch.at("/api/receipts?worker=nobody"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(other["receipts"], json!([]));
    let bad = orch
        .http()
        .get(orch.at("/api/receipts?after=x"))
        .send()
        .await?;
    assert_eq!(bad.status(), 400);
    Ok(())
}

#[tokio::test]
async fn an_exported_log_verifies_and_every_change_fails_at_its_line() -> TestResult {
    let (orch, _) = with_receipts(5).await;
    // The export verifies as a whole.
    let home = tempfile::tempdir()?;
    let log = home.path().join("receipts.jsonl");
    let log_arg = log.to_str().unwrap();
    let (code, out, err) = basis(
        &orch,
        home.path(),
        &["receipts", "export", "--out", log_arg, "--json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let exported: Value = serde_json::from_str(&out)?;
    assert_eq!(exported["receipts"], 5);
    let (code, out, err) = basis(
        &orch,
        home.path(),
        &["receipts", "verify-log", log_arg, "--json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let verified: Value = serde_json::from_str(&out)?;
    assert_eq!(verified["receipts"], 5);
    assert_eq!(verified["last_line_hash"], exported["last_line_hash"]);

    // Each change fails, at the line where the chain or the receipt breaks.
    let lines: Vec<String> = std::fs::read_to_string(&log)?
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 6, "five receipts and the end line");
    let fails_at = |lines: &[String], line: u64| {
        let path = home.path().join("changed.jsonl");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let (code, out, _) = basis(
            &orch,
            home.path(),
            &["receipts", "verify-log", path.to_str().unwrap(), "--json"],
        );
        assert_ne!(code, 0);
        let err: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(err["error"]["code"], "RECEIPT_LOG_INVALID");
        let message = err["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(&format!("line {line}:")), "{message}");
    };
    let mut edited = lines.clone();
    edited[2] = edited[2].replacen("\"simulated\":true", "\"simulated\":false", 1);
    assert_ne!(edited[2], lines[2]);
    fails_at(&edited, 3);
    let mut removed = lines.clone();
    removed.remove(1);
    fails_at(&removed, 2);
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    fails_at(&swapped, 4);
    fails_at(&lines[..5], 5);
    Ok(())
}

#[tokio::test]
async fn one_receipt_verifies_by_id_and_from_a_file_and_a_changed_one_does_not() -> TestResult {
    let (orch, ids) = with_receipts(2).await;
    let home = tempfile::tempdir()?;
    // One receipt: by id from the orchestrator, from a file, and a changed file refused.
    let (code, out, err) = basis(
        &orch,
        home.path(),
        &["receipt", "verify", &ids[0], "--json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let one: Value = serde_json::from_str(&out)?;
    assert_eq!(one["receipt_id"], ids[0].as_str());
    assert!(one["proves"].as_str().unwrap().contains("not signed"));
    let receipt: Value = orch
        .http()
        .get(orch.at(&format!("/api/receipts/{}", ids[1])))
        .send()
        .await?
        .json()
        .await?;
    // By its hash too (64 hex: a hash, not a secret, for this command).
    let hash = receipt["receipt_hash"].as_str().unwrap();
    let (code, out, err) = basis(&orch, home.path(), &["receipt", "verify", hash, "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let by_hash: Value = serde_json::from_str(&out)?;
    assert_eq!(by_hash["receipt_id"], ids[1].as_str());
    // --url names the orchestrator over the configured one.
    let out = Command::new(common::orchestrator::bin())
        .args([
            "receipt",
            "verify",
            hash,
            "--json",
            "--url",
            orch.url.as_str(),
        ])
        .env("BASIS_HOME", home.path())
        .env("BASIS_ORCHESTRATOR_URL", "http://127.0.0.1:1")
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let file = home.path().join("receipt.json");
    std::fs::write(&file, receipt.to_string())?;
    let (code, out, _) = basis(
        &orch,
        home.path(),
        &["receipt", "verify", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let mut changed = receipt.clone();
    changed["duration_ms"] = json!(changed["duration_ms"].as_u64().unwrap() + 1);
    std::fs::write(&file, changed.to_string())?;
    let (code, out, _) = basis(
        &orch,
        home.path(),
        &["receipt", "verify", file.to_str().unwrap(), "--json"],
    );
    assert_ne!(code, 0);
    let err: Value = serde_json::from_str(&out)?;
    assert_eq!(err["error"]["code"], "RECEIPT_INVALID");
    Ok(())
}
