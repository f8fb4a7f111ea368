//! `tracing` events forwarded as `notifications/message`: none before the client sets a level;
//! after it, the events of the operations its tool calls run (`logger` = the event's target,
//! `data` = message and fields) at or above that level, whatever `RUST_LOG` lets through to
//! stderr, over stdio and over HTTP, and never the worker token.
#![allow(deprecated)] // logging/setLevel is deprecated by SEP-2577 in rmcp

use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam, SetLevelRequestParams};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

use crate::onboarding::orchestrator;
use crate::support::{self, Client, Collector, Home, Result, WALLET, call, token_in};

const REGISTER: &str = "basis::ops::register";
const WRITE_ENV: &str = "basis::ops::write_env";

/// The notifications `client` has received so far.
fn logs(client: &Client) -> Vec<LoggingMessageNotificationParam> {
    support::lock(&client.service().logs).clone()
}

/// Waits (5 s at most) for a notification from `logger`; returns it.
async fn wait_for(client: &Client, logger: &str) -> Result<LoggingMessageNotificationParam> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = logs(client);
        if let Some(found) = got.iter().find(|l| l.logger.as_deref() == Some(logger)) {
            return Ok(found.clone());
        }
        if Instant::now() >= deadline {
            return Err(format!("no notification from {logger} in {got:#?}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn succeeds(client: &Client, tool: &str, args: Value) -> Result {
    let result = call(client, tool, args).await?;
    if result.is_error == Some(true) {
        return Err(format!("{tool} failed: {:?}", result.content).into());
    }
    Ok(())
}

/// `basis mcp` over stdio with `RUST_LOG=off`: stderr takes no event, so whatever reaches the
/// client was enabled by the client's level alone.
async fn stdio_silent(home: &Home) -> Result<Client> {
    let mut cmd = home.command(&["mcp"]);
    cmd.env("RUST_LOG", "off");
    Ok(Collector::default()
        .serve(TokioChildProcess::new(cmd)?)
        .await?)
}

/// No notification holds the token of `home`'s env file.
fn token_absent(client: &Client, home: &Home) -> Result {
    let token = token_in(&home.env_file())?;
    let all = serde_json::to_string(&logs(client))?;
    assert!(!all.contains(&token), "the token reached a notification");
    Ok(())
}

#[tokio::test]
async fn operation_events_reach_the_client_at_its_level_over_stdio() -> Result {
    let (orch_home, home) = (Home::new()?, Home::new()?);
    let orch = orchestrator(&orch_home).await?;
    let client = stdio_silent(&home).await?;
    let args = json!({
        "wallet": WALLET, "worker_id": "box-log", "runtime": "echo", "orchestrator_url": orch.url,
    });

    // Before any logging/setLevel: the tool-call lines only, no forwarded event.
    succeeds(&client, "write_env", args.clone()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = logs(&client);
    assert!(
        before.iter().all(|l| l.logger.as_deref() == Some("basis")),
        "{before:#?}"
    );

    // At info: registration's info event arrives; write_env's debug event does not.
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Info))
        .await?;
    succeeds(&client, "register_worker", json!({})).await?;
    let registered = wait_for(&client, REGISTER).await?;
    assert_eq!(registered.level, LoggingLevel::Info);
    assert_eq!(
        registered.data["message"], "registered with the orchestrator",
        "{registered:?}"
    );
    assert_eq!(registered.data["worker_id"], "box-log");
    assert_eq!(registered.data["created"], true);
    let orchestrator = registered.data["orchestrator"].as_str().unwrap_or("");
    assert!(orchestrator.starts_with(&orch.url), "{registered:?}");
    let fingerprint = registered.data["key_fingerprint"].as_str().unwrap_or("");
    assert!(fingerprint.starts_with("SHA256:"), "{registered:?}");
    assert!(
        logs(&client)
            .iter()
            .all(|l| l.logger.as_deref() != Some(WRITE_ENV)),
        "a debug event passed an info level"
    );

    // At debug: write_env's debug event too.
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await?;
    succeeds(&client, "write_env", json!({})).await?;
    let written = wait_for(&client, WRITE_ENV).await?;
    assert_eq!(written.level, LoggingLevel::Debug);
    assert_eq!(written.data["message"], "wrote the env file");
    assert_eq!(written.data["key_kept"], true);
    assert_eq!(written.data["key_fingerprint"], fingerprint);

    token_absent(&client, &home)?;
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn operation_events_reach_the_client_over_http() -> Result {
    let home = Home::new()?;
    let server = support::http(&home, &[], &[]).await?;
    let client = support::http_client(&server.url, None).await?;
    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Debug))
        .await?;
    succeeds(
        &client,
        "write_env",
        json!({"wallet": WALLET, "worker_id": "box-http-log"}),
    )
    .await?;
    let written = wait_for(&client, WRITE_ENV).await?;
    assert_eq!(written.level, LoggingLevel::Debug);
    assert_eq!(written.data["created"], true, "{written:?}");
    token_absent(&client, &home)?;
    client.cancel().await?;
    Ok(())
}
