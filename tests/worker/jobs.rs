//! Jobs on the echo runtime: streamed as ordered chunks then `job_done`, cancel and deadline
//! stop a slow job, capacity is respected, and a draining worker refuses new jobs, finishes
//! the running one and exits (or cancels it at the drain timeout).

use std::time::{Duration, Instant};

use basis::domain::{OutputHash, WorkerToken};
use basis::wire::{JobErrorCode, OrchestratorMessage, WorkerMessage};
use basis::worker::WorkerState;

use super::support::{Fake, PATIENCE, chat, start};

fn error_code(m: &WorkerMessage) -> Option<JobErrorCode> {
    match m {
        WorkerMessage::JobError { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn a_job_streams_chunks_in_order_then_done() {
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    let worker = start(&fake.url, &token, |_| {}, None);
    let (conn, _) = fake.connected().await;

    let text = "stream me back please";
    let job_id = fake.job(conn, text, true, 10_000);
    let mut deltas = Vec::new();
    let done = loop {
        match fake.message(conn).await {
            WorkerMessage::JobChunk { job_id: j, delta } => {
                assert_eq!(j, job_id);
                deltas.push(delta);
            }
            other => break other,
        }
    };
    let expected = basis::runtime::answer(&chat(text, true)).unwrap();
    assert_eq!(deltas, basis::runtime::tokens(&expected));
    let WorkerMessage::JobDone {
        job_id: j,
        output,
        usage,
        timings,
        simulated,
    } = done
    else {
        panic!("{done:?}")
    };
    assert_eq!(j, job_id);
    assert_eq!(output.as_deref(), Some("echo: stream me back please"));
    assert_eq!(
        OutputHash::of(expected.as_bytes()),
        OutputHash::of(output.unwrap().as_bytes())
    );
    assert!(simulated);
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (4, 5));
    assert!(timings.first_token_ms <= timings.total_ms);
    fake.send(conn, OrchestratorMessage::JobAck { job_id });

    // Not streamed: no chunks, only the result.
    let quiet = fake.job(conn, "no stream", false, 10_000);
    let done = fake.message(conn).await;
    assert!(
        matches!(&done, WorkerMessage::JobDone { job_id: j, .. } if *j == quiet),
        "{done:?}"
    );
    fake.send(conn, OrchestratorMessage::JobAck { job_id: quiet });

    let status = worker
        .status_until(|s| s.counters.jobs_completed == 2)
        .await;
    assert!(status.current_jobs.is_empty());
    worker.stop().await;
}

#[tokio::test]
async fn cancel_and_the_deadline_stop_a_slow_job() {
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    let worker = start(
        &fake.url,
        &token,
        |o| o.echo_delay = Some(Duration::from_millis(200)),
        None,
    );
    let (conn, _) = fake.connected().await;
    let long = "one two three four five six seven eight nine ten eleven twelve";

    let job_id = fake.job(conn, long, true, 60_000);
    assert!(matches!(
        fake.message(conn).await,
        WorkerMessage::JobChunk { .. }
    ));
    let running = worker.status_until(|s| s.current_jobs.len() == 1).await;
    assert_eq!(running.current_jobs[0].job_id, job_id);
    fake.send(
        conn,
        OrchestratorMessage::Cancel {
            job_id: job_id.clone(),
        },
    );
    let cancelled = Instant::now();
    let end = fake
        .frame(conn, |m| {
            !matches!(
                m,
                WorkerMessage::JobChunk { .. } | WorkerMessage::Heartbeat { .. }
            )
        })
        .await;
    assert_eq!(error_code(&end), Some(JobErrorCode::Cancelled), "{end:?}");
    assert!(cancelled.elapsed() < Duration::from_millis(800));
    fake.send(conn, OrchestratorMessage::JobAck { job_id });

    // 13 tokens at 200 ms cannot fit a 500 ms deadline.
    let job_id = fake.job(conn, long, false, 500);
    let end = fake.message(conn).await;
    assert_eq!(error_code(&end), Some(JobErrorCode::Timeout), "{end:?}");
    fake.send(conn, OrchestratorMessage::JobAck { job_id });

    let status = worker.status_until(|s| s.counters.jobs_failed == 2).await;
    assert!(status.current_jobs.is_empty());
    worker.stop().await;
}

#[tokio::test]
async fn capacity_is_respected() {
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    let worker = start(
        &fake.url,
        &token,
        |o| o.echo_delay = Some(Duration::from_millis(100)),
        None,
    );
    let (conn, _) = fake.connected().await;
    // 16 tokens at 100 ms: both still run at the next heartbeat, a second from now.
    let text = "a b c d e f g h i j k l m n o";
    let a = fake.job(conn, text, false, 10_000);
    let b = fake.job(conn, text, false, 10_000);
    let c = fake.job(conn, text, false, 10_000);
    let refused = fake.message(conn).await;
    assert!(
        matches!(&refused, WorkerMessage::JobError { job_id, code: JobErrorCode::AtCapacity, .. } if *job_id == c),
        "{refused:?}"
    );
    let beat = fake
        .frame(conn, |m| matches!(m, WorkerMessage::Heartbeat { .. }))
        .await;
    assert!(
        matches!(beat, WorkerMessage::Heartbeat { in_flight: 2, .. }),
        "{beat:?}"
    );
    let mut finished = Vec::new();
    for _ in 0..2 {
        match fake.message(conn).await {
            WorkerMessage::JobDone { job_id, .. } => finished.push(job_id),
            other => panic!("{other:?}"),
        }
    }
    finished.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(finished, expected);
    for job_id in finished {
        fake.send(conn, OrchestratorMessage::JobAck { job_id });
    }
    // Room again.
    let d = fake.job(conn, "x", false, 10_000);
    assert!(
        matches!(fake.message(conn).await, WorkerMessage::JobDone { job_id, .. } if job_id == d)
    );
    fake.send(conn, OrchestratorMessage::JobAck { job_id: d });
    worker.stop().await;
}

#[tokio::test]
async fn draining_refuses_new_jobs_and_finishes_the_running_one() {
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    let worker = start(
        &fake.url,
        &token,
        |o| o.echo_delay = Some(Duration::from_millis(100)),
        None,
    );
    let (conn, _) = fake.connected().await;
    let job_id = fake.job(conn, "a b c d e f", false, 10_000);
    worker.status_until(|s| s.current_jobs.len() == 1).await;
    worker.shutdown.drain();
    fake.frame(conn, |m| {
        matches!(m, WorkerMessage::Heartbeat { ready: false, .. })
    })
    .await;
    let late = fake.job(conn, "too late", false, 10_000);
    let refused = fake.message(conn).await;
    assert!(
        matches!(&refused, WorkerMessage::JobError { job_id, code: JobErrorCode::Draining, .. } if *job_id == late),
        "{refused:?}"
    );
    worker
        .status_until(|s| s.state == WorkerState::Draining)
        .await;
    let done = fake.message(conn).await;
    assert!(
        matches!(&done, WorkerMessage::JobDone { job_id: j, .. } if *j == job_id),
        "{done:?}"
    );
    // Exits once the result is acknowledged.
    assert!(!worker.handle.is_finished());
    fake.send(conn, OrchestratorMessage::JobAck { job_id });
    let status = worker.stop().await;
    assert_eq!(status.counters.jobs_completed, 1);
}

#[tokio::test]
async fn the_drain_timeout_cancels_what_still_runs() {
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    let worker = start(
        &fake.url,
        &token,
        |o| {
            o.echo_delay = Some(Duration::from_millis(500));
            o.drain_timeout = Duration::from_millis(700);
        },
        None,
    );
    let (conn, _) = fake.connected().await;
    fake.job(conn, "a b c d e f g h i j", false, 60_000);
    worker.status_until(|s| s.current_jobs.len() == 1).await;
    let started = Instant::now();
    worker.shutdown.drain();
    let end = fake.message(conn).await;
    assert_eq!(error_code(&end), Some(JobErrorCode::Cancelled), "{end:?}");
    tokio::time::timeout(PATIENCE, worker.handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_orchestrators_drain_refuses_jobs_on_that_connection() {
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    let worker = start(&fake.url, &token, |_| {}, None);
    let (conn, _) = fake.connected().await;
    fake.send(conn, OrchestratorMessage::Drain);
    fake.frame(conn, |m| {
        matches!(m, WorkerMessage::Heartbeat { ready: false, .. })
    })
    .await;
    fake.job(conn, "x", false, 10_000);
    assert_eq!(
        error_code(&fake.message(conn).await),
        Some(JobErrorCode::Draining)
    );
    // A new connection takes jobs again.
    fake.close(conn);
    let (next, _) = fake.connected().await;
    let job_id = fake.job(next, "x", false, 10_000);
    assert!(matches!(
        fake.message(next).await,
        WorkerMessage::JobDone { .. }
    ));
    fake.send(next, OrchestratorMessage::JobAck { job_id });
    worker.stop().await;
}
