//! The orchestrator end to end: a real `basis orchestrator` process on 127.0.0.1:0 with a real
//! SQLite file in a temp dir, driven through `basis::client::OrchestratorClient` and, for
//! malformed requests, raw HTTP.

mod common;

use std::time::{Duration, Instant};

use basis::client::{ClientError, OrchestratorClient, RegisterAuth};
use basis::domain::{ErrorCode, Problem, Runtime, WalletAddress, WorkerId, WorkerToken};
use basis::wire::{RegisterRequest, RegistrationMode};
use common::orchestrator::{Options, Orchestrator, RELAXED_LIMITS, create_key};
use secrecy::SecretString;
use serde_json::{Value, json};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WALLET_LOWER: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
const WALLET_CHECKSUMMED: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const PRIVATE_KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

fn request(id: &str, token: &WorkerToken) -> RegisterRequest {
    RegisterRequest {
        worker_id: WorkerId::parse(id).unwrap(),
        wallet: WalletAddress::parse(WALLET_LOWER).unwrap(),
        runtime: Runtime::Echo,
        models: vec!["echo".into()],
        token_sha256: token.sha256(),
        hardware: None,
        version: "0.1.0".into(),
        multi_task: false,
    }
}

fn raw_body(id: &str, wallet: &str, token: &WorkerToken) -> Value {
    json!({
        "worker_id": id,
        "wallet": wallet,
        "runtime": "echo",
        "models": ["echo"],
        "token_sha256": token.sha256().to_string(),
        "version": "0.1.0",
    })
}

fn code(e: &ClientError) -> ErrorCode {
    e.code()
}

/// POSTs `body` as JSON and returns (status, parsed body, raw text).
async fn post_raw(orch: &Orchestrator, body: &Value) -> (u16, Value, String) {
    let resp = orch
        .http()
        .post(orch.at("/api/workers/register"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

#[tokio::test]
async fn register_then_get_shows_the_record_without_the_token() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    let token = WorkerToken::generate();
    let out = client.register(&request("gpu-1", &token), None, None).await?;
    assert!(out.created);
    assert_eq!(out.record.wallet.checksummed(), WALLET_CHECKSUMMED);
    assert_eq!(out.record.token_fingerprint, token.fingerprint().as_str());

    let raw = orch.http().get(orch.at("/api/workers/gpu-1")).send().await?;
    assert_eq!(raw.status(), 200);
    let text = raw.text().await?;
    let got: Value = serde_json::from_str(&text)?;
    assert_eq!(got["wallet"], WALLET_CHECKSUMMED);
    assert_eq!(got["token_fingerprint"], token.fingerprint().as_str());
    assert_eq!(got["online"], false);
    assert_eq!(got["rewards_pending"], "0");
    let list = client.workers().await?;
    assert_eq!(list.len(), 1);
    assert_eq!(client.worker(&WorkerId::parse("gpu-1")?).await?, out.record);

    let secret = token.expose_secret();
    let full_hash = token.sha256().to_string();
    let list_text = orch.http().get(orch.at("/api/workers")).send().await?.text().await?;
    for shown in [&text, &list_text, &format!("{out:?}"), &orch.logs()] {
        assert!(!shown.contains(secret), "the token leaked");
        assert!(!shown.contains(&full_hash[2..]), "the full token hash leaked");
    }
    let missing = client.worker(&WorkerId::parse("gpu-2")?).await.unwrap_err();
    assert_eq!(code(&missing), ErrorCode::WorkerNotFound);
    assert_eq!(client.find_worker(&WorkerId::parse("gpu-2")?).await?, None);
    Ok(())
}

#[tokio::test]
async fn re_registering_is_idempotent_and_changes_need_proof() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    let token = WorkerToken::generate();
    let req = request("gpu-1", &token);
    assert!(client.register(&req, None, None).await?.created);

    let again = client.register(&req, None, None).await?;
    assert!(!again.created, "same inputs: 200, not 201");

    let mut changed = req.clone();
    changed.models.push("llama3.2:1b".into());
    let e = client.register(&changed, None, None).await.unwrap_err();
    assert_eq!((code(&e), e.status()), (ErrorCode::WorkerIdTaken, Some(409)));
    let stranger = WorkerToken::generate();
    let e = client.register(&changed, Some(&stranger), None).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::WorkerIdTaken, "a wrong token is no proof");
    let takeover = request("gpu-1", &stranger);
    let e = client.register(&takeover, None, None).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::WorkerIdTaken);
    let p = Problem::from(e);
    assert!(p.fix.is_some());

    let updated = client.register(&changed, Some(&token), None).await?;
    assert!(!updated.created);
    assert_eq!(updated.record.models, ["echo", "llama3.2:1b"]);
    Ok(())
}

#[tokio::test]
async fn rotating_the_token_needs_the_current_one() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    let old = WorkerToken::generate();
    client.register(&request("gpu-1", &old), None, None).await?;
    let new = WorkerToken::generate();
    let rotated = client.register(&request("gpu-1", &new), Some(&old), None).await?;
    assert_eq!(rotated.record.token_fingerprint, new.fingerprint().as_str());
    // The old token no longer proves anything.
    let newer = WorkerToken::generate();
    let e = client.register(&request("gpu-1", &newer), Some(&old), None).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::WorkerIdTaken);
    client.register(&request("gpu-1", &newer), Some(&new), None).await?;
    assert!(!orch.logs().contains(old.expose_secret()));
    assert!(!orch.logs().contains(new.expose_secret()));
    Ok(())
}

#[tokio::test]
async fn the_admin_key_is_printed_once_stored_hashed_and_accepted() -> TestResult {
    let orch = Orchestrator::start();
    let (stdout, stderr) = orch.create_key("admin");
    let key = stdout.trim().to_owned();
    assert_eq!(stdout.lines().count(), 1, "only the key on stdout");
    assert!(key.starts_with("basis_admin_"), "{key}");
    assert!(stderr.contains("only this once"), "{stderr}");
    assert!(!stderr.contains(&key));
    let (second, _) = orch.create_key("admin");
    assert_ne!(second.trim(), key, "every call makes a new key");

    let client = orch.client();
    client.register(&request("gpu-1", &WorkerToken::generate()), None, None).await?;
    let operator_token = WorkerToken::generate();
    let req = request("gpu-1", &operator_token);
    let wrong = SecretString::from("basis_admin_nope".to_owned());
    let auth = RegisterAuth { admin_key: Some(&wrong), ..RegisterAuth::default() };
    let e = client.register_with(&req, auth).await.unwrap_err();
    assert_eq!(code(&e), ErrorCode::WorkerIdTaken);
    let admin = SecretString::from(key.clone());
    let auth = RegisterAuth { admin_key: Some(&admin), ..RegisterAuth::default() };
    let out = client.register_with(&req, auth).await?;
    assert_eq!(out.record.token_fingerprint, operator_token.fingerprint().as_str());

    let mut stored = std::fs::read(&orch.db)?;
    stored.extend(std::fs::read(orch.db.with_extension("db-wal")).unwrap_or_default());
    assert!(!stored.windows(key.len()).any(|w| w == key.as_bytes()), "key stored in clear");
    assert!(!orch.logs().contains(&key));
    Ok(())
}

#[tokio::test]
async fn bad_wallets_get_codes_and_private_keys_are_not_echoed() -> TestResult {
    let orch = Orchestrator::start();
    let token = WorkerToken::generate();
    let broken = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD";
    let (status, body, _) = post_raw(&orch, &raw_body("gpu-1", broken, &token)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "WALLET_CHECKSUM_MISMATCH");
    let fix = body["error"]["fix"].as_str().unwrap();
    assert!(fix.contains(WALLET_CHECKSUMMED), "suggests the checksummed form: {fix}");

    for key in [PRIVATE_KEY.to_owned(), format!("0x{PRIVATE_KEY}")] {
        let (status, body, text) = post_raw(&orch, &raw_body("gpu-1", &key, &token)).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "PRIVATE_KEY_REFUSED");
        assert!(!text.contains(PRIVATE_KEY), "the key was echoed");
    }
    let mut with_mnemonic = raw_body("gpu-1", WALLET_LOWER, &token);
    with_mnemonic["version"] = json!(
        "abandon ability able about above absent absorb abstract absurd abuse access accident"
    );
    let (status, body, text) = post_raw(&orch, &with_mnemonic).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("SECRET_REFUSED")));
    assert!(!text.contains("absorb abstract"));
    assert!(!orch.logs().contains(PRIVATE_KEY));
    assert!(orch.client().workers().await?.is_empty(), "nothing was stored");
    Ok(())
}

fn gated(env_key: &str) -> Options {
    Options {
        toml: format!("registration = \"gated\"\n{RELAXED_LIMITS}"),
        env: vec![("BASIS_ENROLLMENT_KEY".into(), env_key.into())],
        ..Options::default()
    }
}

#[tokio::test]
async fn gated_registration_needs_the_right_enrollment_key() -> TestResult {
    let orch = Orchestrator::with(gated("open-sesame"));
    let client = orch.client();
    let status = client.onboarding_status().await?;
    assert_eq!(status.registration, RegistrationMode::Gated);
    let token = WorkerToken::generate();
    let req = request("gpu-1", &token);
    let e = client.register(&req, None, None).await.unwrap_err();
    assert_eq!((code(&e), e.status()), (ErrorCode::RegistrationGated, Some(401)));
    assert!(Problem::from(e).fix.unwrap().contains("BASIS_ENROLLMENT_KEY"));
    let e = client.register(&req, None, Some("wrong-key")).await.unwrap_err();
    assert_eq!((code(&e), e.status()), (ErrorCode::EnrollmentKeyInvalid, Some(403)));
    assert!(client.register(&req, None, Some("open-sesame")).await?.created);
    // The registered worker re-registers with its token alone.
    let mut update = req.clone();
    update.version = "0.2.0".into();
    client.register(&update, Some(&token), None).await?;
    assert!(!orch.logs().contains("open-sesame"));
    Ok(())
}

#[tokio::test]
async fn the_enrollment_key_hash_can_come_from_the_config_file() -> TestResult {
    let hash = std::process::Command::new(common::orchestrator::bin())
        .args(["orchestrator", "keys", "hash"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"from-file-key\n")?;
            child.wait_with_output()
        })?;
    let hash = String::from_utf8(hash.stdout)?.trim().to_owned();
    assert!(hash.starts_with("0x") && hash.len() == 66, "{hash}");
    let orch = Orchestrator::with(Options {
        toml: format!("registration = \"gated\"\nenrollment_key_sha256 = \"{hash}\"\n{RELAXED_LIMITS}"),
        ..Options::default()
    });
    let req = request("gpu-1", &WorkerToken::generate());
    assert!(orch.client().register(&req, None, Some("from-file-key")).await?.created);
    Ok(())
}

#[tokio::test]
async fn closed_registration_is_refused() -> TestResult {
    let orch = Orchestrator::with(Options {
        args: vec!["--registration".into(), "closed".into()],
        ..Options::default()
    });
    let client = orch.client();
    assert_eq!(client.onboarding_status().await?.registration, RegistrationMode::Closed);
    let e = client.register(&request("gpu-1", &WorkerToken::generate()), None, None).await.unwrap_err();
    assert_eq!((code(&e), e.status()), (ErrorCode::RegistrationClosed, Some(403)));
    Ok(())
}

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
        assert!(body["error"]["message"].as_str().unwrap().contains("line 1"), "{body}");
    }
    let (status, body, _) = post_raw(&orch, &json!({"worker_id": "gpu-1"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("INVALID_JSON")));
    assert!(body["error"]["message"].as_str().unwrap().contains("wallet"));

    let resp = http.post(orch.at("/api/workers/register")).body("{}").send().await?;
    assert_eq!(resp.status(), 415);
    assert_eq!(resp.json::<Value>().await?["error"]["code"], "INVALID_JSON");
    let resp = http.get(orch.at("/no/such/route")).send().await?;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await?["error"]["code"], "NOT_FOUND");
    Ok(())
}

#[tokio::test]
async fn registration_is_rate_limited_per_address() -> TestResult {
    let orch = Orchestrator::with(Options {
        toml: "[rate_limit]\nregister_per_minute = 1\nregister_burst = 3\n".into(),
        ..Options::default()
    });
    let http = orch.http();
    let body = raw_body("gpu-1", WALLET_LOWER, &WorkerToken::generate());
    for _ in 0..3 {
        let (status, _, _) = post_raw(&orch, &body).await;
        assert!(status == 201 || status == 200);
    }
    let resp = http
        .post(orch.at("/api/workers/register"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(resp.json::<Value>().await?["error"]["code"], "RATE_LIMITED");
    // Reads are not limited.
    assert!(orch.client().health().await.is_ok());
    let e = orch.client().register(&request("gpu-2", &WorkerToken::generate()), None, None).await;
    assert_eq!(code(&e.unwrap_err()), ErrorCode::RateLimited);
    Ok(())
}

#[tokio::test]
async fn repeated_auth_failures_are_rate_limited() -> TestResult {
    let orch = Orchestrator::with(Options {
        toml: "registration = \"gated\"\n[rate_limit]\nregister_burst = 100\nauth_failures_per_minute = 1\nauth_failure_burst = 2\n".into(),
        env: vec![("BASIS_ENROLLMENT_KEY".into(), "right".into())],
        ..Options::default()
    });
    let client = orch.client();
    let req = request("gpu-1", &WorkerToken::generate());
    for _ in 0..2 {
        let e = client.register(&req, None, Some("wrong")).await.unwrap_err();
        assert_eq!(code(&e), ErrorCode::EnrollmentKeyInvalid);
    }
    // Even the right key is refused now, until the bucket refills.
    let e = client.register(&req, None, Some("right")).await.unwrap_err();
    assert_eq!((code(&e), e.status()), (ErrorCode::RateLimited, Some(429)));
    Ok(())
}

#[tokio::test]
async fn an_acknowledged_registration_survives_kill_9() -> TestResult {
    let mut orch = Orchestrator::start();
    let token = WorkerToken::generate();
    let out = orch.client().register(&request("gpu-1", &token), None, None).await?;
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
            client.register(&request("contested", &token), None, None).await
        }
    });
    let results = futures::future::join_all(calls).await;
    let created = results.iter().filter(|r| matches!(r, Ok(o) if o.created)).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == ErrorCode::WorkerIdTaken))
        .count();
    assert_eq!((created, taken), (1, 19), "{results:?}");
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
    for name in ["RegisterRequest", "WorkerRecord", "WorkerList", "OnboardingStatus", "Health", "ApiErrorBody", "Problem", "ErrorCode"] {
        assert!(schemas.get(name).is_some(), "missing schema {name}");
    }
    // The same schemars output, with its references pointed at the components.
    let expected = serde_json::to_string(&schemars::schema_for!(RegisterRequest))?
        .replace("#/$defs/", "#/components/schemas/");
    let expected: Value = serde_json::from_str(&expected)?;
    assert_eq!(schemas["RegisterRequest"]["properties"], expected["properties"]);
    let codes = schemas["ErrorCode"].to_string();
    assert!(codes.contains("WORKER_ID_TAKEN") && codes.contains("PRIVATE_KEY_REFUSED"));
    for path in ["/health", "/api/workers/register", "/api/workers/{id}", "/api/workers", "/api/workers/onboarding/status", "/metrics"] {
        assert!(doc["paths"].get(path).is_some(), "missing path {path}");
    }
    Ok(())
}

#[tokio::test]
async fn metrics_count_requests_and_registrations() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    client.health().await?;
    client.register(&request("gpu-1", &WorkerToken::generate()), None, None).await?;
    let _ = client.register(&request("gpu-1", &WorkerToken::generate()), None, None).await;
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
async fn health_and_onboarding_status() -> TestResult {
    let orch = Orchestrator::start();
    let client = orch.client();
    let health = client.health().await?;
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(health.protocol_version, 1);
    let status = client.onboarding_status().await?;
    assert_eq!(status.registration, RegistrationMode::Open);
    assert_eq!((status.heartbeat_interval_s, status.online_window_s), (10, 30));
    Ok(())
}

#[tokio::test]
async fn an_unreachable_orchestrator_fails_fast_with_a_clear_code() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}"))?;
    let client = OrchestratorClient::new(url, Duration::from_secs(30))?;
    let started = Instant::now();
    let e = client.register(&request("gpu-1", &WorkerToken::generate()), None, None).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(code(&e), ErrorCode::OrchestratorUnreachable, "{e:?}");
    let p = Problem::from(e);
    assert!(p.message.contains(&port.to_string()));
    assert!(p.fix.unwrap().contains("basis orchestrator"));
    Ok(())
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_data_stays() -> TestResult {
    let mut orch = Orchestrator::start();
    orch.client().register(&request("gpu-1", &WorkerToken::generate()), None, None).await?;
    let status = orch.terminate();
    assert!(status.success(), "{status:?}");
    assert!(orch.logs().contains("orchestrator stopped"));
    orch.restart();
    assert_eq!(orch.client().workers().await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn keys_create_uses_the_same_database_as_the_server() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("o.db");
    let (key, _) = create_key(&db, "client");
    assert!(key.trim().starts_with("basis_client_"));
    assert!(db.exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&db)?.permissions().mode() & 0o777, 0o600);
    Ok(())
}
