//! Metered inference end to end (docs/SETTLEMENT.md, "Metered inference"), against the real
//! orchestrator process with `[pricing]` and an in-test worker on the worker channel (it stands
//! in for a vLLM worker, so the test controls exactly what is streamed and what is reported):
//! a worker that reports more tokens than it streamed is credited what it streamed; an
//! inflated prompt count is bounded by the request; the receipt records the counts and
//! amounts; the credit, the worker's pending rewards and the client key's charged amount are
//! written with it and reach a settlement batch; echo work and unpriced models pay 0; a float
//! or negative price stops the orchestrator at start, naming the key.

use std::process::Command;

use basis::domain::{JobId, Runtime, Usage, verify_receipt_json};
use basis::wire::{ADMIN_KEY_HEADER, JobTimings, WorkerMessage};

use super::fake_worker::*;
use super::*;

const MODEL: &str = "llama3.1:8b";
const UNPRICED: &str = "qwen2.5:7b";

/// 1 atomic unit per prompt token, 1,000 per completion token, the default 2.5 % fee.
fn priced() -> Orchestrator {
    Orchestrator::with(Options {
        toml: format!(
            "{}\n[tasks]\nmax_tokens_per_s = 1000000000\n\
             [pricing.models.\"{MODEL}\"]\nprompt_per_million = \"1000000\"\n\
             completion_per_million = \"1000000000\"\n\
             [settlement]\ntoken = \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\"\n\
             chain_id = 8453\nverifying_contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\n",
            fast_toml()
        ),
        ..Options::default()
    })
}

/// [`priced`], with an admin key and a client key.
fn priced_with_keys() -> (Orchestrator, String, String) {
    let orch = priced();
    let admin = orch.create_key("admin").0.trim().to_owned();
    let key = client_key(&orch);
    (orch, admin, key)
}

/// A registered, connected in-test worker `id` on the vLLM runtime serving `model`.
async fn vllm_worker(orch: &Orchestrator, id: &str, model: &str) -> FakeWorker {
    let token = register_on(orch, id, &[model], Runtime::Vllm).await;
    FakeWorker::connect_with(orch, &token, hello_on(id, &[model], 1, Runtime::Vllm)).await
}

fn done(job_id: &JobId, output: Option<&str>, prompt: u64, completion: u64) -> WorkerMessage {
    WorkerMessage::JobDone {
        job_id: job_id.clone(),
        output: output.map(str::to_owned),
        usage: Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
        },
        timings: JobTimings {
            first_token_ms: 1,
            total_ms: 2,
        },
        simulated: false,
    }
}

/// Starts a chat request for `model` in the background.
fn ask(
    orch: &Orchestrator,
    key: &str,
    model: &str,
    stream: bool,
) -> tokio::task::JoinHandle<reqwest::Response> {
    ask_with(orch, key, model, stream, &json!({}))
}

/// [`ask`] with more fields in the body.
fn ask_with(
    orch: &Orchestrator,
    key: &str,
    model: &str,
    stream: bool,
    extra: &Value,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let (http, url, key) = (orch.http(), orch.at("/v1/chat/completions"), key.to_owned());
    let mut body = json!({
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    tokio::spawn(async move {
        http.post(url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    })
}

async fn get(orch: &Orchestrator, path: &str, admin: Option<&str>) -> Value {
    let mut req = orch.http().get(orch.at(path));
    if let Some(admin) = admin {
        req = req.header(ADMIN_KEY_HEADER, admin);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// The receipt named by a non-streamed answer's header, verified.
async fn receipt_of(orch: &Orchestrator, id: &str) -> Value {
    let receipt = get(orch, &format!("/api/receipts/{id}"), None).await;
    verify_receipt_json(&receipt).expect("the receipt verifies");
    receipt
}

/// The client key's usage today, from the admin's `GET /api/keys`.
async fn key_usage(orch: &Orchestrator, admin: &str) -> Value {
    let keys = get(orch, "/api/keys", Some(admin)).await;
    keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "client")
        .unwrap()["usage_today"]
        .clone()
}

/// The client key's usage per day, over the API and with `basis orchestrator keys usage`.
async fn billed_per_day(orch: &Orchestrator, admin: &str) {
    let keys = get(orch, "/api/keys", Some(admin)).await;
    let id = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "client")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let report = get(orch, &format!("/api/keys/{id}/usage?days=7"), Some(admin)).await;
    assert_eq!(report["days"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["days"][0]["amount"], "3010");
    assert_eq!(report["days"][0]["day"], report["to_day"]);
    assert_eq!(report["total"]["amount"], "3010");
    assert_eq!(report["asset"], "USDC");
    let cli = |args: &[&str]| {
        Command::new(common::orchestrator::bin())
            .args([
                "orchestrator",
                "keys",
                "usage",
                &id,
                "--url",
                orch.url.as_str(),
            ])
            .args(args)
            .env("BASIS_ADMIN_KEY", admin)
            .output()
            .unwrap()
    };
    let out = cli(&["--days", "7", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["total"], report["total"]);
    let text = String::from_utf8_lossy(&cli(&[]).stdout).into_owned();
    assert!(text.contains("charged 0.00301 USDC"), "{text}");
    assert!(!text.contains(admin), "the admin key is never printed");
    let out = cli(&["--days", "0"]);
    assert!(!out.status.success(), "0 days is refused");
}

#[tokio::test]
async fn a_streamed_job_is_credited_what_was_streamed_not_what_was_reported() -> TestResult {
    let (orch, admin, key) = priced_with_keys();
    let mut w = vllm_worker(&orch, "gpu-1", MODEL).await;
    let request = ask(&orch, &key, MODEL, true);
    let (job, _) = w.next_job().await;
    // Three chunks with text and one empty: three tokens relayed. The worker claims a million.
    for delta in ["Hel", "", "lo", " there"] {
        w.chunk(&job, delta);
    }
    w.send(done(&job, None, 10, 1_000_000));
    let mut sse = Sse::new(request.await?);
    let mut last = Value::Null;
    while let Some(data) = sse.next().await {
        if data != "[DONE]" {
            last = serde_json::from_str(&data)?;
        }
    }
    // The client sees, and is billed, the credited tokens.
    assert_eq!(last["usage"]["completion_tokens"], 3, "{last}");
    assert_eq!(last["usage"]["prompt_tokens"], 10, "{last}");
    let receipt = receipt_of(&orch, last["basis_receipt_id"].as_str().unwrap()).await;
    assert_eq!(receipt["receipt_version"], 2);
    assert_eq!(
        receipt["usage"]["completion_tokens"], 1_000_000,
        "as reported"
    );
    let m = &receipt["metering"];
    assert_eq!(m["relayed"]["completion_tokens"], 3, "{receipt}");
    assert_eq!(
        m["credited"],
        json!({"prompt_tokens": 10, "completion_tokens": 3})
    );
    // 10 × 1 + 3 × 1,000 = 3,010; fee 2.5 % = 75 (rounded down); owed 2,935.
    assert_eq!(m["gross"], "3010");
    assert_eq!(m["fee"], "75");
    assert_eq!(receipt["reward"], "2935");
    assert!(m.get("unpaid").is_none(), "{m}");

    let rewards = get(&orch, "/api/workers/gpu-1/rewards", None).await;
    assert_eq!(rewards["pending"], "2935", "{rewards}");
    assert_eq!(rewards["credits"][0]["job_id"], job.as_str());
    assert!(rewards["credits"][0].get("task_id").is_none());
    assert_eq!(
        rewards["credits"][0]["receipt_hash"],
        receipt["receipt_hash"]
    );
    let usage = key_usage(&orch, &admin).await;
    assert_eq!(
        usage,
        json!({"requests": 1, "prompt_tokens": 10, "completion_tokens": 3, "amount": "3010"})
    );
    billed_per_day(&orch, &admin).await;
    assert_eq!(record(&orch, "gpu-1").await["rewards_pending"], "2935");

    // The job's credit settles like a task's (the watermark is in whole seconds: a close in
    // the job's own second would leave it for the next batch).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let closed: Value = orch
        .http()
        .post(orch.at("/api/settlement/batches"))
        .header(ADMIN_KEY_HEADER, &admin)
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(closed["batch"]["total"], "2935", "{closed}");
    let rewards = get(&orch, "/api/workers/gpu-1/rewards", None).await;
    assert_eq!(rewards["batched"], "2935", "{rewards}");
    assert_eq!(rewards["credits"][0]["status"], "batched");
    let metrics = orch.metrics().await;
    for state in ["credited", "batched"] {
        let line = format!(
            "basis_orchestrator_rewards_atomic_total{{state=\"{state}\",asset=\"USDC\"}} 2935"
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    Ok(())
}

#[tokio::test]
async fn an_answer_sent_whole_is_bounded_by_its_request_and_its_bytes() -> TestResult {
    let (orch, admin, key) = priced_with_keys();
    let mut w = vllm_worker(&orch, "gpu-1", MODEL).await;
    let request = ask(&orch, &key, MODEL, false);
    let (job, _) = w.next_job().await;
    // A million prompt tokens for "hi"; 50 completion tokens for a 6-byte answer.
    w.send(done(&job, Some("Hello!"), 1_000_000, 50));
    let resp = request.await?;
    assert_eq!(resp.status(), 200);
    let rid = resp.headers()["x-basis-receipt-id"].to_str()?.to_owned();
    let body: Value = resp.json().await?;
    let receipt = receipt_of(&orch, &rid).await;
    // The prompt bound: 64 per request, 4 per JSON value (the array, the message, two
    // strings), and the bytes of "role", "user", "content", "hi".
    let bound = 64 + 4 * 4 + 4 + 4 + 7 + 2;
    assert_eq!(
        receipt["metering"]["credited"],
        json!({"prompt_tokens": bound, "completion_tokens": 6}),
        "{receipt}"
    );
    assert_eq!(body["usage"]["prompt_tokens"], bound);
    let gross = bound + 6 * 1000;
    assert_eq!(receipt["metering"]["gross"], gross.to_string());
    assert_eq!(key_usage(&orch, &admin).await["amount"], gross.to_string());

    // Never more completion tokens than the request allowed: max_tokens 2 × n 2.
    let request = ask_with(&orch, &key, MODEL, false, &json!({"max_tokens": 2, "n": 2}));
    let (job, _) = w.next_job().await;
    w.send(done(&job, Some("Hello there, a long answer!"), 5, 500));
    let resp = request.await?;
    let receipt = receipt_of(&orch, resp.headers()["x-basis-receipt-id"].to_str()?).await;
    assert_eq!(
        receipt["metering"]["relayed"]["completion_tokens"], 4,
        "{receipt}"
    );
    assert_eq!(receipt["metering"]["credited"]["completion_tokens"], 4);
    let metrics = orch.metrics().await;
    for (kind, jobs) in [("prompt", 1), ("completion", 2)] {
        let line =
            format!("basis_orchestrator_gateway_usage_capped_total{{kind=\"{kind}\"}} {jobs}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    Ok(())
}

#[tokio::test]
async fn echo_work_and_unpriced_models_pay_nothing_and_write_no_credit() -> TestResult {
    let (orch, admin, key) = priced_with_keys();
    // An echo worker serving the priced model: simulated, 0.
    let token = register(&orch, "sim-1", &[MODEL]).await;
    let mut echo = FakeWorker::connect(&orch, &token, "sim-1", &[MODEL], 1).await;
    let request = ask(&orch, &key, MODEL, false);
    let (job, _) = echo.next_job().await;
    echo.send(done(&job, Some("Hello!"), 3, 2));
    let resp = request.await?;
    let receipt = receipt_of(&orch, resp.headers()["x-basis-receipt-id"].to_str()?).await;
    assert_eq!(receipt["simulated"], true);
    assert_eq!(receipt["metering"]["unpaid"], "simulated", "{receipt}");
    assert_eq!(receipt["reward"], "0");
    drop(echo);

    // A vLLM worker serving a model without a price: 0, and nothing unpaid about it.
    let mut w = vllm_worker(&orch, "gpu-2", UNPRICED).await;
    let request = ask(&orch, &key, UNPRICED, false);
    let (job, _) = w.next_job().await;
    w.send(done(&job, Some("Hello!"), 3, 2));
    let resp = request.await?;
    let receipt = receipt_of(&orch, resp.headers()["x-basis-receipt-id"].to_str()?).await;
    assert_eq!(receipt["metering"]["gross"], "0");
    assert_eq!(receipt["metering"]["price"]["completion_per_million"], "0");
    assert_eq!(receipt["reward"], "0");
    assert!(receipt["metering"].get("unpaid").is_none(), "{receipt}");

    for worker in ["sim-1", "gpu-2"] {
        let rewards = get(&orch, &format!("/api/workers/{worker}/rewards"), None).await;
        assert_eq!(rewards["accrued"], "0", "{rewards}");
        assert_eq!(rewards["credits"], json!([]), "no credit row for {worker}");
    }
    let usage = key_usage(&orch, &admin).await;
    assert_eq!(usage["requests"], 2);
    assert_eq!(usage["amount"], "0");
    Ok(())
}

#[test]
fn a_float_or_negative_price_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (line, says) in [
        (
            "completion_per_million = 0.3",
            "completion_per_million is a float",
        ),
        (
            "completion_per_million = -3",
            "completion_per_million is negative",
        ),
        (
            "completion_per_million = \"-3\"",
            "completion_per_million is not a whole",
        ),
    ] {
        let config = dir.path().join("orchestrator.toml");
        std::fs::write(
            &config,
            format!("[pricing.models.\"{MODEL}\"]\nprompt_per_million = \"1\"\n{line}\n"),
        )
        .unwrap();
        let out = Command::new(common::orchestrator::bin())
            .args(["orchestrator", "--listen", "127.0.0.1:0", "--db"])
            .arg(dir.path().join("o.db"))
            .arg("--config")
            .arg(&config)
            .env("BASIS_HOME", dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{line} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("[pricing.models.\"{MODEL}\"]")) && stderr.contains(says),
            "{line}: {stderr}"
        );
    }
}
