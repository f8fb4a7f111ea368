//! The orchestrator end to end: a real `basis orchestrator` process on 127.0.0.1:0 with a real
//! `SQLite` file in a temp dir, driven through `basis::client::OrchestratorClient` and, for
//! malformed requests, raw HTTP.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

/// The cases, one file per concern under `tests/orchestrator/`.
mod orchestrator {
    use super::*;

    mod capabilities;
    mod channel;
    mod device_keys;
    mod discovery;
    mod exfiltration;
    mod failures;
    mod fake_worker;
    mod gateway;
    mod gating;
    mod market;
    mod metering;
    mod persistence;
    mod queueing;
    mod quotas;
    mod receipts_log;
    mod registration;
    mod replicas;
    mod robustness;
    mod settlement;
    mod surface;
    mod tasks;
    mod tasks_races;
    mod tasks_settle;
}

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use basis::client::{ClientError, OrchestratorClient, RegisterAuth};
use basis::domain::{ErrorCode, Problem, Runtime, WalletAddress, WorkerId, WorkerToken};
use basis::wire::{OrchestratorMessage, RegisterRequest, RegistrationMode, WorkerMessage};
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
        public_key: None,
        hardware: None,
        version: "0.1.0".into(),
        multi_task: false,
        labels: Vec::new(),
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
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}
