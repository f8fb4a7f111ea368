//! Bad bodies, kill -9, concurrent registrations, SIGTERM, and an unreachable orchestrator.

use super::*;

#[tokio::test]
async fn oversized_and_malformed_bodies_get_json_errors() -> TestResult {
    let orch = Orchestrator::start();
    let http = orch.http();
    let mut big = raw_body("gpu-1", WALLET_LOWER, &WorkerToken::generate());
    big["models"] = json!(vec!["m".repeat(100); 1000]);
    let resp = http
        .post(orch.at("/api/workers/register"))
        .header("content-type", "application/json")
        .body(big.to_string())
        .send()
        .await?;
    assert_eq!(resp.status(), 413);
    let body: Value = resp.json().await?;
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");

    for bad in ["{\"worker_id\": ", "not json", "{\"a\":1,}"] {
        let resp = http
            .post(orch.at("/api/workers/register"))
            .header("content-type", "application/json")
            .body(bad)
            .send()
            .await?;
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await?;
        assert_eq!(body["error"]["code"], "INVALID_JSON");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("line 1"),
            "{body}"
        );
    }
    let (status, body, _) = post_raw(&orch, &json!({"worker_id": "gpu-1"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_JSON"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("wallet")
    );

    let resp = http
        .post(orch.at("/api/workers/register"))
        .body("{}")
        .send()
        .await?;
    assert_eq!(resp.status(), 415);
    assert_eq!(resp.json::<Value>().await?["error"]["code"], "INVALID_JSON");
    let resp = http.get(orch.at("/no/such/route")).send().await?;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await?["error"]["code"], "NOT_FOUND");
    Ok(())
}

#[tokio::test]
async fn an_acknowledged_registration_survives_kill_9() -> TestResult {
    let mut orch = Orchestrator::start();
    let token = WorkerToken::generate();
    let out = orch
        .client()
        .register(&request("gpu-1", &token), None, None)
        .await?;
    assert!(out.created);
    orch.kill(); // SIGKILL right after the 201
    orch.restart();
    let got = orch.client().worker(&WorkerId::parse("gpu-1")?).await?;
    assert_eq!(got, out.record);
    // And the token still proves ownership after the restart.
    let mut update = request("gpu-1", &token);
    update.version = "0.2.0".into();
    orch.client().register(&update, Some(&token), None).await?;
    Ok(())
}

#[tokio::test]
async fn concurrent_registrations_of_one_id_have_exactly_one_winner() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    let calls = (0..20).map(|_| {
        let client = client.clone();
        async move {
            let token = WorkerToken::generate();
            client
                .register(&request("contested", &token), None, None)
                .await
        }
    });
    let results = futures::future::join_all(calls).await;
    let created = results
        .iter()
        .filter(|r| matches!(r, Ok(o) if o.created))
        .count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == ErrorCode::WorkerIdTaken))
        .count();
    assert_eq!((created, taken), (1, 19), "{results:?}");
    Ok(())
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_data_stays() -> TestResult {
    let mut orch = Orchestrator::start();
    orch.client()
        .register(&request("gpu-1", &WorkerToken::generate()), None, None)
        .await?;
    let status = orch.terminate();
    assert!(status.success(), "{status:?}");
    assert!(orch.logs().contains("orchestrator stopped"));
    orch.restart();
    assert_eq!(orch.client().workers().await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_orchestrator_fails_fast_with_a_clear_code() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}"))?;
    let client = OrchestratorClient::new(url, Duration::from_secs(30))?;
    let started = Instant::now();
    let e = client
        .register(&request("gpu-1", &WorkerToken::generate()), None, None)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code(&e), ErrorCode::OrchestratorUnreachable, "{e:?}");
    let p = Problem::from(e);
    assert!(p.message.contains(&port.to_string()));
    assert!(p.fix.unwrap().contains("basis orchestrator"));
    Ok(())
}
