//! The real `basis worker --env PATH` process: SIGTERM during a job lets the job finish and
//! be delivered, then the process exits 0 with a 0600 status file and logs that never hold
//! the token; an incomplete env file is refused with a clear problem; the env file's capacity
//! is what the worker announces, unless `--capacity` overrides it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use basis::domain::WorkerToken;
use basis::wire::{JobErrorCode, OrchestratorMessage, WorkerMessage};
use basis::worker::WorkerState;

use super::support::{Fake, KillOnDrop, MODEL, read_status, worker_command, write_env};

#[tokio::test]
async fn sigterm_during_a_job_finishes_it_then_exits_zero() {
    let home = tempfile::tempdir().unwrap();
    let token = WorkerToken::generate();
    let mut fake = Fake::start(&token).await;
    let env_file = write_env(
        home.path(),
        &format!(
            "BASIS_WORKER_ID=term-worker\nBASIS_WORKER_RUNTIME=echo\nBASIS_WORKER_MODELS={MODEL}\n\
             BASIS_ORCHESTRATOR_URL={}\nBASIS_WORKER_TOKEN={}\nBASIS_ECHO_DELAY_MS=150\n",
            fake.url,
            token.expose_secret()
        ),
    );
    let log = home.path().join("stderr.log");
    let mut child = worker_command(home.path(), &env_file)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    let (conn, _) = fake.connected().await;
    let job_id = fake.job(conn, "finish me before you go", true, 30_000);
    assert!(matches!(
        fake.message(conn).await,
        WorkerMessage::JobChunk { .. }
    ));
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());

    // Draining: announced not ready, new jobs refused, the running job streams to its end.
    fake.frame(conn, |m| {
        matches!(m, WorkerMessage::Heartbeat { ready: false, .. })
    })
    .await;
    let late = fake.job(conn, "too late", false, 30_000);
    let mut output = None;
    let mut refused = false;
    while output.is_none() || !refused {
        match fake.message(conn).await {
            WorkerMessage::JobChunk { .. } => {}
            WorkerMessage::JobError { job_id, code, .. } => {
                assert_eq!((job_id, code), (late.clone(), JobErrorCode::Draining));
                refused = true;
            }
            WorkerMessage::JobDone {
                job_id: j,
                output: o,
                ..
            } => {
                assert_eq!(j, job_id);
                output = o;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(output.as_deref(), Some("echo: finish me before you go"));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still delivering the result"
    );
    fake.send(conn, OrchestratorMessage::JobAck { job_id });

    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        exit.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    let status = read_status(&home.path().join("state/worker-status.json"), &token);
    assert_eq!(status.state, WorkerState::Stopped);
    assert_eq!(status.counters.jobs_completed, 1);
    assert_eq!(status.pid, child.id());
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.contains("draining"), "{logs}");
    assert!(
        !logs.contains(token.expose_secret()),
        "the token leaked into the logs"
    );
}

#[tokio::test]
async fn an_incomplete_env_file_is_refused_clearly() {
    let home = tempfile::tempdir().unwrap();
    let env_file = write_env(
        home.path(),
        "BASIS_WORKER_ID=half-worker\nBASIS_WORKER_RUNTIME=echo\n",
    );
    let out = worker_command(home.path(), &env_file)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ENV_INCOMPLETE"), "{stderr}");
    for key in [
        "BASIS_WORKER_MODELS",
        "BASIS_ORCHESTRATOR_URL",
        "BASIS_DEVICE_KEY",
    ] {
        assert!(stderr.contains(key), "{stderr}");
    }
    assert!(stderr.contains("basis write-env"), "{stderr}");
    assert!(!home.path().join("state/worker-status.json").exists());
}

#[tokio::test]
async fn the_worker_announces_the_env_files_capacity_and_the_flag_overrides_it() {
    let token = WorkerToken::generate();
    for (flag, want) in [(None, 5), (Some("7"), 7)] {
        let home = tempfile::tempdir().unwrap();
        let mut fake = Fake::start(&token).await;
        let env_file = write_env(
            home.path(),
            &format!(
                "BASIS_WORKER_ID=cap-worker\nBASIS_WORKER_RUNTIME=echo\nBASIS_WORKER_MODELS={MODEL}\n\
                 BASIS_ORCHESTRATOR_URL={}\nBASIS_WORKER_TOKEN={}\nBASIS_WORKER_CAPACITY=5\n",
                fake.url,
                token.expose_secret()
            ),
        );
        let mut cmd = worker_command(home.path(), &env_file);
        if let Some(flag) = flag {
            cmd.args(["--capacity", flag]);
        }
        let _child = KillOnDrop(cmd.stderr(Stdio::null()).spawn().unwrap());
        let (_, hello) = fake.connected().await;
        let WorkerMessage::Hello { capacity, .. } = hello else {
            panic!("{hello:?}")
        };
        assert_eq!(capacity, want, "flag {flag:?}");
    }
}
