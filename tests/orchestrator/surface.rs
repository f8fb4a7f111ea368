//! What the orchestrator publishes: health, onboarding status, `OpenAPI`, metrics; and `keys create`.

use super::*;

#[tokio::test]
async fn health_and_onboarding_status() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    let health = client.health().await?;
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(health.protocol_version, 1);
    let status = client.onboarding_status().await?;
    assert_eq!(status.registration, RegistrationMode::Open);
    assert_eq!(
        (status.heartbeat_interval_s, status.online_window_s),
        (10, 30)
    );
    Ok(())
}

#[tokio::test]
async fn openapi_document_carries_the_wire_schemas() -> TestResult {
    let orch = Orchestrator::start();
    let resp = orch.http().get(orch.at("/openapi.json")).send().await?;
    assert_eq!(resp.status(), 200);
    let doc: Value = resp.json().await?;
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = &doc["components"]["schemas"];
    for name in [
        "RegisterRequest",
        "WorkerRecord",
        "WorkerList",
        "OnboardingStatus",
        "Health",
        "ApiErrorBody",
        "Problem",
        "ErrorCode",
        "AgentRegistration",
        "Leaderboard",
    ] {
        assert!(schemas.get(name).is_some(), "missing schema {name}");
    }
    // The same schemars output, with its references pointed at the components.
    let expected = serde_json::to_string(&schemars::schema_for!(RegisterRequest))?
        .replace("#/$defs/", "#/components/schemas/");
    let expected: Value = serde_json::from_str(&expected)?;
    assert_eq!(
        schemas["RegisterRequest"]["properties"],
        expected["properties"]
    );
    let codes = schemas["ErrorCode"].to_string();
    assert!(codes.contains("WORKER_ID_TAKEN") && codes.contains("PRIVATE_KEY_REFUSED"));
    for path in [
        "/health",
        "/api/workers/register",
        "/api/workers/{id}",
        "/api/workers",
        "/api/workers/onboarding/status",
        "/metrics",
        "/.well-known/agent-registration.json",
        "/api/workers/{id}/agent-registration.json",
        "/api/workers/{id}/agent-link",
        "/api/leaderboard",
    ] {
        assert!(doc["paths"].get(path).is_some(), "missing path {path}");
    }
    Ok(())
}

#[tokio::test]
async fn metrics_count_requests_and_registrations() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    client.health().await?;
    client
        .register(&request("gpu-1", &WorkerToken::generate()), None, None)
        .await?;
    let _ = client
        .register(&request("gpu-1", &WorkerToken::generate()), None, None)
        .await;
    let resp = orch.http().get(orch.at("/metrics")).send().await?;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str()?.contains("text"));
    let text = resp.text().await?;
    for line in [
        r#"basis_orchestrator_http_requests_total{route="/health",method="GET",status="200"} 1"#,
        r#"basis_orchestrator_http_requests_total{route="/api/workers/register",method="POST",status="201"} 1"#,
        r#"basis_orchestrator_http_requests_total{route="/api/workers/register",method="POST",status="409"} 1"#,
        r#"basis_orchestrator_registrations_total{outcome="created"} 1"#,
        r#"basis_orchestrator_registrations_total{outcome="conflict"} 1"#,
        r#"basis_orchestrator_errors_total{code="WORKER_ID_TAKEN"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
    Ok(())
}

#[tokio::test]
async fn keys_create_uses_the_same_database_as_the_server() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("o.db");
    let (key, _) = create_key(&db, "client");
    assert!(key.trim().starts_with("basis_client_"));
    assert!(db.exists());
    assert_eq!(std::fs::metadata(&db)?.permissions().mode() & 0o777, 0o600);
    Ok(())
}
