//! Discovery against a real orchestrator: the network's and a worker's ERC-8004 registration
//! files validate against the registration-v1 shape (tests/data/erc8004), hold no token, key
//! or private field, and say `active: false` once the worker goes stale; an agent link needs
//! the worker's token; the leaderboard ranks a worker with passed tasks above one that lost a
//! dispute, and a task family by its best confirmed metric.

use basis::domain::Runtime;

use super::fake_worker::*;
use super::market::*;
use super::*;

fn shape() -> jsonschema::Validator {
    let text = std::fs::read_to_string("tests/data/erc8004/registration-v1.schema.json").unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn valid(validator: &jsonschema::Validator, file: &Value) {
    let errors: Vec<String> = validator.iter_errors(file).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?} in {file}");
}

async fn get(orch: &Orchestrator, path: &str) -> (u16, Value) {
    let resp = orch.http().get(orch.at(path)).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn registration_files_have_the_shape_and_no_secret() -> TestResult {
    let orch = fast();
    let shape = shape();
    let (status, network) = get(&orch, "/.well-known/agent-registration.json").await;
    assert_eq!(status, 200);
    valid(&shape, &network);
    let services: Vec<&str> = network["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        services.contains(&"OpenAI") && services.contains(&"basis-tasks"),
        "{network}"
    );
    let image = orch
        .http()
        .get(network["image"].as_str().unwrap())
        .send()
        .await?;
    assert_eq!(image.headers()["content-type"], "image/svg+xml");

    let token = register(&orch, "gpu-d", &["m"]).await;
    let worker = FakeWorker::connect(&orch, &token, "gpu-d", &["m"], 4).await;
    let (status, file) = get(&orch, "/api/workers/gpu-d/agent-registration.json").await;
    assert_eq!(status, 200, "{file}");
    valid(&shape, &file);
    assert_eq!(file["active"], true);
    assert_eq!(
        file["agentWallet"],
        WalletAddress::parse(WALLET_LOWER)?.to_string()
    );
    assert_eq!(file["models"], json!(["m"]));
    let text = file.to_string();
    let record: Value = orch
        .http()
        .get(orch.at("/api/workers/gpu-d"))
        .send()
        .await?
        .json()
        .await?;
    for secret in [
        token.expose_secret().to_owned(),
        token.sha256().to_string(),
        record["token_fingerprint"].as_str().unwrap().to_owned(),
    ] {
        assert!(
            !text.contains(&secret),
            "the file holds a secret or its hash: {text}"
        );
    }
    basis::guard::check_json("file", &file).expect("the guard finds no secret in it");

    // Stale: no heartbeat within the online window (2 s here).
    drop(worker);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, file) = get(&orch, "/api/workers/gpu-d/agent-registration.json").await;
    assert_eq!(file["active"], false, "{file}");
    let (status, body) = get(&orch, "/api/workers/nobody/agent-registration.json").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("WORKER_NOT_FOUND"))
    );
    Ok(())
}

#[tokio::test]
async fn an_agent_link_needs_the_workers_token() -> TestResult {
    let orch = fast();
    let token = register(&orch, "gpu-l", &["m"]).await;
    let body = json!({
        "worker_id": "gpu-l",
        "agent_registry": "eip155:8453:0x8004a169fb4a3325136eb29fa0ceb6d2e539a432",
        "agent_id": 7
    });
    let url = orch.at("/api/workers/gpu-l/agent-link");
    let resp = orch.http().post(url.clone()).json(&body).send().await?;
    assert_eq!(resp.status(), 401);
    let other = WorkerToken::generate();
    let resp = orch
        .http()
        .post(url.clone())
        .bearer_auth(other.expose_secret())
        .json(&body)
        .send()
        .await?;
    assert_eq!(resp.status(), 401);
    let mut bad = body.clone();
    bad["agent_registry"] = json!("eip155:8453:0x1234");
    let resp = orch
        .http()
        .post(url.clone())
        .bearer_auth(token.expose_secret())
        .json(&bad)
        .send()
        .await?;
    assert_eq!(resp.status(), 400);
    let resp = orch
        .http()
        .post(url.clone())
        .bearer_auth(token.expose_secret())
        .json(&body)
        .send()
        .await?;
    assert_eq!(resp.status(), 200);
    let file: Value = resp.json().await?;
    valid(&shape(), &file);
    assert_eq!(
        file["registrations"],
        json!([{"agentId": 7, "agentRegistry": "eip155:8453:0x8004A169FB4a3325136EB29fA0ceB6D2e539a432"}])
    );
    Ok(())
}

#[tokio::test]
async fn the_leaderboard_ranks_what_it_observed() -> TestResult {
    let orch = Orchestrator::with(Options {
        toml: format!("{}\n[discovery]\nleaderboard_cache_s = 0\n", fast_toml()),
        ..Options::default()
    });
    let on = register(&orch, "gpu-on", &["m"]).await;
    register(&orch, "gpu-off", &["m"]).await;
    let _worker = FakeWorker::connect(&orch, &on, "gpu-on", &["m"], 4).await;
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let (status, board) = get(
        &orch,
        "/api/leaderboard?by=online&window=24h&worker=gpu-off",
    )
    .await;
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["total"], 2);
    assert_eq!(board["entries"][0]["worker_id"], "gpu-on", "{board}");
    assert!(
        board["entries"][0]["online_milli"].as_u64().unwrap() > 0,
        "{board}"
    );
    assert_eq!(board["you"]["worker_id"], "gpu-off");
    assert_eq!(board["you"]["rank"], 2);
    let (status, body) = get(&orch, "/api/leaderboard?by=metric").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let (status, _) = get(&orch, "/api/leaderboard?window=1y").await;
    assert_eq!(status, 400);
    let (status, board) = get(&orch, "/api/leaderboard?by=metric&family=nanogpt/val-loss").await;
    assert_eq!((status, board["total"].as_u64()), (200, Some(0)), "{board}");
    Ok(())
}

/// Posts a `nanogpt/val-loss` task, and has `id` claim it and submit `reported`; the
/// evaluator confirms `confirmed`. Returns the evaluation's answer.
async fn measured(
    orch: &Orchestrator,
    key: &str,
    id: &str,
    reported: &str,
    confirmed: &str,
) -> Answer {
    let token = worker(orch, id, Runtime::Vllm, false).await;
    let mut body = task_body("1000000");
    body["family"] = json!("nanogpt/val-loss");
    body["metric"] = json!({"name": "val_loss", "goal": "minimize"});
    let task = post_task(orch, &body).await;
    assert_eq!(claim(orch, &task, id, &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut out = output_body(id, "A fox jumps over a dog.");
    out["metric"] = json!(reported);
    let s = submit(orch, &task, &token, &out).await;
    assert_eq!(
        (s.status, s.body["metric"].as_str()),
        (201, Some(reported)),
        "{}",
        s.text
    );
    let sub = s.body["submission_id"].as_str().unwrap().to_owned();
    let verdict = json!({"score": 90, "passed": true, "reasons": ["ok"], "metric": confirmed});
    evaluate(orch, &sub, Some(key), &verdict).await
}

#[tokio::test]
async fn a_task_family_is_ranked_by_its_best_confirmed_metric() -> TestResult {
    let orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: format!(
            "{}\n[discovery]\nleaderboard_cache_s = 0\n",
            market_toml("")
        ),
        ..Options::default()
    });
    let key = orch.create_key("evaluator").0.trim().to_owned();
    // The evaluator's value counts, not the one reported: gpu-b claimed 0.20 but reached 0.30.
    let a = measured(&orch, &key, "gpu-a", "0.25", "0.25").await;
    assert_eq!(
        (a.status, a.body["evaluation"]["metric"].as_str()),
        (200, Some("0.25")),
        "{}",
        a.text
    );
    let b = measured(&orch, &key, "gpu-b", "0.20", "0.30").await;
    assert_eq!(b.status, 200, "{}", b.text);
    worker(&orch, "gpu-c", Runtime::Vllm, false).await;
    let (status, board) = get(&orch, "/api/leaderboard?by=metric&family=nanogpt/val-loss").await;
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["goal"], "minimize");
    assert_eq!(
        board["total"], 2,
        "a worker without a confirmed value is not ranked: {board}"
    );
    let ranked: Vec<(&str, &str)> = board["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["worker_id"].as_str().unwrap(),
                e["metric"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranked, [("gpu-a", "0.25"), ("gpu-b", "0.30")]);

    // Bad input: a family without a metric, a metric as a JSON number, a metric for a task
    // that measures none (at submit and at evaluation).
    let mut body = task_body("1000");
    body["family"] = json!("x");
    post(&orch, "/api/tasks", None, &body)
        .await
        .refused(400, "INVALID_ARGUMENT");
    body["metric"] = json!({"name": "Loss!", "goal": "minimize"});
    post(&orch, "/api/tasks", None, &body)
        .await
        .refused(400, "INVALID_ARGUMENT");
    let (task, sub, token) = submitted(&orch, "gpu-d", Runtime::Vllm, "text").await;
    let verdict = json!({"score": 90, "passed": true, "reasons": ["ok"], "metric": "0.1"});
    evaluate(&orch, &sub, Some(&key), &verdict)
        .await
        .refused(400, "INVALID_ARGUMENT");
    let number = json!({"score": 90, "passed": true, "reasons": ["ok"], "metric": 0.1});
    assert_eq!(evaluate(&orch, &sub, Some(&key), &number).await.status, 400);
    let e = worker(&orch, "gpu-e", Runtime::Vllm, false).await;
    let plain = post_task(&orch, &task_body("1000")).await;
    assert_eq!(claim(&orch, &plain, "gpu-e", &e).await.status, 200);
    let mut out = output_body("gpu-e", "text");
    out["metric"] = json!("0.1");
    submit(&orch, &plain, &e, &out)
        .await
        .refused(400, "INVALID_ARGUMENT");
    let _ = (task, token);
    Ok(())
}

#[tokio::test]
async fn passed_tasks_outrank_a_lost_dispute_over_http() -> TestResult {
    let orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: format!(
            "{}\n[discovery]\nleaderboard_cache_s = 0\n",
            market_toml("dispute_window_s = 60")
        ),
        ..Options::default()
    });
    let key = orch.create_key("evaluator").0.trim().to_owned();
    let admin = orch.create_key("admin").0.trim().to_owned();
    let judge = |sub: String, passed: bool| {
        let (orch, key) = (&orch, key.clone());
        async move {
            let v = json!({"score": if passed { 90 } else { 10 }, "passed": passed, "reasons": ["checked"]});
            let a = evaluate(orch, &sub, Some(&key), &v).await;
            assert_eq!(a.status, 200, "{}", a.text);
        }
    };
    let (_, good, _) = submitted(&orch, "gpu-good", Runtime::Vllm, "A fox jumps.").await;
    judge(good, true).await;
    let (_, bad, token) = submitted(&orch, "gpu-bad", Runtime::Vllm, "A cat.").await;
    judge(bad.clone(), false).await;
    let reason = json!({"worker_id": "gpu-bad", "reason": "it is fine"});
    let d = post(
        &orch,
        &format!("/api/submissions/{bad}/dispute"),
        Some(token.expose_secret()),
        &reason,
    )
    .await;
    assert_eq!(d.status, 200, "{}", d.text);
    let upheld = json!({"outcome": "rejected", "note": "it is not"});
    let r = call(
        &orch,
        reqwest::Method::POST,
        &format!("/api/submissions/{bad}/resolve"),
        None,
        Some(&admin),
        Some(&upheld),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    worker(&orch, "gpu-new", Runtime::Vllm, false).await;

    let (status, board) = get(&orch, "/api/leaderboard?window=24h").await;
    assert_eq!(status, 200, "{board}");
    let order: Vec<&str> = board["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["worker_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["gpu-good", "gpu-new", "gpu-bad"], "{board}");
    assert_eq!(board["entries"][2]["disputes_lost"], 1);
    assert_eq!(board["entries"][0]["tasks_passed"], 1);
    let (_, file) = get(&orch, "/api/workers/gpu-bad/agent-registration.json").await;
    assert_eq!(file["counters"]["disputesLost"], 1, "{file}");
    Ok(())
}

#[tokio::test]
async fn a_family_measures_one_metric() -> TestResult {
    let orch = market("");
    let mut body = task_body("1000");
    body["family"] = json!("speedrun");
    body["metric"] = json!({"name": "val_loss", "goal": "minimize"});
    post_task(&orch, &body).await;
    post_task(&orch, &body).await;
    body["metric"] = json!({"name": "val_loss", "goal": "maximize"});
    post(&orch, "/api/tasks", None, &body)
        .await
        .refused(400, "INVALID_ARGUMENT");
    body["metric"] = json!({"name": "accuracy", "goal": "minimize"});
    let a = post(&orch, "/api/tasks", None, &body).await;
    a.refused(400, "INVALID_ARGUMENT");
    assert!(a.text.contains("val_loss"), "{}", a.text);
    body["family"] = json!("other");
    post_task(&orch, &body).await;
    Ok(())
}

#[tokio::test]
async fn a_new_worker_finds_itself_on_a_cached_board() -> TestResult {
    let orch = fast();
    register(&orch, "gpu-early", &["m"]).await;
    let (_, board) = get(&orch, "/api/leaderboard?window=7d").await;
    assert_eq!(board["total"], 1);
    register(&orch, "gpu-late", &["m"]).await;
    // Within the cache period the figures are reused …
    let (_, board) = get(&orch, "/api/leaderboard?window=7d").await;
    assert_eq!(board["total"], 1, "{board}");
    // … but a registered worker asking for itself gets figures that hold it.
    let (_, board) = get(&orch, "/api/leaderboard?window=7d&worker=gpu-late").await;
    assert_eq!(
        (board["total"].as_u64(), board["you"]["worker_id"].as_str()),
        (Some(2), Some("gpu-late"))
    );
    // An unknown worker does not make it compute again.
    let (_, board) = get(&orch, "/api/leaderboard?window=7d&worker=nobody").await;
    assert!(board.get("you").is_none(), "{board}");
    Ok(())
}
