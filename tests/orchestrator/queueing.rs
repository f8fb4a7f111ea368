//! The gateway's wait queue, against the real orchestrator process and in-test workers whose
//! job ends the test decides: requests that find every worker busy wait for capacity instead
//! of 503 (and leave the queue when their client leaves); a full queue or a wait past
//! `queue_timeout_ms` is 503 with `Retry-After`; lanes take turns, so a client key sending a
//! tenth of another's load is not starved.

use std::time::{Duration, Instant};

use super::fake_worker::*;
use super::*;

fn orchestrator(extra: &str, open: bool) -> Orchestrator {
    Orchestrator::with(Options {
        args: if open {
            vec!["--open".into()]
        } else {
            Vec::new()
        },
        toml: format!("{extra}\n{}", fast_toml()),
        ..Options::default()
    })
}

/// `POST /v1/chat/completions` for model `m` saying `text`, with `key` (if any), in a task.
fn send(
    orch: &Orchestrator,
    key: Option<&str>,
    text: &str,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let (http, url) = (orch.http(), orch.at("/v1/chat/completions"));
    let body = json!({"model": "m", "messages": [{"role": "user", "content": text}]});
    let key = key.map(str::to_owned);
    tokio::spawn(async move {
        let mut req = http.post(url).json(&body);
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        req.send().await
    })
}

/// The value of an unlabelled metric line `name value`.
async fn metric(orch: &Orchestrator, name: &str) -> f64 {
    let text = orch
        .http()
        .get(orch.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(f64::NAN)
}

async fn until_metric(orch: &Orchestrator, name: &str, want: f64) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = metric(orch, name).await;
        if (got - want).abs() < f64::EPSILON {
            return;
        }
        assert!(Instant::now() < deadline, "{name} stayed {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const DEPTH: &str = "basis_orchestrator_gateway_queue_depth";

/// The user text of a job's request.
fn text_of(request: &Value) -> String {
    request["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn eight_clients_against_capacity_four_are_all_answered() -> TestResult {
    let orch = orchestrator("", true);
    let token = register(&orch, "gpu-q", &["m"]).await;
    let mut worker = FakeWorker::connect(&orch, &token, "gpu-q", &["m"], 4).await;
    let calls: Vec<_> = (0..8)
        .map(|i| send(&orch, None, &format!("c{i}")))
        .collect();
    // Four run, four wait.
    let mut running = Vec::new();
    for _ in 0..4 {
        running.push(worker.next_job().await.0);
    }
    until_metric(&orch, DEPTH, 4.0).await;
    // Each job that ends lets one waiting request in.
    for _ in 0..4 {
        let done = running.remove(0);
        worker.done(&done, "ok");
        running.push(worker.next_job().await.0);
    }
    until_metric(&orch, DEPTH, 0.0).await;
    for job in running {
        worker.done(&job, "ok");
    }
    for call in calls {
        let resp = call.await??;
        assert_eq!(resp.status(), 200);
    }
    let served = metric(
        &orch,
        "basis_orchestrator_gateway_queued_total{outcome=\"served\"}",
    )
    .await;
    assert!((served - 4.0).abs() < f64::EPSILON, "served {served}");
    Ok(())
}

#[tokio::test]
async fn a_full_queue_and_a_long_wait_are_503_with_retry_after() -> TestResult {
    let orch = orchestrator("queue_timeout_ms = 400\nmax_queued_per_model = 1", true);
    let token = register(&orch, "gpu-q", &["m"]).await;
    let mut worker = FakeWorker::connect(&orch, &token, "gpu-q", &["m"], 1).await;
    let first = send(&orch, None, "first");
    let (job, _) = worker.next_job().await;
    let waiting = send(&orch, None, "waits");
    until_metric(&orch, DEPTH, 1.0).await;
    // The queue holds one: the next is refused at once.
    let started = Instant::now();
    let full = send(&orch, None, "no room").await??;
    assert_eq!(full.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "refused at once"
    );
    assert_eq!(full.headers()["retry-after"], "1");
    let body: Value = full.json().await?;
    assert_eq!(body["error"]["code"], "NO_WORKER_AVAILABLE");
    // The waiting one gives up after queue_timeout_ms.
    let timed_out = waiting.await??;
    assert_eq!(timed_out.status(), 503);
    assert_eq!(timed_out.headers()["retry-after"], "1");
    let body: Value = timed_out.json().await?;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("400 ms"),
        "{body}"
    );
    worker.done(&job, "ok");
    assert_eq!(first.await??.status(), 200);
    Ok(())
}

#[tokio::test]
async fn a_client_that_leaves_the_queue_gives_its_place_up_at_once() -> TestResult {
    let orch = orchestrator("", true);
    let token = register(&orch, "gpu-q", &["m"]).await;
    let mut worker = FakeWorker::connect(&orch, &token, "gpu-q", &["m"], 1).await;
    let first = send(&orch, None, "first");
    let (job, _) = worker.next_job().await;
    let gone = send(&orch, None, "gone");
    until_metric(&orch, DEPTH, 1.0).await;
    gone.abort();
    until_metric(&orch, DEPTH, 0.0).await;
    let next = send(&orch, None, "next");
    until_metric(&orch, DEPTH, 1.0).await;
    worker.done(&job, "ok");
    // The freed unit goes to the one still waiting; the one that left never reaches a worker.
    let (job, request) = worker.next_job().await;
    assert_eq!(text_of(&request), "next");
    worker.done(&job, "ok");
    assert_eq!(first.await??.status(), 200);
    assert_eq!(next.await??.status(), 200);
    let gone = metric(
        &orch,
        "basis_orchestrator_gateway_queued_total{outcome=\"gone\"}",
    )
    .await;
    assert!((gone - 1.0).abs() < f64::EPSILON, "gone {gone}");
    Ok(())
}

/// One worker of capacity 1 answering every job after `JOB` ms; a heavy client key keeps 20
/// requests waiting while a light key sends one request at a time. Lanes take turns, so a
/// light request waits for at most the job running now plus one heavy job, then runs: 3 ×
/// `JOB` from sending to answer; first come first served would put it behind the 20 heavy
/// ones (over 20 × `JOB`).
#[tokio::test]
async fn a_light_client_key_is_not_starved_by_a_heavy_one() -> TestResult {
    const JOB: u64 = 50;
    let orch = orchestrator("", false);
    let (heavy, light) = (client_key(&orch), client_key(&orch));
    let token = register(&orch, "gpu-q", &["m"]).await;
    let mut worker = FakeWorker::connect(&orch, &token, "gpu-q", &["m"], 1).await;
    let responder = tokio::spawn(async move {
        loop {
            let (job, _) = worker.next_job().await;
            tokio::time::sleep(Duration::from_millis(JOB)).await;
            worker.done(&job, "ok");
        }
    });
    let heavy_calls: Vec<_> = (0..20)
        .map(|i| send(&orch, Some(&heavy), &format!("heavy {i}")))
        .collect();
    until_metric(&orch, DEPTH, 19.0).await;
    let mut waits = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        let resp = send(&orch, Some(&light), &format!("light {i}")).await??;
        assert_eq!(resp.status(), 200);
        waits.push(started.elapsed());
    }
    responder.abort();
    let worst = waits.iter().max().copied().unwrap_or_default();
    // 3 × JOB is the bound; the rest is slack for a loaded 2-core machine, still half the
    // 20 × JOB = 1 s a first-come-first-served queue would take.
    assert!(
        worst < Duration::from_millis(10 * JOB),
        "the light key waited up to {worst:?}: {waits:?}"
    );
    for call in heavy_calls {
        call.abort();
    }
    Ok(())
}

#[tokio::test]
async fn a_worker_that_becomes_ready_takes_a_waiting_request() -> TestResult {
    let orch = orchestrator("", true);
    let (ta, tb) = (
        register(&orch, "gpu-a", &["m"]).await,
        register(&orch, "gpu-b", &["m", "only-b"]).await,
    );
    let mut a = FakeWorker::connect(&orch, &ta, "gpu-a", &["m"], 1).await;
    let mut b = FakeWorker::connect(&orch, &tb, "gpu-b", &["m", "only-b"], 1).await;
    // b says it is not ready (its model leaves /v1/models); a takes the first request and is
    // then full.
    b.heartbeats(true, false);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let list: Value = orch
            .http()
            .get(orch.at("/v1/models"))
            .send()
            .await?
            .json()
            .await?;
        if !list.to_string().contains("only-b") {
            break;
        }
        assert!(Instant::now() < deadline, "b stayed routable: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = send(&orch, None, "first");
    let (job_a, _) = a.next_job().await;
    let waiting = send(&orch, None, "waiting");
    until_metric(&orch, DEPTH, 1.0).await;
    // b's next heartbeat says ready: the waiting request goes to b, while a is still busy.
    b.heartbeats(true, true);
    let (job_b, request) = b.next_job().await;
    assert_eq!(text_of(&request), "waiting");
    b.done(&job_b, "from b");
    a.done(&job_a, "from a");
    let waiting = waiting.await??;
    assert_eq!(waiting.headers()["x-basis-worker-id"], "gpu-b");
    assert_eq!(first.await??.status(), 200);
    Ok(())
}
