//! The real `basis worker` under a real `basis orchestrator` that is killed (SIGKILL) and started
//! again on the same database and address: the worker notices the loss, backs off (1 s doubling to
//! 30 s, with jitter: docs/PROTOCOL.md, "Reconnecting and draining"), reconnects and is online
//! again within the backoff cap of the orchestrator's return, and gateway jobs route to it again;
//! the job it finished before the kill is still counted.

use std::path::Path;
use std::time::{Duration, Instant};

use basis::domain::{Runtime, WalletAddress, WorkerId, WorkerToken};
use basis::wire::RegisterRequest;
use basis::worker::{BackoffPolicy, WorkerState, WorkerStatus};
use serde_json::{Value, json};

use super::support::{KillOnDrop, MODEL, read_status, worker_command, write_env};
use crate::common::orchestrator::{Options, Orchestrator, RELAXED_LIMITS};

const WORKER: &str = "restart-worker";
const WALLET: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
/// Process starts and handshakes on a loaded 2-core machine: generous, but bounded.
const SLACK: Duration = Duration::from_secs(20);

/// Polls `probe` every 100 ms until it returns `Some`, for at most `limit`.
async fn poll<T, F: Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {} s",
            limit.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The orchestrator's record of the worker (`online` is live: the hub's, not the store's).
async fn worker_record(orch: &Orchestrator) -> Option<Value> {
    let resp = orch
        .http()
        .get(orch.at(&format!("/api/workers/{WORKER}")))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

async fn online(orch: &Orchestrator) -> Option<Value> {
    worker_record(orch).await.filter(|r| r["online"] == true)
}

fn status(home: &Path, token: &WorkerToken) -> Option<WorkerStatus> {
    let path = home.join("state/worker-status.json");
    path.exists().then(|| read_status(&path, token))
}

/// The echo worker's registration with `token`.
fn registration(token: &WorkerToken) -> RegisterRequest {
    RegisterRequest {
        worker_id: WorkerId::parse(WORKER).unwrap(),
        wallet: WalletAddress::parse(WALLET).unwrap(),
        runtime: Runtime::Echo,
        models: vec![MODEL.into()],
        token_sha256: token.sha256(),
        public_key: None,
        hardware: None,
        version: "0.1.0".into(),
        multi_task: false,
        labels: Vec::new(),
    }
}

/// A non-streamed chat completion through the gateway: (status, worker header, content).
async fn chat(orch: &Orchestrator, text: &str) -> (u16, String, String) {
    let resp = orch
        .http()
        .post(orch.at("/v1/chat/completions"))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": text}]}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let worker = resp
        .headers()
        .get("x-basis-worker-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let content = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, worker, content)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_comes_back_online_after_the_orchestrator_restarts() {
    let mut orch = Orchestrator::with(Options {
        toml: format!("heartbeat_interval_s = 2\nonline_window_s = 10\n{RELAXED_LIMITS}"),
        args: vec!["--open".into()],
        ..Options::default()
    });
    let token = WorkerToken::generate();
    let request = registration(&token);
    orch.client().register(&request, None, None).await.unwrap();

    let home = tempfile::tempdir().unwrap();
    let env_file = write_env(
        home.path(),
        &format!(
            "BASIS_WORKER_ID={WORKER}\nBASIS_WORKER_RUNTIME=echo\nBASIS_WORKER_MODELS={MODEL}\n\
             BASIS_ORCHESTRATOR_URL={}\nBASIS_WORKER_TOKEN={}\nBASIS_ECHO_DELAY_MS=1\n",
            orch.url,
            token.expose_secret()
        ),
    );
    let log = home.path().join("worker.log");
    let mut worker = KillOnDrop(
        worker_command(home.path(), &env_file)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );

    poll("the worker online at first", SLACK * 2, || online(&orch)).await;
    let (code, routed, content) = chat(&orch, "before").await;
    assert_eq!(
        (code, routed.as_str(), content.as_str()),
        (200, WORKER, "echo: before")
    );

    orch.kill();
    poll("the worker noticing the lost connection", SLACK, || async {
        status(home.path(), &token).filter(|s| s.state != WorkerState::Online)
    })
    .await;

    orch.restart_on_same_address(SLACK);
    let back = Instant::now();
    // Its next attempt comes at most one backoff ceiling after the orchestrator is back.
    let cap = BackoffPolicy::default().cap;
    let record = poll("the worker online again", cap + SLACK, || online(&orch)).await;
    let took = back.elapsed();
    let worker_log = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        took <= cap + SLACK,
        "online again only after {took:?}; worker log:\n{}",
        worker_log()
    );
    eprintln!("online again {took:?} after the orchestrator came back");
    let st = poll("the status file saying online", SLACK, || async {
        status(home.path(), &token).filter(|s| s.state == WorkerState::Online)
    })
    .await;
    assert!(st.counters.reconnects >= 1, "{st:#?}");
    assert_eq!(
        record["jobs_completed"], 1,
        "the job finished before the kill survives it: {record:#}"
    );

    let (code, routed, content) = chat(&orch, "after").await;
    assert_eq!(
        (code, routed.as_str(), content.as_str()),
        (200, WORKER, "echo: after"),
        "worker log:\n{}\norchestrator log:\n{}",
        worker_log(),
        orch.logs()
    );
    let record = poll("the second job counted", SLACK, || async {
        worker_record(&orch)
            .await
            .filter(|r| r["jobs_completed"] == 2 && r["online"] == true)
    })
    .await;
    assert_eq!(record["worker_id"], WORKER);

    // A clean stop; the token never reached the worker's log.
    let term = std::process::Command::new("kill")
        .args(["-TERM", &worker.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = poll("the worker exiting on SIGTERM", SLACK, || {
        std::future::ready(worker.0.try_wait().unwrap())
    })
    .await;
    assert_eq!(exit.code(), Some(0), "worker log:\n{}", worker_log());
    assert!(
        !worker_log().contains(token.expose_secret()),
        "the token leaked into the worker's log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_fails_over_to_another_replica_when_its_orchestrator_dies() {
    use basis::orchestrator::store::postgres::testdb::TestDb;
    let db = TestDb::create().await;
    let replica = || {
        Orchestrator::with(Options {
            toml: format!("heartbeat_interval_s = 2\nonline_window_s = 10\n{RELAXED_LIMITS}"),
            args: vec!["--open".into()],
            env: vec![("BASIS_DATABASE_URL".into(), db.url.clone())],
        })
    };
    let mut a = replica();
    let b = replica();
    let token = WorkerToken::generate();
    let request = registration(&token);
    a.client().register(&request, None, None).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let env_file = write_env(
        home.path(),
        &format!(
            "BASIS_WORKER_ID={WORKER}\nBASIS_WORKER_RUNTIME=echo\nBASIS_WORKER_MODELS={MODEL}\n\
             BASIS_ORCHESTRATOR_URL={}\nBASIS_ORCHESTRATOR_FALLBACK_URLS={}\n\
             BASIS_WORKER_TOKEN={}\nBASIS_ECHO_DELAY_MS=1\n",
            a.url,
            b.url,
            token.expose_secret()
        ),
    );
    let log = home.path().join("worker.log");
    let _worker = KillOnDrop(
        worker_command(home.path(), &env_file)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    poll("the worker online on its orchestrator", SLACK * 2, || {
        online(&a)
    })
    .await;
    assert_eq!(chat(&a, "on a").await.0, 200);
    // Presence is shared: the other replica's registry shows it online too.
    poll(
        "the worker online in the other replica's registry",
        SLACK,
        || online(&b),
    )
    .await;
    // Its orchestrator dies for good: the worker reconnects to the other replica within the
    // backoff cap, and serves there.
    a.kill();
    let gone = Instant::now();
    let cap = BackoffPolicy::default().cap;
    let (routed, content) = poll(
        "the worker serving on the other replica",
        cap + SLACK,
        || async {
            let (code, routed, content) = chat(&b, "on b").await;
            (code == 200).then_some((routed, content))
        },
    )
    .await;
    eprintln!(
        "serving on the other replica {:?} after the kill",
        gone.elapsed()
    );
    assert_eq!(
        (routed.as_str(), content.as_str()),
        (WORKER, "echo: on b"),
        "worker log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
