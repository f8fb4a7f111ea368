//! Three orchestrator replicas on one PostgreSQL database, each with one real `basis worker`
//! (echo runtime) serving a model no other worker serves: a gateway request on every replica
//! reaches the worker on every other (forwarded, signed, relayed as it arrives, streamed or
//! not), with a receipt any replica can show. Unsigned, forged and replayed replica calls are
//! refused.

use std::time::{Duration, Instant};

use basis::domain::{ReplicaId, Runtime, WalletAddress, WorkerId, WorkerToken};
use basis::orchestrator::replica::config::{ENV_REPLICA_ID, ENV_REPLICA_SECRET, RawReplica};
use basis::orchestrator::replica::{ReplicaConfig, sign};
use basis::orchestrator::store::postgres::testdb::TestDb;
use basis::wire::RegisterRequest;
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::support::{KillOnDrop, worker_command, write_env};
use crate::common::orchestrator::{Options, Orchestrator, RELAXED_LIMITS};

const WALLET: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
/// Process starts and presence flushes on a loaded 2-core machine: generous, but bounded.
const SLACK: Duration = Duration::from_secs(40);
const REPLICAS: usize = 3;

fn secret() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn replica(db: &TestDb, i: usize, secret: &str) -> Orchestrator {
    Orchestrator::with(Options {
        toml: format!("heartbeat_interval_s = 1\nonline_window_s = 3\n{RELAXED_LIMITS}"),
        args: vec!["--open".into()],
        env: vec![
            ("BASIS_DATABASE_URL".into(), db.url.clone()),
            (ENV_REPLICA_ID.into(), format!("r-{i}")),
            (ENV_REPLICA_SECRET.into(), secret.into()),
        ],
    })
}

/// Registers `w-i` (serving `m-i`) and starts its worker against `orch`.
async fn worker(orch: &Orchestrator, i: usize, home: &std::path::Path) -> KillOnDrop {
    let token = WorkerToken::generate();
    let request = RegisterRequest {
        worker_id: WorkerId::parse(&format!("w-{i}")).unwrap(),
        wallet: WalletAddress::parse(WALLET).unwrap(),
        runtime: Runtime::Echo,
        models: vec![format!("m-{i}")],
        token_sha256: token.sha256(),
        public_key: None,
        hardware: None,
        version: "0.1.0".into(),
        multi_task: false,
        labels: Vec::new(),
    };
    orch.client().register(&request, None, None).await.unwrap();
    let env_file = write_env(
        home,
        &format!(
            "BASIS_WORKER_ID=w-{i}\nBASIS_WORKER_RUNTIME=echo\nBASIS_WORKER_MODELS=m-{i}\n\
             BASIS_ORCHESTRATOR_URL={}\nBASIS_WORKER_TOKEN={}\nBASIS_ECHO_DELAY_MS=1\n",
            orch.url,
            token.expose_secret()
        ),
    );
    KillOnDrop(
        worker_command(home, &env_file)
            .stderr(std::fs::File::create(home.join("worker.log")).unwrap())
            .spawn()
            .unwrap(),
    )
}

async fn models(orch: &Orchestrator) -> Vec<String> {
    let Ok(resp) = orch.http().get(orch.at("/v1/models")).send().await else {
        return Vec::new();
    };
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    body["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|m| m["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn chat_body(model: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}], "stream": stream})
}

/// The data of every server-sent event until the stream ends.
async fn events(resp: reqwest::Response) -> Vec<String> {
    let mut body = resp.bytes_stream();
    let mut text = String::new();
    while let Some(chunk) = tokio::time::timeout(SLACK, body.next()).await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    text.split("\n\n")
        .filter_map(|e| {
            let data: Vec<&str> = e
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

/// Waits until every replica lists every model (once the presence flushes have run).
async fn every_replica_lists_every_model(replicas: &[Orchestrator]) {
    let want: Vec<String> = (0..REPLICAS).map(|i| format!("m-{i}")).collect();
    let deadline = Instant::now() + SLACK;
    for orch in replicas {
        loop {
            let mut got = models(orch).await;
            got.sort();
            if got == want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a replica lists {got:?}, not {want:?}; logs:\n{}",
                orch.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_request_on_every_replica_reaches_a_worker_on_every_other() {
    let db = TestDb::create().await;
    let secret = secret();
    let replicas: Vec<Orchestrator> = (0..REPLICAS).map(|i| replica(&db, i, &secret)).collect();
    let homes: Vec<_> = (0..REPLICAS)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let mut workers = Vec::new();
    for (i, orch) in replicas.iter().enumerate() {
        workers.push(worker(orch, i, homes[i].path()).await);
    }
    every_replica_lists_every_model(&replicas).await;
    for (i, orch) in replicas.iter().enumerate() {
        for j in 0..REPLICAS {
            let text = format!("from {i} to {j}");
            let resp = orch
                .http()
                .post(orch.at("/v1/chat/completions"))
                .json(&chat_body(&format!("m-{j}"), &text, false))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{i}→{j}: {}", orch.logs());
            assert_eq!(header(&resp, "x-basis-worker-id"), format!("w-{j}"));
            let relayed_by = header(&resp, "x-basis-replica-id");
            assert_eq!(
                relayed_by,
                if i == j {
                    String::new()
                } else {
                    format!("r-{j}")
                }
            );
            let receipt = header(&resp, "x-basis-receipt-id");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(
                body["choices"][0]["message"]["content"],
                format!("echo: {text}")
            );
            assert_eq!(body["basis_receipt_id"], receipt.as_str());
            // The serving replica recorded the receipt in the shared database.
            let other = &replicas[(i + 1) % REPLICAS];
            let got = other
                .http()
                .get(other.at(&format!("/api/receipts/{receipt}")))
                .send()
                .await
                .unwrap();
            assert_eq!(got.status(), 200, "receipt {receipt}");
        }
    }
    // Streamed through a forwarding replica: chunks, then the receipt, then [DONE].
    let (orch, j) = (&replicas[0], 2);
    let resp = orch
        .http()
        .post(orch.at("/v1/chat/completions"))
        .json(&chat_body(&format!("m-{j}"), "stream it over", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-basis-replica-id"), "r-2");
    assert!(header(&resp, "content-type").starts_with("text/event-stream"));
    let events = events(resp).await;
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "echo: stream it over");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert!(last["basis_receipt_id"].is_string(), "{last}");
    // A model nobody serves is still a plain 503 from the replica asked.
    let resp = orch
        .http()
        .post(orch.at("/v1/chat/completions"))
        .json(&chat_body("nobody-serves-this", "x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    drop(workers);
}

#[tokio::test]
async fn unsigned_forged_and_replayed_replica_calls_are_refused() {
    let db = TestDb::create().await;
    let secret = secret();
    let orch = replica(&db, 0, &secret);
    let url = orch.at("/internal/v1/chat/completions");
    let body = serde_json::to_vec(&chat_body("m-0", "x", false)).unwrap();
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or_default().to_owned();
    let post = |headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>| {
        let mut req = orch.http().post(url.clone()).body(body.clone());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let sign_with = |secret: &str, to: &str| {
        let env = |name: &str| match name {
            ENV_REPLICA_ID => Some("r-9".to_owned()),
            ENV_REPLICA_SECRET => Some(secret.to_owned()),
            _ => None,
        };
        let config = ReplicaConfig::resolve(&RawReplica::default(), env, true)
            .unwrap()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        sign::sign(
            &config.secret,
            &config.id,
            &ReplicaId::parse(to).unwrap(),
            "POST",
            "/internal/v1/chat/completions",
            &body,
            now,
        )
        .to_vec()
    };
    let unsigned = post(Vec::new()).await.unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(code(&unsigned.json().await.unwrap()), "REPLICA_AUTH_FAILED");
    let forged = post(sign_with(&self::secret(), "r-0")).await.unwrap();
    assert_eq!(forged.status(), 401);
    let elsewhere = post(sign_with(&secret, "r-1")).await.unwrap();
    assert_eq!(elsewhere.status(), 401, "a signature for another replica");
    // A valid signature passes (no worker serves m-0 here: 503, not forwarded again) and
    // cannot be replayed.
    let valid = sign_with(&secret, "r-0");
    let first = post(valid.clone()).await.unwrap();
    assert_eq!(first.status(), 503);
    let again = post(valid).await.unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(code(&again.json().await.unwrap()), "REPLICA_AUTH_FAILED");
    // Nothing of the secret in the answers or the log.
    assert!(!orch.logs().contains(&secret));
}
