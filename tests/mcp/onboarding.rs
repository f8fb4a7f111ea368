//! The onboarding flow through MCP against a real `basis orchestrator` (`SQLite` in a temp
//! dir): `write_env` → `register_worker` → `network_status`, over stdio and over HTTP. Every
//! `structuredContent` validates against its tool's `outputSchema`; the env file is 0600 and
//! holds a token whose sha256 is what the orchestrator stored; the token appears in no tool
//! result, resource, notification or log line. Then the bad inputs an agent will meet.
#![allow(deprecated)] // logging/setLevel is deprecated by SEP-2577 in rmcp

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use rmcp::model::{LoggingLevel, ReadResourceRequestParams, SetLevelRequestParams, Tool};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{
    self, Client, Home, Result, Spawned, WALLET, call, check_result, problem, token_in,
};

/// A running `basis orchestrator --open` on 127.0.0.1:0 with its database in `home`.
pub(crate) async fn orchestrator(home: &Home) -> Result<Spawned> {
    let db = home.path().join("orchestrator.db");
    let db = db.to_str().ok_or("temp path is not UTF-8")?;
    support::spawn_listening(
        home,
        &[
            "orchestrator",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--open",
        ],
        true,
    )
    .await
}

/// Calls `tool`, checks the result against the tool's schema, and records its JSON in `seen`.
async fn step(
    client: &Client,
    tools: &[Tool],
    seen: &mut String,
    tool: &str,
    args: Value,
) -> Result<Value> {
    let result = call(client, tool, args).await?;
    let schema = tools
        .iter()
        .find(|t| t.name == tool)
        .ok_or("tool not listed")?;
    check_result(schema, &result)?;
    seen.push_str(&serde_json::to_string(&result)?);
    if result.is_error == Some(true) {
        return Err(format!("{tool} failed: {:?}", result.content).into());
    }
    Ok(result.structured_content.unwrap_or_default())
}

/// The onboarding flow for `worker_id` through `client`; returns everything the agent saw.
async fn onboard(client: &Client, orch_url: &str, worker_id: &str) -> Result<String> {
    let tools = client.list_all_tools().await?;
    let mut seen = String::new();
    let written = step(
        client,
        &tools,
        &mut seen,
        "write_env",
        json!({
            "wallet": WALLET.to_lowercase(), "worker_id": worker_id, "runtime": "echo",
            "orchestrator_url": orch_url,
        }),
    )
    .await?;
    assert_eq!(written["mode"], "0600");
    assert_eq!(
        written["wallet"], WALLET,
        "the wallet is stored checksummed"
    );
    let registered = step(client, &tools, &mut seen, "register_worker", json!({})).await?;
    assert_eq!(registered["created"], true);
    assert_eq!(registered["record"]["worker_id"], worker_id);
    assert_eq!(registered["key_fingerprint"], written["key_fingerprint"]);
    assert_eq!(
        registered["record"]["key_fingerprint"],
        written["key_fingerprint"]
    );
    let again = step(client, &tools, &mut seen, "register_worker", json!({})).await?;
    assert_eq!(
        again["created"], false,
        "re-registering with the same inputs is idempotent"
    );
    let status = step(client, &tools, &mut seen, "network_status", json!({})).await?;
    assert_eq!(status["reachable"], true, "{status}");
    assert_eq!(status["registered"], true, "{status}");
    assert_eq!(status["credential_matches"], true, "{status}");
    assert_eq!(status["legacy"], false, "{status}");
    assert_eq!(status["env"]["complete"], true, "{status}");
    let resource = client
        .read_resource(ReadResourceRequestParams::new(basis::fronts::mcp::ENV_URI))
        .await?;
    seen.push_str(&serde_json::to_string(&resource)?);
    run_worker(client, &tools, &mut seen).await?;
    seen.push_str(&serde_json::to_string(&*support::lock(
        &client.service().logs,
    ))?);
    Ok(seen)
}

/// start_worker → verify_online (waiting) → worker_status → the log resource, then always
/// stop_worker, so no supervisor outlives the test.
async fn run_worker(client: &Client, tools: &[Tool], seen: &mut String) -> Result {
    let started = step(client, tools, seen, "start_worker", json!({})).await;
    let checked = || async {
        started?;
        let verified = step(client, tools, seen, "verify_online", json!({"wait_s": 30})).await?;
        assert_eq!(verified["online"], true, "{verified}");
        let status = step(client, tools, seen, "worker_status", json!({})).await?;
        assert_eq!(status["running"], true, "{status}");
        let log = client
            .read_resource(ReadResourceRequestParams::new(basis::fronts::mcp::LOG_URI))
            .await?;
        seen.push_str(&serde_json::to_string(&log)?);
        Ok::<_, support::BoxError>(())
    };
    let checked = checked().await;
    let stopped = step(client, tools, seen, "stop_worker", json!({})).await;
    checked?;
    assert_eq!(stopped?["stopped"], true);
    Ok(())
}

/// The env file is 0600 and the sha256 of its device key's public half is what the orchestrator
/// stored; the key is in none of `texts`.
fn check_token(home: &Home, db_home: &Home, worker_id: &str, texts: &[String]) -> Result {
    let mode = std::fs::metadata(home.env_file())?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "env file mode {mode:o}");
    let token = token_in(&home.env_file())?;
    let db = rusqlite::Connection::open(db_home.path().join("orchestrator.db"))?;
    let stored: Vec<u8> = db.query_row(
        "SELECT token_sha256 FROM workers WHERE worker_id = ?1",
        [worker_id],
        |row| row.get(0),
    )?;
    let public = basis::domain::DeviceKey::parse(&token)?.public();
    assert_eq!(
        stored,
        Sha256::digest(public.as_bytes()).to_vec(),
        "the orchestrator stores sha256(public key)"
    );
    for text in texts {
        assert!(
            !text.contains(&token["basis_dk_".len()..]),
            "the token leaked: {}",
            &text[..text.len().min(300)]
        );
    }
    Ok(())
}

#[tokio::test]
async fn onboarding_over_stdio_against_a_real_orchestrator() -> Result {
    let (orch_home, home) = (Home::new()?, Home::new()?);
    let orch = orchestrator(&orch_home).await?;
    let (client, stderr) = support::stdio(&home, &[]).await?;
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await?;
    let seen = onboard(&client, &orch.url, "box-stdio").await?;
    client.cancel().await?;
    let texts = [seen, stderr.text(), orch.stdout.text(), orch.stderr.text()];
    check_token(&home, &orch_home, "box-stdio", &texts)
}

#[tokio::test]
async fn onboarding_over_http_against_a_real_orchestrator() -> Result {
    let (orch_home, home) = (Home::new()?, Home::new()?);
    let orch = orchestrator(&orch_home).await?;
    let server = support::http(&home, &[], &[]).await?;
    let client = support::http_client(&server.url, None).await?;
    let seen = onboard(&client, &orch.url, "box-http").await?;
    client.cancel().await?;
    let texts = [
        seen,
        server.stderr.text(),
        orch.stdout.text(),
        orch.stderr.text(),
    ];
    check_token(&home, &orch_home, "box-http", &texts)
}

/// The code of a failed call (and that it failed).
async fn refused(client: &Client, tool: &str, args: Value) -> Result<String> {
    let result = call(client, tool, args).await?;
    assert_eq!(
        result.is_error,
        Some(true),
        "{tool} accepted it: {:?}",
        result.structured_content
    );
    let problem = problem(&result).ok_or("no problem in the error result")?;
    assert!(problem["fix"].is_string(), "{tool}: no fix in {problem}");
    Ok(problem["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn bad_inputs_come_back_as_codes_with_fixes() -> Result {
    let (orch_home, home, other) = (Home::new()?, Home::new()?, Home::new()?);
    let orch = orchestrator(&orch_home).await?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    let base = json!({"wallet": WALLET, "worker_id": "box-bad", "orchestrator_url": orch.url});
    let with = |patch: Value| {
        let mut args = base.clone();
        args.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        args
    };
    // The checksummed address with one letter's case flipped fails EIP-55.
    let broken = format!("{}e7", &WALLET[..WALLET.len() - 2]);
    let cases = [
        (with(json!({"wallet": broken})), "WALLET_CHECKSUM_MISMATCH"),
        (with(json!({"runtime": "tensorflow"})), "UNKNOWN_RUNTIME"),
        (with(json!({"worker_id": "Box_1"})), "INVALID_WORKER_ID"),
        (
            with(json!({"out": "/etc/basis-test/worker.env"})),
            "ENV_PATH_NOT_ALLOWED",
        ),
    ];
    for (args, code) in cases {
        assert_eq!(refused(&client, "write_env", args).await?, code);
    }
    let target = home.path().join("real.env");
    std::fs::write(&target, "")?;
    std::os::unix::fs::symlink(&target, home.path().join("link.env"))?;
    let link = home.path().join("link.env").display().to_string();
    assert_eq!(
        refused(&client, "write_env", with(json!({"out": link}))).await?,
        "ENV_PATH_SYMLINK"
    );

    let started = Instant::now();
    let dead = with(json!({"orchestrator_url": "http://127.0.0.1:9", "new_orchestrator": true}));
    assert_eq!(
        refused(&client, "register_worker", dead).await?,
        "ORCHESTRATOR_UNREACHABLE"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an unreachable orchestrator took {:?}",
        started.elapsed()
    );

    // Another host registers box-bad first: this host's key does not match → 409. (This host's
    // env file names the dead orchestrator it tried first: moving it is deliberate.)
    let (first, _e) = support::stdio(&other, &[]).await?;
    let args = with(json!({"runtime": "echo", "new_orchestrator": true}));
    assert!(
        call(&first, "register_worker", args.clone())
            .await?
            .is_error
            != Some(true)
    );
    first.cancel().await?;
    assert_eq!(
        refused(&client, "register_worker", args).await?,
        "WORKER_ID_TAKEN"
    );
    client.cancel().await?;
    Ok(())
}
