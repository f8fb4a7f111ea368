//! Settlement over HTTP: evaluator keys, a pass credited with the protocol fee (visible in
//! the rewards ledger and the worker record) and a receipt that verifies offline, echo work
//! credited 0 as simulated, evaluating twice, a rejection disputed (in and after the window)
//! and resolved by the operator through `basis orchestrator tasks resolve`, the
//! evaluator-timeout policy, and kill -9 between submit and evaluate.

use basis::domain::{Runtime, verify_receipt_json};

use super::fake_worker::record;
use super::market::*;
use super::*;

fn verdict(score: u8, passed: bool, reason: &str) -> Value {
    json!({"score": score, "passed": passed, "reasons": [reason]})
}

fn evaluator_key(orch: &Orchestrator) -> String {
    orch.create_key("evaluator").0.trim().to_owned()
}

#[tokio::test]
async fn a_pass_is_credited_with_the_fee_and_its_receipt_verifies() -> TestResult {
    let orch = market("");
    let key = evaluator_key(&orch);
    let (task, sub, _) = submitted(&orch, "gpu-1", Runtime::Vllm, "A fox jumps over a dog.").await;
    let path = format!("/api/submissions/{sub}/evaluate");
    // Without an evaluator key, with a wrong one, with a client key.
    evaluate(&orch, &sub, None, &verdict(90, true, "good"))
        .await
        .refused(401, "EVALUATOR_KEY_REQUIRED");
    evaluate(
        &orch,
        &sub,
        Some("basis_evaluator_nope"),
        &verdict(90, true, "good"),
    )
    .await
    .refused(401, "EVALUATOR_KEY_INVALID");
    let client = orch.create_key("client").0.trim().to_owned();
    evaluate(&orch, &sub, Some(&client), &verdict(90, true, "good"))
        .await
        .refused(401, "EVALUATOR_KEY_INVALID");
    // Bounds.
    evaluate(
        &orch,
        &sub,
        Some(&key),
        &json!({"score": 101, "passed": true, "reasons": []}),
    )
    .await
    .refused(400, "INVALID_ARGUMENT");
    evaluate(
        &orch,
        &sub,
        Some(&key),
        &json!({"score": 10, "passed": false, "reasons": []}),
    )
    .await
    .refused(400, "INVALID_ARGUMENT");
    let a = post(
        &orch,
        &path,
        Some(&key),
        &verdict(90, true, "one sentence, mentions the fox"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "completed");
    assert_eq!(a.body["auto_evaluated"], false);
    let credit = &a.body["credit"];
    assert_eq!(
        (
            credit["gross"].as_str(),
            credit["fee"].as_str(),
            credit["net"].as_str()
        ),
        (Some("1000000"), Some("25000"), Some("975000"))
    );
    assert!(credit.get("unpaid").is_none(), "{credit}");
    assert_eq!(credit["wallet"], WALLET_CHECKSUMMED);
    let expected = basis::domain::Evaluation {
        score: 90,
        passed: true,
        reasons: vec!["one sentence, mentions the fox".into()],
        metric: None,
    }
    .attestation_hash()?;
    assert_eq!(a.body["attestation_hash"], expected.to_string());
    // The receipt verifies from its JSON alone and says what was paid.
    let rid = a.body["receipt_id"].as_str().unwrap();
    let receipt = get(&orch, &format!("/api/receipts/{rid}")).await.body;
    let hash = verify_receipt_json(&receipt)?;
    assert_eq!(a.body["receipt_hash"], hash.to_string());
    assert_eq!(credit["receipt_hash"], hash.to_string());
    assert_eq!(receipt["kind"], "task_settlement");
    assert_eq!(receipt["reward"], "975000");
    assert_eq!(receipt["task_id"], task.as_str());
    assert_eq!(receipt["submission_id"], sub.as_str());
    assert_eq!(receipt["attestation_hash"], expected.to_string());
    assert_eq!(receipt["simulated"], false);
    // The ledger and the worker record agree.
    let rewards = get(&orch, "/api/workers/gpu-1/rewards").await.body;
    assert_eq!(rewards["pending"], "975000");
    assert_eq!(rewards["asset"], "USDC");
    assert_eq!(rewards["credits"][0], *credit);
    assert_eq!(record(&orch, "gpu-1").await["rewards_pending"], "975000");
    get(&orch, "/api/workers/gpu-zz/rewards")
        .await
        .refused(404, "WORKER_NOT_FOUND");
    // Evaluating twice is refused; nothing changes.
    evaluate(
        &orch,
        &sub,
        Some(&key),
        &verdict(10, false, "changed my mind"),
    )
    .await
    .refused(409, "ALREADY_EVALUATED");
    assert_eq!(get(&orch, "/api/workers/gpu-1/rewards").await.body, rewards);
    assert!(!orch.logs().contains(&key), "the evaluator key was logged");
    Ok(())
}

#[tokio::test]
async fn echo_work_is_credited_zero_as_simulated() -> TestResult {
    let orch = market("");
    let key = evaluator_key(&orch);
    let (_, sub, _) = submitted(&orch, "echo-1", Runtime::Echo, "A fox jumps over a dog.").await;
    let a = evaluate(&orch, &sub, Some(&key), &verdict(100, true, "fine")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "completed");
    assert_eq!(a.body["credit"]["unpaid"], "simulated");
    assert_eq!(a.body["credit"]["net"], "0");
    assert_eq!(a.body["credit"]["gross"], "0");
    let rid = a.body["receipt_id"].as_str().unwrap();
    let receipt = get(&orch, &format!("/api/receipts/{rid}")).await.body;
    verify_receipt_json(&receipt)?;
    assert_eq!(
        (receipt["simulated"].as_bool(), receipt["reward"].as_str()),
        (Some(true), Some("0"))
    );
    assert_eq!(
        get(&orch, "/api/workers/echo-1/rewards").await.body["pending"],
        "0"
    );
    Ok(())
}

#[tokio::test]
async fn output_faster_than_any_gpu_or_echoing_the_input_pays_nothing() -> TestResult {
    let orch = market("");
    let key = evaluator_key(&orch);
    // 8,000 bytes ≈ 2,000 tokens in well under the second 2,000 tokens/s would need.
    let token = worker(&orch, "gpu-1", Runtime::Vllm, true).await;
    let task = post_task(&orch, &task_body("1000")).await;
    assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
    let s = submit(
        &orch,
        &task,
        &token,
        &output_body("gpu-1", &"fast ".repeat(1600)),
    )
    .await;
    assert_eq!(s.status, 201, "{}", s.text);
    let sub = s.body["submission_id"].as_str().unwrap();
    let a = evaluate(&orch, sub, Some(&key), &verdict(100, true, "fine")).await;
    assert_eq!(
        (
            a.body["credit"]["unpaid"].as_str(),
            a.body["credit"]["net"].as_str()
        ),
        (Some("too_fast"), Some("0"))
    );
    // The input's own text back.
    let task = post_task(&orch, &task_body("1000")).await;
    assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let echoed = "Summarise: the quick brown fox jumps over the lazy dog.";
    let s = submit(&orch, &task, &token, &output_body("gpu-1", echoed)).await;
    let sub = s.body["submission_id"].as_str().unwrap();
    let a = evaluate(&orch, sub, Some(&key), &verdict(100, true, "fine")).await;
    assert_eq!(a.body["credit"]["unpaid"], "echoed_input", "{}", a.text);
    assert_eq!(
        get(&orch, "/api/workers/gpu-1/rewards").await.body["pending"],
        "0"
    );
    Ok(())
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one dispute, start to end
async fn a_rejection_is_disputed_and_resolved_by_the_operator() -> TestResult {
    let orch = market("dispute_window_s = 60");
    let key = evaluator_key(&orch);
    let admin = orch.create_key("admin").0.trim().to_owned();
    let (_, sub, token) = submitted(&orch, "gpu-1", Runtime::Vllm, "A fox jumps over a dog.").await;
    let a = evaluate(
        &orch,
        &sub,
        Some(&key),
        &verdict(40, false, "misses the dog"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["status"], "rejected");
    assert!(a.body.get("credit").is_none());
    assert!(a.body["dispute_deadline"].as_u64().unwrap() >= basis_now() + 58);
    let rejected = get(
        &orch,
        &format!("/api/receipts/{}", a.body["receipt_id"].as_str().unwrap()),
    )
    .await
    .body;
    verify_receipt_json(&rejected)?;
    assert_eq!(rejected["reward"], "0");
    let dispute_path = format!("/api/submissions/{sub}/dispute");
    let reason = json!({"worker_id": "gpu-1", "reason": "it does mention the dog"});
    // Another worker cannot dispute it; a secret in the reason is refused.
    let other = worker(&orch, "gpu-2", Runtime::Vllm, false).await;
    post(
        &orch,
        &dispute_path,
        Some(other.expose_secret()),
        &json!({"worker_id": "gpu-2", "reason": "mine"}),
    )
    .await
    .refused(409, "NOT_DISPUTABLE");
    let secret = json!({"worker_id": "gpu-1", "reason": format!("key {PRIVATE_KEY}")});
    let s = post(&orch, &dispute_path, Some(token.expose_secret()), &secret).await;
    s.refused(400, "SECRET_REFUSED");
    assert!(!s.text.contains(PRIVATE_KEY));
    let d = post(&orch, &dispute_path, Some(token.expose_secret()), &reason).await;
    assert_eq!(d.status, 200, "{}", d.text);
    assert_eq!(d.body["status"], "disputed");
    assert_eq!(d.body["dispute"]["reason"], "it does mention the dog");
    post(&orch, &dispute_path, Some(token.expose_secret()), &reason)
        .await
        .refused(409, "NOT_DISPUTABLE");
    // Resolving needs the admin key.
    let resolve_path = format!("/api/submissions/{sub}/resolve");
    let decision = json!({"outcome": "completed", "note": "it does"});
    call(
        &orch,
        reqwest::Method::POST,
        &resolve_path,
        None,
        None,
        Some(&decision),
    )
    .await
    .refused(401, "ADMIN_KEY_REQUIRED");
    call(
        &orch,
        reqwest::Method::POST,
        &resolve_path,
        None,
        Some("basis_admin_nope"),
        Some(&decision),
    )
    .await
    .refused(401, "ADMIN_KEY_REQUIRED");
    call(
        &orch,
        reqwest::Method::POST,
        &resolve_path,
        None,
        Some(&admin),
        Some(&json!({"outcome": "open"})),
    )
    .await
    .refused(400, "INVALID_ARGUMENT");
    // The operator's CLI, with the key in the environment.
    let out = std::process::Command::new(crate::common::orchestrator::bin())
        .args([
            "orchestrator",
            "tasks",
            "resolve",
            &sub,
            "--outcome",
            "completed",
        ])
        .args([
            "--note",
            "the dog is mentioned",
            "--json",
            "--url",
            orch.url.as_str(),
        ])
        .env("BASIS_ADMIN_KEY", &admin)
        .output()?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains(&admin));
    let resolved: Value = serde_json::from_str(&stdout)?;
    assert_eq!(resolved["status"], "completed");
    assert_eq!(resolved["dispute"]["resolution"], "completed");
    assert_eq!(
        resolved["dispute"]["resolution_note"],
        "the dog is mentioned"
    );
    assert_eq!(resolved["credit"]["net"], "975000");
    let receipt = get(
        &orch,
        &format!("/api/receipts/{}", resolved["receipt_id"].as_str().unwrap()),
    )
    .await
    .body;
    verify_receipt_json(&receipt)?;
    assert_eq!(receipt["reward"], "975000");
    assert_eq!(record(&orch, "gpu-1").await["rewards_pending"], "975000");
    // Nothing left to resolve; the CLI says so with the code.
    let out = std::process::Command::new(crate::common::orchestrator::bin())
        .args([
            "orchestrator",
            "tasks",
            "resolve",
            &sub,
            "--outcome",
            "rejected",
            "--json",
        ])
        .args(["--url", orch.url.as_str()])
        .env("BASIS_ADMIN_KEY", &admin)
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stdout)?.contains("NOT_DISPUTED"));
    // Without any key the CLI refuses before calling.
    let out = std::process::Command::new(crate::common::orchestrator::bin())
        .args([
            "orchestrator",
            "tasks",
            "resolve",
            &sub,
            "--outcome",
            "rejected",
            "--json",
        ])
        .args(["--url", orch.url.as_str()])
        .env_remove("BASIS_ADMIN_KEY")
        .output()?;
    assert!(String::from_utf8(out.stdout)?.contains("ADMIN_KEY_REQUIRED"));
    assert!(!orch.logs().contains(&admin), "the admin key was logged");
    Ok(())
}

#[tokio::test]
async fn a_dispute_after_the_window_is_refused() -> TestResult {
    let orch = market("dispute_window_s = 1");
    let key = evaluator_key(&orch);
    let (_, sub, token) = submitted(&orch, "gpu-1", Runtime::Vllm, "A fox jumps over a dog.").await;
    let a = evaluate(&orch, &sub, Some(&key), &verdict(10, false, "wrong")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let reason = json!({"worker_id": "gpu-1", "reason": "too late?"});
    post(
        &orch,
        &format!("/api/submissions/{sub}/dispute"),
        Some(token.expose_secret()),
        &reason,
    )
    .await
    .refused(409, "DISPUTE_WINDOW_CLOSED");
    Ok(())
}

#[tokio::test]
async fn no_evaluation_before_the_deadline_applies_the_policy() -> TestResult {
    let orch = market("evaluation_timeout_s = 1\nevaluator_timeout_policy = \"auto_complete\"");
    let (_, sub, token) = submitted(&orch, "gpu-1", Runtime::Vllm, "A fox jumps over a dog.").await;
    let path = format!("/api/submissions/{sub}");
    let s = wait_for(&orch, &path, Some(token.expose_secret()), |s| {
        s["status"] == "completed"
    })
    .await;
    assert_eq!(s["auto_evaluated"], true);
    assert_eq!(s["evaluation"]["score"], 70);
    assert_eq!(s["evaluation"]["passed"], true);
    assert_eq!(
        s["evaluation"]["reasons"][0],
        "no evaluation before the deadline; auto-completed by policy"
    );
    assert_eq!(s["credit"]["net"], "975000");
    let key = evaluator_key(&orch);
    evaluate(&orch, &sub, Some(&key), &verdict(10, false, "late"))
        .await
        .refused(409, "ALREADY_EVALUATED");
    Ok(())
}

#[tokio::test]
async fn kill_9_between_submit_and_evaluate_loses_nothing() -> TestResult {
    let mut orch = market("");
    let key = evaluator_key(&orch);
    let (task, sub, token) =
        submitted(&orch, "gpu-1", Runtime::Vllm, "A fox jumps over a dog.").await;
    let before = read_submission(&orch, &sub, &key).await.body;
    orch.kill();
    orch.restart();
    let after = read_submission(&orch, &sub, token.expose_secret())
        .await
        .body;
    assert_eq!(after, before);
    assert_eq!(
        get(&orch, &format!("/api/tasks/{task}")).await.body["status"],
        "submitted"
    );
    let a = evaluate(&orch, &sub, Some(&key), &verdict(95, true, "good")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["credit"]["net"], "975000");
    // And the settlement itself survives the next kill.
    orch.kill();
    orch.restart();
    let settled = read_submission(&orch, &sub, &key).await.body;
    assert_eq!(settled, a.body);
    assert_eq!(record(&orch, "gpu-1").await["rewards_pending"], "975000");
    Ok(())
}
