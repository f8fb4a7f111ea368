//! When things go wrong mid-job: the worker vanishes (the client hears at once, the job is
//! failed, no receipt), the client vanishes (the worker gets `cancel`), a result is re-sent
//! after a reconnect (acknowledged again, counted once), a job passes its deadline.

use super::fake_worker::*;
use super::*;

fn open_fast(extra: &str) -> Orchestrator {
    Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: format!("{extra}\n{}", fast_toml()),
        ..Options::default()
    })
}

fn post(orch: &Orchestrator, stream: bool) -> tokio::task::JoinHandle<reqwest::Response> {
    let (http, url) = (orch.http(), orch.at("/v1/chat/completions"));
    tokio::spawn(async move {
        http.post(url)
            .json(&json!({"model": "echo", "stream": stream, "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
            .unwrap()
    })
}

#[tokio::test]
async fn a_worker_lost_mid_stream_ends_the_stream_with_an_error_at_once() -> TestResult {
    let orch = open_fast("");
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    let request = post(&orch, true);
    let (job, _) = w.next_job().await;
    w.chunk(&job, "partial");
    let mut sse = Sse::new(request.await?);
    let first: Value = serde_json::from_str(&sse.next().await.unwrap())?;
    assert_eq!(first["choices"][0]["delta"]["content"], "partial");
    w.kill();
    let killed = Instant::now();
    let err: Value = serde_json::from_str(&sse.next().await.unwrap())?;
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "{:?}",
        killed.elapsed()
    );
    assert_eq!(err["error"]["code"], "WORKER_LOST");
    assert_eq!(
        sse.next().await,
        None,
        "the stream closes after the error, without [DONE]"
    );
    let r = wait_record(&orch, "gpu-1", |r| r["jobs_failed"] == 1).await;
    assert_eq!(r["jobs_completed"], 0);
    Ok(())
}

#[tokio::test]
async fn a_worker_lost_before_answering_is_a_502() -> TestResult {
    let orch = open_fast("");
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    let request = post(&orch, false);
    let (job, _) = w.next_job().await;
    w.chunk(&job, "partial");
    w.kill();
    let resp = request.await?;
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["x-basis-job-id"], job.as_str());
    assert!(resp.headers().get("x-basis-receipt-hash").is_none());
    assert_eq!(resp.json::<Value>().await?["error"]["code"], "WORKER_LOST");
    wait_record(&orch, "gpu-1", |r| {
        r["jobs_failed"] == 1 && r["online"] == false
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn a_worker_whose_heartbeats_lapse_mid_job_is_lost() -> TestResult {
    let orch = open_fast("");
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    let request = post(&orch, false);
    w.next_job().await;
    w.heartbeats(false, true);
    let silent = Instant::now();
    let resp = request.await?;
    assert_eq!(resp.status(), 502);
    assert!(
        silent.elapsed() < Duration::from_millis(4500),
        "{:?}",
        silent.elapsed()
    );
    wait_record(&orch, "gpu-1", |r| r["jobs_failed"] == 1).await;
    Ok(())
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_job() -> TestResult {
    let orch = open_fast("");
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    for stream in [true, false] {
        let request = post(&orch, stream);
        let (job, _) = w.next_job().await;
        w.chunk(&job, "a");
        if stream {
            let resp = request.await?;
            let mut sse = Sse::new(resp);
            sse.next().await.unwrap();
            drop(sse);
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            request.abort();
        }
        // The worker keeps producing until it hears the cancel.
        let cancel = tokio::time::timeout(PATIENCE, async {
            loop {
                w.chunk(&job, "b");
                if let Ok(Some(OrchestratorMessage::Cancel { job_id })) =
                    tokio::time::timeout(Duration::from_millis(50), w.recv()).await
                {
                    return job_id;
                }
            }
        })
        .await
        .expect("no cancel after the client left");
        assert_eq!(cancel, job, "stream={stream}");
        w.send(WorkerMessage::JobError {
            job_id: job.clone(),
            code: basis::wire::JobErrorCode::Cancelled,
            message: String::new(),
        });
        w.expect(|m| matches!(m, OrchestratorMessage::JobAck { job_id } if *job_id == job))
            .await;
    }
    // A cancelled job is nobody's failure.
    let r = record(&orch, "gpu-1").await;
    assert_eq!(
        (r["jobs_completed"].as_u64(), r["jobs_failed"].as_u64()),
        (Some(0), Some(0))
    );
    Ok(())
}

#[tokio::test]
async fn a_result_re_sent_after_a_reconnect_is_acknowledged_and_counted_once() -> TestResult {
    let orch = open_fast("");
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    let request = post(&orch, false);
    let (job, _) = w.next_job().await;
    w.done(&job, "once");
    w.expect(|m| matches!(m, OrchestratorMessage::JobAck { .. }))
        .await;
    let resp = request.await?;
    let hash = resp.headers()["x-basis-receipt-hash"].to_str()?.to_owned();
    // The same result again on this connection, then after a reconnect.
    w.done(&job, "once");
    w.expect(|m| matches!(m, OrchestratorMessage::JobAck { job_id } if *job_id == job))
        .await;
    w.kill();
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    w.done(&job, "once");
    let ack = w
        .expect(|m| matches!(m, OrchestratorMessage::JobAck { .. }))
        .await;
    assert_eq!(
        ack,
        OrchestratorMessage::JobAck {
            job_id: job.clone()
        }
    );
    let r = record(&orch, "gpu-1").await;
    assert_eq!(
        (r["jobs_completed"].as_u64(), r["jobs_failed"].as_u64()),
        (Some(1), Some(0))
    );
    let receipt: Value = orch
        .http()
        .get(orch.at(&format!("/api/receipts/{hash}")))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(receipt["job_id"], job.as_str());
    // A result for a job lost with its connection is acknowledged but stays failed.
    let request = post(&orch, false);
    let (lost, _) = w.next_job().await;
    w.kill();
    assert_eq!(request.await?.status(), 502);
    let w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    let mut w = w;
    w.done(&lost, "too late");
    w.expect(|m| matches!(m, OrchestratorMessage::JobAck { job_id } if *job_id == lost))
        .await;
    // The failure is recorded right after the client hears it; counted once, never completed.
    wait_record(&orch, "gpu-1", |r| r["jobs_failed"] == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = record(&orch, "gpu-1").await;
    assert_eq!(
        (r["jobs_completed"].as_u64(), r["jobs_failed"].as_u64()),
        (Some(1), Some(1))
    );
    Ok(())
}

#[tokio::test]
async fn a_job_past_its_deadline_is_a_504_and_cancelled() -> TestResult {
    let orch = open_fast("job_timeout_s = 1");
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    let request = post(&orch, false);
    let (job, _) = w.next_job().await;
    let resp = request.await?;
    assert_eq!(resp.status(), 504);
    assert_eq!(resp.json::<Value>().await?["error"]["code"], "JOB_TIMEOUT");
    w.expect(|m| matches!(m, OrchestratorMessage::Cancel { job_id } if *job_id == job))
        .await;
    w.send(WorkerMessage::JobError {
        job_id: job.clone(),
        code: basis::wire::JobErrorCode::Cancelled,
        message: String::new(),
    });
    wait_record(&orch, "gpu-1", |r| r["jobs_failed"] == 1).await;
    Ok(())
}
