//! Several orchestrator processes on one PostgreSQL database (a fresh one per test): any
//! replica answers any market or registry call, 100 claimers spread over three replicas give
//! exactly one winner, and a replica killed with SIGKILL loses nothing acknowledged; a database
//! that goes away is 503 `STORE_UNAVAILABLE`, and the replica recovers by itself. Also
//! `basis orchestrator migrate`.

use basis::domain::Runtime;
use basis::orchestrator::store::postgres::testdb::TestDb;
use reqwest::Method;

use super::market::*;
use super::*;

/// An `--open` market orchestrator on `url`.
fn replica(url: &str) -> Orchestrator {
    Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: market_toml(""),
        env: vec![("BASIS_DATABASE_URL".into(), url.into())],
    })
}

#[tokio::test]
async fn claims_over_three_replicas_of_one_database_have_one_winner() -> TestResult {
    let db = TestDb::create().await;
    let mut replicas = [replica(&db.url), replica(&db.url), replica(&db.url)];
    // Workers registered on different replicas; a task posted on a third.
    let mut tokens = Vec::new();
    for i in 0..100 {
        let id = format!("w-{i}");
        tokens.push((
            id.clone(),
            worker(&replicas[i % 3], &id, Runtime::Vllm, false).await,
        ));
    }
    let task = post_task(&replicas[2], &task_body("10")).await;
    let attempts = tokens.iter().enumerate().map(|(i, (id, token))| {
        let orch = &replicas[i % 3];
        let task = task.clone();
        async move { (id.clone(), claim(orch, &task, id, token).await.status) }
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<&String> = results
        .iter()
        .filter(|(_, status)| *status == 200)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results.iter().all(|(_, s)| *s == 200 || *s == 409),
        "{results:?}"
    );
    // Every replica sees the one claim.
    for orch in &replicas {
        let got = get(orch, &format!("/api/tasks/{task}")).await;
        assert_eq!(got.body["claimed_by"], winners[0].as_str(), "{}", got.text);
    }
    // A replica killed mid-flight loses nothing acknowledged: the others answer for it.
    replicas[0].kill();
    let winner = tokens
        .iter()
        .find(|(id, _)| id == winners[0])
        .expect("the winner");
    let output = "A fox jumps over a dog.";
    let s = submit(
        &replicas[1],
        &task,
        &winner.1,
        &output_body(&winner.0, output),
    )
    .await;
    assert_eq!(s.status, 201, "{}", s.text);
    let got = get(&replicas[2], &format!("/api/tasks/{task}")).await;
    assert_eq!(got.body["status"], "submitted");
    let registry = get(&replicas[2], "/api/workers?limit=200").await;
    assert_eq!(
        registry.body["workers"].as_array().map(Vec::len),
        Some(100),
        "{}",
        registry.text
    );
    Ok(())
}

/// One registration over HTTP: (status, error code, Retry-After).
async fn register_over_http(orch: &Orchestrator, id: &str) -> (u16, String, Option<String>) {
    let resp = orch
        .http()
        .post(orch.at("/api/workers/register"))
        .json(&raw_body(id, WALLET_LOWER, &WorkerToken::generate()))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code, retry)
}

#[tokio::test]
async fn a_lost_database_is_503_store_unavailable_and_the_replica_recovers_by_itself() -> TestResult
{
    let db = TestDb::create().await;
    let orch = replica(&db.url);
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let id = format!("before-{i}");
        assert_eq!(register_over_http(&orch, &id).await.0, 201);
        acknowledged.push(id);
    }
    // The database goes away (connections cut, new ones refused): every request fails as
    // unavailable, with a Retry-After, and changes nothing.
    db.accept_connections(false).await;
    let mut refused = Vec::new();
    for i in 0..10 {
        let id = format!("during-{i}");
        let (status, code, retry) = register_over_http(&orch, &id).await;
        match status {
            201 => acknowledged.push(id),
            503 => {
                assert_eq!(code, "STORE_UNAVAILABLE");
                assert!(retry.is_some(), "503 without Retry-After");
                refused.push(id);
            }
            other => panic!("{id}: {other} {code}"),
        }
    }
    assert!(!refused.is_empty(), "no request saw the database gone");
    let health = orch.http().get(orch.at("/health")).send().await?;
    assert_eq!(health.status(), 503, "health while the database is gone");
    // Back: the same process serves again, without a restart.
    db.accept_connections(true).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut i = 0;
    loop {
        let id = format!("after-{i}");
        let (status, code, _) = register_over_http(&orch, &id).await;
        if status == 201 {
            acknowledged.push(id);
            break;
        }
        assert_eq!((status, code.as_str()), (503, "STORE_UNAVAILABLE"));
        assert!(Instant::now() < deadline, "the replica did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
        i += 1;
    }
    // Everything acknowledged is there; nothing refused was half-written.
    let list = get(&orch, "/api/workers?limit=100").await;
    let ids: Vec<&str> = list.body["workers"]
        .as_array()
        .map(|w| w.iter().filter_map(|w| w["worker_id"].as_str()).collect())
        .unwrap_or_default();
    for id in &acknowledged {
        assert!(ids.contains(&id.as_str()), "{id} was acknowledged and lost");
    }
    for id in &refused {
        assert!(!ids.contains(&id.as_str()), "{id} was refused and written");
    }
    Ok(())
}

#[tokio::test]
async fn migrate_applies_the_schema_without_serving() -> TestResult {
    let db = TestDb::create().await;
    let dir = tempfile::tempdir()?;
    let out = std::process::Command::new(common::orchestrator::bin())
        .args(["orchestrator", "migrate"])
        .env("BASIS_HOME", dir.path())
        .env("BASIS_DATABASE_URL", &db.url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("schema up to date"), "{text}");
    // A replica then starts on it and serves.
    let orch = replica(&db.url);
    assert!(orch.client().health().await.is_ok());
    // A URL that is not PostgreSQL's is refused before anything is touched.
    let out = std::process::Command::new(common::orchestrator::bin())
        .args(["orchestrator", "migrate", "--database-url", "mysql://x@y/z"])
        .env("BASIS_HOME", dir.path())
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("postgres://"));
    Ok(())
}

#[tokio::test]
async fn copy_from_a_populated_sqlite_file_gives_the_same_answers() -> TestResult {
    let Populated {
        mut node,
        evaluator,
        tokens,
        tasks,
        sub,
    } = populated().await?;
    // Every read route, as the single node answers it.
    let receipt = call(
        &node,
        Method::GET,
        &format!("/api/submissions/{sub}"),
        Some(&evaluator),
        None,
        None,
    )
    .await
    .body["receipt_id"]
        .as_str()
        .ok_or("no receipt")?
        .to_owned();
    let mut reads = vec![
        "/api/workers".to_owned(),
        "/api/tasks".to_owned(),
        "/api/tasks?status=claimed".to_owned(),
        "/api/tasks?status=completed".to_owned(),
        format!("/api/receipts/{receipt}"),
    ];
    for id in ["gpu-1", "gpu-2", "gpu-3"] {
        reads.push(format!("/api/workers/{id}"));
        reads.push(format!("/api/workers/{id}/rewards"));
    }
    reads.extend(tasks.iter().map(|t| format!("/api/tasks/{t}")));
    let before = read_all(&node, &reads, &evaluator, &sub).await;
    assert!(node.terminate().success());

    // Copied into an empty PostgreSQL database, then served from it.
    let db = TestDb::create().await;
    let copy = |target: &str| {
        std::process::Command::new(common::orchestrator::bin())
            .args(["orchestrator", "copy", "--from"])
            .arg(format!("sqlite:{}", node.db.display()))
            .args(["--to", target])
            .env("BASIS_HOME", node.dir.path())
            .output()
    };
    let out = copy(&db.url)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("tasks: 3 rows") && text.contains("credits: 1 rows"),
        "{text}"
    );
    let replica = replica(&db.url);
    let after = read_all(&replica, &reads, &evaluator, &sub).await;
    for ((path, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{path} differs after the copy");
    }
    // The copy keeps working: the next claim and the evaluator key still work there.
    assert_eq!(
        claim(&replica, &tasks[2], "gpu-3", &tokens[2]).await.status,
        200
    );
    // Copying again into the same (now populated) database is refused.
    let out = copy(&db.url)?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds data"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Every path of `reads` as `orch` answers it, and the submission as its evaluator reads it.
async fn read_all(
    orch: &Orchestrator,
    reads: &[String],
    evaluator: &str,
    sub: &str,
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in reads {
        out.push((path.clone(), get(orch, path).await.body));
    }
    let path = format!("/api/submissions/{sub}");
    let s = call(orch, Method::GET, &path, Some(evaluator), None, None).await;
    out.push((path, s.body));
    out
}

/// A single node on SQLite with some of everything: workers, an evaluator key, tasks open,
/// claimed and settled, a credit and its receipt.
struct Populated {
    node: Orchestrator,
    evaluator: String,
    tokens: Vec<WorkerToken>,
    tasks: Vec<String>,
    sub: String,
}

async fn populated() -> Result<Populated, Box<dyn std::error::Error>> {
    let node = market("");
    let evaluator = node.create_key("evaluator").0.trim().to_owned();
    let mut tokens = Vec::new();
    for id in ["gpu-1", "gpu-2", "gpu-3"] {
        tokens.push(worker(&node, id, Runtime::Vllm, false).await);
    }
    let tasks: Vec<String> = {
        let mut v = Vec::new();
        for reward in ["1000000", "2000000", "3000000"] {
            v.push(post_task(&node, &task_body(reward)).await);
        }
        v
    };
    assert_eq!(
        claim(&node, &tasks[0], "gpu-1", &tokens[0]).await.status,
        200
    );
    let s = submit(
        &node,
        &tasks[0],
        &tokens[0],
        &output_body("gpu-1", "A fox."),
    )
    .await;
    let sub = s.body["submission_id"]
        .as_str()
        .ok_or("no submission")?
        .to_owned();
    let verdict = json!({"score": 95, "passed": true, "reasons": ["fine"]});
    assert_eq!(
        evaluate(&node, &sub, Some(&evaluator), &verdict)
            .await
            .status,
        200
    );
    assert_eq!(
        claim(&node, &tasks[1], "gpu-2", &tokens[1]).await.status,
        200
    );
    let settled = get(&node, &format!("/api/tasks/{}", tasks[0])).await;
    assert_eq!(settled.body["status"], "completed", "{}", settled.text);

    Ok(Populated {
        node,
        evaluator,
        tokens,
        tasks,
        sub,
    })
}

#[tokio::test]
async fn the_sweeper_runs_on_one_replica_and_moves_when_it_is_killed() -> TestResult {
    let db = TestDb::create().await;
    // The first replica takes the sweeper's lease at its first tick; the others find it held.
    let mut first = replica(&db.url);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        first.logs().contains("now runs the singleton job"),
        "{}",
        first.logs()
    );
    let others = [replica(&db.url), replica(&db.url)];
    tokio::time::sleep(Duration::from_millis(300)).await;
    for o in &others {
        assert!(
            !o.logs().contains("now runs the singleton job"),
            "{}",
            o.logs()
        );
    }
    // The holder dies; a task due soon still expires, swept by another replica.
    first.kill();
    let mut body = task_body("10");
    body["deadline"] = json!(basis_now() + 2);
    let task = post_task(&others[0], &body).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = get(&others[1], &format!("/api/tasks/{task}")).await;
        if got.body["status"] == "expired" {
            break;
        }
        assert!(Instant::now() < deadline, "never swept: {}", got.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        others
            .iter()
            .any(|o| o.logs().contains("now runs the singleton job")),
        "no replica took the lease over"
    );
    Ok(())
}
