//! The worker channel (docs/PROTOCOL.md, "Worker channel") from the orchestrator's side: token auth
//! before the upgrade, hello → welcome, heartbeats and the online window, readiness, and what the
//! registry shows.

use super::fake_worker::*;
use super::*;

#[tokio::test]
async fn a_legacy_upgrade_needs_a_registered_workers_token() -> TestResult {
    let orch = fast();
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let wrong = WorkerToken::generate();
    assert_eq!(
        open(&orch, Some(wrong.expose_secret())).await.err(),
        Some(401)
    );
    assert_eq!(open(&orch, Some("not-a-token")).await.err(), Some(401));
    let resp = orch
        .http()
        .get(orch.at("/api/workers/connect"))
        .bearer_auth(wrong.expose_secret())
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await?["error"]["code"],
        "WORKER_TOKEN_INVALID"
    );
    // Without a credential the upgrade happens, and a challenge comes first: a legacy hello
    // without a proof is refused.
    let mut ws = open(&orch, None).await.expect("upgraded");
    assert!(matches!(
        recv_frame(&mut ws).await,
        Some(OrchestratorMessage::Challenge { .. })
    ));
    send_frame(&mut ws, &hello("gpu-1", &["echo"], 1)).await;
    match recv_frame(&mut ws).await {
        Some(OrchestratorMessage::Error { code, .. }) => {
            assert_eq!(code, "WORKER_SIGNATURE_INVALID");
        }
        other => panic!("{other:?}"),
    }
    assert!(open(&orch, Some(token.expose_secret())).await.is_ok());
    assert!(
        !orch.logs().contains(token.expose_secret()),
        "the token was logged"
    );
    assert!(
        !orch.logs().contains(wrong.expose_secret()),
        "a wrong token was logged"
    );
    Ok(())
}

#[tokio::test]
async fn hello_must_come_first_and_match_the_token() -> TestResult {
    let orch = fast();
    let token = register(&orch, "gpu-1", &["echo"]).await;
    register(&orch, "gpu-2", &["echo"]).await;
    let cases = [
        (
            WorkerMessage::Heartbeat {
                seq: 1,
                in_flight: 0,
                ready: true,
            },
            "HELLO_REQUIRED",
        ),
        (hello("gpu-2", &["echo"], 1), "WORKER_ID_MISMATCH"),
        (
            match hello("gpu-1", &["echo"], 1) {
                WorkerMessage::Hello {
                    worker_id,
                    version,
                    runtime,
                    models,
                    capacity,
                    ..
                } => WorkerMessage::Hello {
                    protocol: 2,
                    worker_id,
                    version,
                    runtime,
                    models,
                    capacity,
                    proof: None,
                },
                other => other,
            },
            "PROTOCOL_UNSUPPORTED",
        ),
        (hello("gpu-1", &["echo"], 0), "INVALID_HELLO"),
        // A worker serves only what its registration says: no model it never registered…
        (
            hello("gpu-1", &["echo", "gpt-4o"], 1),
            "HELLO_NOT_REGISTERED",
        ),
        // …and no other runtime.
        (
            match hello("gpu-1", &["echo"], 1) {
                WorkerMessage::Hello {
                    protocol,
                    worker_id,
                    version,
                    models,
                    capacity,
                    ..
                } => WorkerMessage::Hello {
                    protocol,
                    worker_id,
                    version,
                    runtime: basis::domain::Runtime::Vllm,
                    models,
                    capacity,
                    proof: None,
                },
                other => other,
            },
            "HELLO_NOT_REGISTERED",
        ),
    ];
    for (first, code) in cases {
        let mut ws = open(&orch, Some(token.expose_secret())).await.unwrap();
        send_frame(&mut ws, &first).await;
        match recv_frame(&mut ws).await {
            Some(OrchestratorMessage::Error { code: got, .. }) => assert_eq!(got, code),
            other => panic!("expected error {code}, got {other:?}"),
        }
        assert!(
            recv_frame(&mut ws).await.is_none(),
            "the connection stays open after {code}"
        );
    }
    assert_eq!(record(&orch, "gpu-1").await["online"], false);
    Ok(())
}

#[tokio::test]
async fn online_within_the_window_then_offline_after_it() -> TestResult {
    let orch = fast();
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let status: Value = orch
        .http()
        .get(orch.at("/api/workers/onboarding/status"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        (
            status["job_routing"].as_bool(),
            status["can_receive_jobs"].as_bool()
        ),
        (Some(true), Some(false))
    );

    let before = basis_now();
    let mut w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    assert_eq!(
        w.welcome,
        OrchestratorMessage::Welcome {
            heartbeat_interval_s: 1,
            online_window_s: 2
        }
    );
    let r = wait_record(&orch, "gpu-1", |r| r["online"] == true).await;
    assert!(r["connected_since"].as_u64().unwrap() >= before);
    assert!(r["last_seen"].as_u64().unwrap() >= before);
    assert_eq!(
        (r["jobs_completed"].as_u64(), r["jobs_failed"].as_u64()),
        (Some(0), Some(0))
    );
    let status: Value = orch
        .http()
        .get(orch.at("/api/workers/onboarding/status"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(status["can_receive_jobs"], true);

    // Still online for as long as heartbeats come.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(record(&orch, "gpu-1").await["online"], true);

    // Silence: offline once the 2 s window lapses, and the orchestrator closes the connection.
    w.heartbeats(false, true);
    let silent = Instant::now();
    let closed = w
        .expect(|m| matches!(m, OrchestratorMessage::Error { .. }))
        .await;
    assert!(
        matches!(closed, OrchestratorMessage::Error { code, .. } if code == "HEARTBEAT_LAPSED")
    );
    assert!(
        silent.elapsed() < Duration::from_millis(4500),
        "{:?}",
        silent.elapsed()
    );
    let r = wait_record(&orch, "gpu-1", |r| r["online"] == false).await;
    assert!(r["connected_since"].is_null());
    assert!(r["last_seen"].as_u64().unwrap() >= before);
    Ok(())
}

#[tokio::test]
async fn a_worker_that_is_not_ready_gets_nothing() -> TestResult {
    let mut orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: fast_toml(),
        ..Options::default()
    });
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    w.heartbeats(true, false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let models: Value = orch
        .http()
        .get(orch.at("/v1/models"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(models["data"], json!([]), "{models}");
    let resp = chat(&orch, None, "echo", false).await;
    assert_eq!(resp.status(), 503);
    // Online (it heartbeats) but not routable.
    assert_eq!(record(&orch, "gpu-1").await["online"], true);
    w.heartbeats(true, true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let models: Value = orch
        .http()
        .get(orch.at("/v1/models"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "echo");
    orch.kill();
    Ok(())
}

#[tokio::test]
async fn a_disconnect_is_offline_at_once() -> TestResult {
    let orch = fast();
    let token = register(&orch, "gpu-1", &["echo"]).await;
    let w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    wait_record(&orch, "gpu-1", |r| r["online"] == true).await;
    w.kill();
    let gone = Instant::now();
    wait_record(&orch, "gpu-1", |r| r["online"] == false).await;
    assert!(
        gone.elapsed() < Duration::from_secs(2),
        "{:?}",
        gone.elapsed()
    );
    // A reconnect replaces nothing stale: online again.
    let _w = FakeWorker::connect(&orch, &token, "gpu-1", &["echo"], 1).await;
    wait_record(&orch, "gpu-1", |r| r["online"] == true).await;
    Ok(())
}

fn basis_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
