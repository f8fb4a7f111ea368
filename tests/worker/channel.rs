//! The channel itself: `hello` → `welcome`, heartbeats at the welcomed interval, readiness
//! following the runtime's health, a refused token, reconnects with growing jittered backoff,
//! and a finished result resent after a reconnect until it is acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use basis::domain::{Runtime, WorkerToken};
use basis::runtime::{Backend, Completion, Echo, Health, RuntimeError};
use basis::wire::{OrchestratorMessage, WorkerMessage};
use basis::worker::{BackoffPolicy, WorkerState};

use super::support::{Fake, MODEL, start};

fn is_heartbeat(m: &WorkerMessage) -> bool {
    matches!(m, WorkerMessage::Heartbeat { .. })
}

#[tokio::test]
async fn hello_welcome_and_heartbeats_at_the_interval() {
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    let worker = start(&fake.url, &token, |_| {}, None);
    let (conn, hello) = fake.connected().await;
    let WorkerMessage::Hello {
        protocol,
        worker_id,
        runtime,
        models,
        capacity,
        ..
    } = hello
    else {
        unreachable!()
    };
    assert_eq!(protocol, basis::wire::PROTOCOL_VERSION);
    assert_eq!(worker_id.as_str(), "test-worker");
    assert_eq!(
        (runtime, models, capacity),
        (Runtime::Echo, vec![MODEL.to_owned()], 2)
    );

    // The first heartbeat right after the welcome, then one per second (the welcome's 1 s).
    let mut beats = Vec::new();
    for _ in 0..4 {
        let (beat, at) = fake.frame_at(conn, is_heartbeat).await;
        let WorkerMessage::Heartbeat {
            seq,
            in_flight,
            ready,
        } = beat
        else {
            unreachable!()
        };
        assert!(ready);
        assert_eq!(in_flight, 0);
        beats.push((seq, at));
    }
    for pair in beats.windows(2) {
        assert!(pair[1].0 > pair[0].0, "seq grows");
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap > Duration::from_millis(600) && gap < Duration::from_millis(1600),
            "heartbeat gap {gap:?}"
        );
    }

    let status = worker
        .status_until(|s| s.state == WorkerState::Online && s.last_heartbeat_acked.is_some())
        .await;
    assert!(status.connected_since.is_some());
    assert_eq!(status.heartbeat_interval_s, Some(1));
    assert!(status.runtime_healthy);
    assert_eq!(status.pid, std::process::id());
    assert!(status.orchestrator_url.starts_with("http://127.0.0.1:"));
    let stopped = worker.stop().await;
    assert!(stopped.connected_since.is_none());
}

/// Echo behind a switch: unhealthy until told otherwise.
#[derive(Debug)]
struct Switch {
    healthy: AtomicBool,
    echo: Echo,
}

impl Backend for Switch {
    fn runtime(&self) -> Runtime {
        Runtime::Echo
    }
    fn health(&self) -> BoxFuture<'_, Health> {
        let healthy = self.healthy.load(Ordering::SeqCst);
        async move {
            if healthy {
                Health::up("on")
            } else {
                Health::down("off")
            }
        }
        .boxed()
    }
    fn models(&self) -> BoxFuture<'_, Result<Vec<String>, RuntimeError>> {
        self.echo.models()
    }
    fn chat<'a>(
        &'a self,
        model: &'a str,
        request: &'a Value,
        chunks: mpsc::Sender<String>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<Completion, RuntimeError>> {
        self.echo.chat(model, request, chunks, cancel)
    }
}

#[tokio::test]
async fn heartbeats_say_not_ready_while_the_runtime_is_unhealthy() {
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    let backend = Arc::new(Switch {
        healthy: AtomicBool::new(false),
        echo: Echo::new(vec![MODEL.into()], Duration::ZERO),
    });
    let worker = start(&fake.url, &token, |_| {}, Some(backend.clone()));
    let (conn, _) = fake.connected().await;
    let beat = fake.frame(conn, is_heartbeat).await;
    assert!(matches!(
        beat,
        WorkerMessage::Heartbeat { ready: false, .. }
    ));
    let status = worker
        .status_until(|s| s.state == WorkerState::Online)
        .await;
    assert!(!status.runtime_healthy);

    // Health is re-checked every 200 ms; the change is announced at once, not at the next beat.
    backend.healthy.store(true, Ordering::SeqCst);
    let flipped = Instant::now();
    fake.frame(conn, |m| {
        matches!(m, WorkerMessage::Heartbeat { ready: true, .. })
    })
    .await;
    assert!(
        flipped.elapsed() < Duration::from_millis(900),
        "{:?}",
        flipped.elapsed()
    );
    worker.status_until(|s| s.runtime_healthy).await;
    worker.stop().await;
}

#[tokio::test]
async fn a_refused_token_is_reported_and_retried() {
    let token = WorkerToken::generate();
    let fake = Fake::start(&token).await;
    let wrong = WorkerToken::generate();
    let worker = start(&fake.url, &wrong, |_| {}, None);
    let status = worker
        .status_until(|s| s.state == WorkerState::Backoff && s.last_error.is_some())
        .await;
    let last = status.last_error.unwrap();
    assert_eq!(last.code, "UNAUTHORIZED");
    assert!(!last.message.contains(wrong.expose_secret()));
    assert!(status.retry_at.is_some());
    worker.stop().await;
}

#[tokio::test]
async fn backoff_grows_with_jitter_until_the_orchestrator_is_back() {
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    fake.refuse(true);
    let policy = BackoffPolicy {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(800),
    };
    let worker = start(&fake.url, &token, |o| o.backoff = policy, None);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let attempts = fake.attempts();
    // Ceilings 100, 200, 400, 800, 800, … ms: a fixed 100 ms retry would make ~40 attempts
    // in 4 s; the growing backoff makes about a dozen.
    assert!(
        (3..=25).contains(&attempts.len()),
        "{} attempts",
        attempts.len()
    );
    for (i, pair) in attempts.windows(2).enumerate() {
        let ceiling = (policy.base * 2u32.pow(u32::try_from(i).unwrap().min(10))).min(policy.cap);
        let gap = pair[1] - pair[0];
        assert!(
            gap <= ceiling + Duration::from_millis(400),
            "wait {i}: {gap:?} > {ceiling:?}"
        );
    }
    let status = worker.status_until(|s| s.last_error.is_some()).await;
    assert_eq!(status.last_error.unwrap().code, "HTTP_503");

    fake.refuse(false);
    let back = Instant::now();
    fake.connected().await;
    assert!(
        back.elapsed() < Duration::from_secs(2),
        "within the 800 ms cap"
    );
    let online = worker
        .status_until(|s| s.state == WorkerState::Online)
        .await;
    assert!(online.last_error.is_none());
    worker.stop().await;
}

#[tokio::test]
async fn an_unacknowledged_result_is_resent_after_a_reconnect() {
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    let worker = start(&fake.url, &token, |_| {}, None);
    let (first, _) = fake.connected().await;
    let job_id = fake.job(first, "keep this safe", false, 10_000);
    let done = fake.message(first).await;
    assert!(matches!(&done, WorkerMessage::JobDone { job_id: j, .. } if *j == job_id));
    // The connection drops before the orchestrator acknowledges the result.
    fake.close(first);

    let (second, _) = fake.connected().await;
    assert_eq!(fake.message(second).await, done, "the same result, resent");
    fake.send(second, OrchestratorMessage::JobAck { job_id });
    // Give the ack time to land, then drop again: nothing is resent this time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    fake.close(second);
    let (third, _) = fake.connected().await;
    assert!(
        fake.quiet(third, Duration::from_millis(1500))
            .await
            .is_empty()
    );

    let status = worker.status_until(|s| s.counters.reconnects == 2).await;
    assert_eq!(status.counters.jobs_completed, 1);
    worker.stop().await;
}
