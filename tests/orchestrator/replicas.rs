//! Several orchestrator processes on one PostgreSQL database (a fresh one per test): any
//! replica answers any market or registry call, 100 claimers spread over three replicas give
//! exactly one winner, and a replica killed with SIGKILL loses nothing acknowledged. Also
//! `basis orchestrator migrate`.

use basis::domain::Runtime;
use basis::orchestrator::store::postgres::testdb::TestDb;

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
