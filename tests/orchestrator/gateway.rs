//! The OpenAI-compatible gateway: keys, 503 without a worker, non-streamed and streamed
//! completions with their headers and receipts, least-busy routing, capacity, job errors.

use basis::domain::{OutputHash, verify_receipt_json};

use super::fake_worker::*;
use super::*;

#[tokio::test]
async fn keys_and_no_worker() -> TestResult {
    let orch = fast();
    let key = client_key(&orch);
    let resp = chat(&orch, None, "echo", false).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await?["error"]["code"],
        "CLIENT_KEY_REQUIRED"
    );
    let resp = chat(&orch, Some("basis_client_nope"), "echo", false).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await?["error"]["code"],
        "CLIENT_KEY_INVALID"
    );
    let resp = orch.http().get(orch.at("/v1/models")).send().await?;
    assert_eq!(resp.status(), 401);
    // An admin key is not a client key.
    let admin = orch.create_key("admin").0.trim().to_owned();
    assert_eq!(chat(&orch, Some(&admin), "echo", false).await.status(), 401);

    let resp = chat(&orch, Some(&key), "echo", false).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await?;
    assert_eq!(body["error"]["code"], "NO_WORKER_AVAILABLE");
    assert!(body["error"]["fix"].is_string());
    let resp = orch
        .http()
        .post(orch.at("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "echo"}))
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    assert!(!orch.logs().contains(&key), "the client key was logged");
    Ok(())
}

#[tokio::test]
async fn open_mode_needs_no_key() -> TestResult {
    let orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: fast_toml(),
        ..Options::default()
    });
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    let request = tokio::spawn({
        let (http, url) = (orch.http(), orch.at("/v1/chat/completions"));
        async move {
            http.post(url)
                .json(&json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
        }
    });
    let (job, req) = w.next_job().await;
    assert_eq!(
        req["messages"][0]["content"], "hi",
        "the body reaches the worker as sent"
    );
    w.done(&job, "hello");
    assert_eq!(request.await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn a_non_streamed_completion_has_headers_and_a_verifiable_receipt() -> TestResult {
    let orch = fast();
    let key = client_key(&orch);
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    let request = tokio::spawn({
        let orch_http = (orch.http(), orch.at("/v1/chat/completions"), key.clone());
        async move {
            orch_http
                .0
                .post(orch_http.1)
                .bearer_auth(&orch_http.2)
                .json(&json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
        }
    });
    let (job, _) = w.next_job().await;
    w.chunk(&job, "Hel");
    w.chunk(&job, "lo.");
    w.done(&job, "Hello.");
    let ack = w
        .expect(|m| matches!(m, OrchestratorMessage::JobAck { .. }))
        .await;
    assert_eq!(
        ack,
        OrchestratorMessage::JobAck {
            job_id: job.clone()
        }
    );
    let resp = request.await?;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["x-basis-worker-id"], "gpu-1");
    assert_eq!(h["x-basis-job-id"], job.as_str());
    let hash = h["x-basis-receipt-hash"].to_str()?.to_owned();
    let rid = h["x-basis-receipt-id"].to_str()?.to_owned();
    let body: Value = resp.json().await?;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "echo");
    assert_eq!(
        body["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello."})
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
    );
    assert_eq!(body["basis_receipt_hash"], hash.as_str());

    for by in [&rid, &hash] {
        let receipt: Value = orch
            .http()
            .get(orch.at(&format!("/api/receipts/{by}")))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(verify_receipt_json(&receipt)?.to_string(), hash);
        assert_eq!(
            receipt["output_hash"],
            OutputHash::of(b"Hello.").to_string()
        );
        assert_eq!(receipt["kind"], "gateway_job");
        assert_eq!(receipt["job_id"], job.as_str());
        assert_eq!(receipt["worker_id"], "gpu-1");
        assert_eq!(receipt["wallet"], WALLET_CHECKSUMMED);
        assert_eq!(receipt["model"], "echo");
        assert_eq!(receipt["reward"], "0");
        assert_eq!(receipt["asset"], "USDC");
        assert_eq!(receipt["simulated"], true);
        assert_eq!(
            receipt["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 2})
        );
    }
    let missing = orch
        .http()
        .get(orch.at("/api/receipts/rcpt-00000000000000000000000000000000"))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await?["error"]["code"],
        "RECEIPT_NOT_FOUND"
    );
    assert_eq!(
        orch.http()
            .get(orch.at("/api/receipts/nope"))
            .send()
            .await?
            .status(),
        400
    );
    let r = wait_record(&orch, "gpu-1", |r| r["jobs_completed"] == 1).await;
    assert_eq!(r["jobs_failed"], 0);
    Ok(())
}

#[tokio::test]
async fn a_streamed_completion_forwards_chunks_as_they_arrive() -> TestResult {
    let orch = fast();
    let key = client_key(&orch);
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    let request = tokio::spawn({
        let (o, k) = (orch.http(), key.clone());
        let url = orch.at("/v1/chat/completions");
        async move {
            o.post(url).bearer_auth(k)
                .json(&json!({"model": "echo", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
                .send().await.unwrap()
        }
    });
    let (job, req) = w.next_job().await;
    assert_eq!(req["stream"], true);
    w.chunk(&job, "Hel");
    let resp = request.await?;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()?
            .starts_with("text/event-stream")
    );
    assert_eq!(resp.headers()["x-basis-worker-id"], "gpu-1");
    assert_eq!(resp.headers()["x-basis-job-id"], job.as_str());
    let mut sse = Sse::new(resp);
    // The first chunk arrives while the job is still running: nothing is buffered.
    let first: Value = serde_json::from_str(&sse.next().await.unwrap())?;
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role": "assistant", "content": "Hel"})
    );
    assert!(first["choices"][0]["finish_reason"].is_null());
    w.chunk(&job, "lo.");
    let second: Value = serde_json::from_str(&sse.next().await.unwrap())?;
    assert_eq!(second["choices"][0]["delta"], json!({"content": "lo."}));
    w.done(&job, "Hello.");
    let last: Value = serde_json::from_str(&sse.next().await.unwrap())?;
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["total_tokens"], 5);
    let hash = last["basis_receipt_hash"].as_str().unwrap().to_owned();
    assert_eq!(sse.next().await.as_deref(), Some("[DONE]"));
    assert_eq!(sse.next().await, None);
    let rid = last["basis_receipt_id"].as_str().unwrap();
    let receipt: Value = orch
        .http()
        .get(orch.at(&format!("/api/receipts/{rid}")))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(verify_receipt_json(&receipt)?.to_string(), hash);
    assert_eq!(
        receipt["output_hash"],
        OutputHash::of(b"Hello.").to_string()
    );
    Ok(())
}

#[tokio::test]
async fn routing_picks_the_least_busy_worker_and_respects_capacity() -> TestResult {
    // No wait queue: a request finding every worker at capacity is refused at once
    // (queueing has its own tests, tests/orchestrator/queueing.rs).
    let orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: format!("queue_timeout_ms = 0\n{}", fast_toml()),
        ..Options::default()
    });
    let ta = register(&orch, "gpu-a", &["m"]).await;
    let tb = register(&orch, "gpu-b", &["m", "other"]).await;
    let mut a = FakeWorker::connect(&orch, &ta, "gpu-a", &["m"], 2).await;
    let mut b = FakeWorker::connect(&orch, &tb, "gpu-b", &["m", "other"], 1).await;
    let send = |model: &'static str| {
        let (http, url) = (orch.http(), orch.at("/v1/chat/completions"));
        tokio::spawn(async move {
            http.post(url)
                .json(&json!({"model": model, "messages": [{"role": "user", "content": "x"}]}))
                .send()
                .await
                .unwrap()
        })
    };
    // "other" only on b: b is now busy (capacity 1).
    let r_other = send("other");
    let (job_b, _) = b.next_job().await;
    // Both serve m, b is full: a gets it; a has 1 of 2, b has 1 of 1, so a again; then none.
    let r1 = send("m");
    let (job_a1, _) = a.next_job().await;
    let r2 = send("m");
    let (job_a2, _) = a.next_job().await;
    let r3 = send("m").await?;
    assert_eq!(r3.status(), 503, "all at capacity");
    assert_eq!(
        r3.json::<Value>().await?["error"]["code"],
        "NO_WORKER_AVAILABLE"
    );
    // a finishes one: 1 of 2 busy vs b 1 of 1 full: a.
    a.done(&job_a1, "one");
    assert_eq!(r1.await?.headers()["x-basis-worker-id"], "gpu-a");
    b.done(&job_b, "other");
    assert_eq!(r_other.await?.headers()["x-basis-worker-id"], "gpu-b");
    // Now a has 1 busy, b has 0: the least busy is b.
    let r4 = send("m");
    let (job_four, _) = b.next_job().await;
    b.done(&job_four, "four");
    assert_eq!(r4.await?.headers()["x-basis-worker-id"], "gpu-b");
    a.done(&job_a2, "two");
    assert_eq!(r2.await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn a_job_error_is_a_502_with_the_mapped_code() -> TestResult {
    let orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: fast_toml(),
        ..Options::default()
    });
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    for stream in [false, true] {
        let request = tokio::spawn({
            let (http, url) = (orch.http(), orch.at("/v1/chat/completions"));
            async move {
                http.post(url).json(&json!({"model": "echo", "stream": stream, "messages": [{"role": "user", "content": "x"}]}))
                    .send().await.unwrap()
            }
        });
        let (job, _) = w.next_job().await;
        w.send(WorkerMessage::JobError {
            job_id: job.clone(),
            code: basis::wire::JobErrorCode::RuntimeDown,
            message: "ollama is not running".into(),
        });
        let resp = request.await?;
        assert_eq!(resp.status(), 502, "stream={stream}");
        assert_eq!(resp.headers()["x-basis-job-id"], job.as_str());
        let body: Value = resp.json().await?;
        assert_eq!(body["error"]["code"], "RUNTIME_DOWN");
        w.expect(|m| matches!(m, OrchestratorMessage::JobAck { .. }))
            .await;
    }
    let r = wait_record(&orch, "gpu-1", |r| r["jobs_failed"] == 2).await;
    assert_eq!(r["jobs_completed"], 0);
    Ok(())
}
