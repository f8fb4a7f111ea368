//! Unit tests of the log hook: it is off until a listener sets a level, filters by level and
//! by target, redacts secrets in every value, attributes scoped events, and drops (counted)
//! rather than waiting for a slow listener.

use std::time::Duration;

use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;
use crate::domain::WorkerToken;

const KEY: &str = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const MNEMONIC: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";

fn dispatch(hook: &LogHook) -> tracing::Dispatch {
    tracing_subscriber::registry().with(hook.layer()).into()
}

/// Everything `records` holds now (it waits briefly for the last one).
async fn drain(records: &mut Records) -> Vec<Next> {
    let mut out = Vec::new();
    while let Ok(Some(next)) = tokio::time::timeout(Duration::from_millis(50), records.next()).await
    {
        out.push(next);
    }
    out
}

fn logged(nexts: &[Next]) -> Vec<Arc<LogRecord>> {
    nexts
        .iter()
        .filter_map(|n| match n {
            Next::Record(r) => Some(Arc::clone(r)),
            Next::Dropped(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn nothing_is_taken_before_a_level_is_set() {
    let hook = LogHook::new(16);
    let listener = hook.listen();
    let mut records = listener.records();
    assert_eq!(hook.inner.max(), LevelFilter::OFF);
    tracing::dispatcher::with_default(&dispatch(&hook), || {
        tracing::error!("before any level");
    });
    assert!(drain(&mut records).await.is_empty());
}

#[tokio::test]
async fn the_level_and_the_target_decide_what_is_taken() {
    let hook = LogHook::new(16);
    let listener = hook.listen();
    let mut records = listener.records();
    listener.set_level(LevelFilter::INFO);
    tracing::dispatcher::with_default(&dispatch(&hook), || {
        tracing::debug!("too verbose");
        tracing::info!(
            worker_id = "box-1",
            attempt = 2,
            ok = true,
            "registered {}",
            "box-1"
        );
        tracing::warn!(target: "rmcp::service", "not this crate's");
        tracing::warn!(target: "basisx", "not this crate either");
        tracing::error!(target: "basis", "the crate itself");
    });
    let got = logged(&drain(&mut records).await);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].level, Level::INFO);
    assert_eq!(got[0].target, module_path!());
    assert_eq!(
        serde_json::Value::Object(got[0].data.clone()),
        json!({"message": "registered box-1", "worker_id": "box-1", "attempt": 2, "ok": true})
    );
    assert_eq!(got[1].target, "basis");

    listener.set_level(LevelFilter::DEBUG);
    tracing::dispatcher::with_default(&dispatch(&hook), || tracing::debug!("now wanted"));
    let got = logged(&drain(&mut records).await);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].data["message"], "now wanted");
}

#[tokio::test]
async fn every_value_passes_the_secrets_guard() {
    let hook = LogHook::new(16);
    let listener = hook.listen();
    let mut records = listener.records();
    listener.set_level(LevelFilter::DEBUG);
    let token = WorkerToken::generate();
    let raw = token.expose_secret().to_owned();
    let long = "x".repeat(MAX_VALUE_BYTES + 1);
    tracing::dispatcher::with_default(&dispatch(&hook), || {
        tracing::info!(key = KEY, "imported {KEY}");
        tracing::debug!(words = ?MNEMONIC, "a mnemonic in a debug field");
        tracing::warn!(raw = %raw, token = %token, "the token, raw and typed");
        tracing::debug!(long = %long, "a long value");
    });
    let got = logged(&drain(&mut records).await);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0].data["message"], "[REDACTED: private_key]");
    assert_eq!(got[0].data["key"], "[REDACTED: private_key]");
    assert_eq!(got[1].data["words"], "[REDACTED: mnemonic]");
    assert_eq!(got[1].data["message"], "a mnemonic in a debug field");
    assert_eq!(got[2].data["raw"], "[REDACTED: private_key]");
    assert_eq!(got[2].data["token"], "[REDACTED]");
    assert_eq!(
        got[3].data["long"],
        format!("[omitted: {} bytes]", MAX_VALUE_BYTES + 1)
    );
    let text = format!("{got:?}");
    assert!(!text.contains(&raw) && !text.contains(&KEY[2..]) && !text.contains("sausage"));
}

#[tokio::test(flavor = "current_thread")]
async fn scoped_events_reach_only_their_listener() {
    let hook = LogHook::new(16);
    let (a, b) = (hook.listen(), hook.listen());
    let (mut from_a, mut from_b) = (a.records(), b.records());
    a.set_level(LevelFilter::INFO);
    b.set_level(LevelFilter::WARN);
    let _default = tracing::dispatcher::set_default(&dispatch(&hook));
    a.scope(async { tracing::warn!("a's tool call") }).await;
    tracing::warn!("background");
    tracing::info!("background, verbose");
    let seen = |nexts: Vec<Next>| -> Vec<String> {
        logged(&nexts)
            .iter()
            .map(|r| r.data["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        seen(drain(&mut from_a).await),
        ["a's tool call", "background", "background, verbose"]
    );
    assert_eq!(seen(drain(&mut from_b).await), ["background"]);
}

#[tokio::test]
async fn a_slow_listener_loses_records_and_is_told() {
    let hook = LogHook::new(2);
    let listener = hook.listen();
    let mut records = listener.records();
    listener.set_level(LevelFilter::INFO);
    tracing::dispatcher::with_default(&dispatch(&hook), || {
        for i in 0..5 {
            tracing::info!(i, "burst");
        }
    });
    let nexts = drain(&mut records).await;
    assert!(matches!(nexts[0], Next::Dropped(3)), "{nexts:?}");
    assert_eq!(logged(&nexts).len(), 2);
    assert_eq!(hook.dropped(), 3);
}

#[tokio::test]
async fn dropping_the_listener_ends_its_records_and_its_level() {
    let hook = LogHook::new(16);
    let listener = hook.listen();
    let mut records = listener.records();
    listener.set_level(LevelFilter::DEBUG);
    assert_eq!(hook.inner.max(), LevelFilter::DEBUG);
    drop(listener);
    assert_eq!(hook.inner.max(), LevelFilter::OFF);
    assert!(records.next().await.is_none());
}
