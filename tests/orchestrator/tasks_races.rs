//! Claims and their races over HTTP: a second worker's claim, 100 concurrent claimers of one
//! task (exactly one wins), one active claim per worker unless multi-task, release, a submit
//! after the lease ran out, three lapsed leases → abandoned (the sweeper), a deadline, and
//! the submit checks (hash mismatch, json that does not parse, the same submission twice).

use basis::domain::Runtime;

use super::market::*;
use super::*;

#[tokio::test]
async fn a_second_worker_cannot_claim_a_held_task() -> TestResult {
    let orch = market("");
    let a = worker(&orch, "gpu-a", Runtime::Vllm, false).await;
    let b = worker(&orch, "gpu-b", Runtime::Vllm, false).await;
    let task = post_task(&orch, &task_body("10")).await;
    let first = claim(&orch, &task, "gpu-a", &a).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["worker_id"], "gpu-a");
    assert_eq!(first.body["attempts"], 0);
    let expiry = first.body["claim_expiry"].as_u64().unwrap();
    assert!((basis_now() + 590..=basis_now() + 600).contains(&expiry));
    claim(&orch, &task, "gpu-b", &b)
        .await
        .refused(409, "ALREADY_CLAIMED");
    // The holder claiming again gets the same claim back.
    let again = claim(&orch, &task, "gpu-a", &a).await;
    assert_eq!((again.status, &again.body), (200, &first.body));
    // Someone else's token for gpu-a, no token, an unknown worker.
    claim(&orch, &task, "gpu-a", &b)
        .await
        .refused(401, "WORKER_TOKEN_INVALID");
    let no_token = post(
        &orch,
        &format!("/api/tasks/{task}/claim"),
        None,
        &json!({"worker_id": "gpu-a"}),
    )
    .await;
    no_token.refused(401, "WORKER_TOKEN_INVALID");
    claim(&orch, &task, "gpu-zz", &a)
        .await
        .refused(404, "WORKER_NOT_FOUND");
    claim(&orch, &format!("task-{}", "0".repeat(32)), "gpu-b", &b)
        .await
        .refused(404, "TASK_NOT_FOUND");
    // One active claim per worker, unless multi-task.
    let other = post_task(&orch, &task_body("10")).await;
    claim(&orch, &other, "gpu-a", &a)
        .await
        .refused(409, "ACTIVE_CLAIM_EXISTS");
    let m = worker(&orch, "gpu-multi", Runtime::Vllm, true).await;
    let third = post_task(&orch, &task_body("10")).await;
    assert_eq!(claim(&orch, &other, "gpu-multi", &m).await.status, 200);
    assert_eq!(claim(&orch, &third, "gpu-multi", &m).await.status, 200);
    // Release: only the holder; the task reopens with one attempt counted.
    let body = json!({"worker_id": "gpu-b"});
    post(
        &orch,
        &format!("/api/tasks/{task}/release"),
        Some(b.expose_secret()),
        &body,
    )
    .await
    .refused(409, "NOT_CLAIM_HOLDER");
    let body = json!({"worker_id": "gpu-a"});
    let released = post(
        &orch,
        &format!("/api/tasks/{task}/release"),
        Some(a.expose_secret()),
        &body,
    )
    .await;
    assert_eq!(released.status, 200, "{}", released.text);
    assert_eq!(
        (
            released.body["status"].as_str(),
            released.body["attempts"].as_u64()
        ),
        (Some("open"), Some(1))
    );
    assert!(released.body.get("claimed_by").is_none());
    assert_eq!(claim(&orch, &task, "gpu-b", &b).await.status, 200);
    Ok(())
}

#[tokio::test]
async fn of_100_concurrent_claimers_exactly_one_wins() -> TestResult {
    let orch = market("");
    let mut workers = Vec::new();
    for i in 0..100 {
        let id = format!("w-{i:03}");
        let token = worker(&orch, &id, Runtime::Vllm, false).await;
        workers.push((id, token));
    }
    let task = post_task(&orch, &task_body("10")).await;
    let claims = workers.iter().map(|(id, token)| {
        let (http, url) = (orch.http(), orch.at(&format!("/api/tasks/{task}/claim")));
        let (id, bearer) = (id.clone(), token.expose_secret().to_owned());
        tokio::spawn(async move {
            let resp = http
                .post(url)
                .bearer_auth(bearer)
                .json(&json!({ "worker_id": id }))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        })
    });
    let results = futures::future::join_all(claims).await;
    let mut winners = Vec::new();
    for r in results {
        let (status, body) = r?;
        match status {
            200 => winners.push(body["worker_id"].as_str().unwrap().to_owned()),
            409 => assert_eq!(body["error"]["code"], "ALREADY_CLAIMED", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let t = get(&orch, &format!("/api/tasks/{task}")).await.body;
    assert_eq!(t["status"], "claimed");
    assert_eq!(t["claimed_by"].as_str(), Some(winners[0].as_str()));
    Ok(())
}

#[tokio::test]
async fn a_submit_after_the_lease_ran_out_is_claim_expired() -> TestResult {
    let orch = market("sweep_interval_ms = 60000");
    let token = worker(&orch, "gpu-1", Runtime::Vllm, false).await;
    let mut body = task_body("10");
    body["claim_ttl_s"] = json!(1);
    let task = post_task(&orch, &body).await;
    assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // The sweeper has not run (60 s period): the submit itself sees the lapse.
    submit(&orch, &task, &token, &output_body("gpu-1", "late"))
        .await
        .refused(409, "CLAIM_EXPIRED");
    let t = get(&orch, &format!("/api/tasks/{task}")).await.body;
    assert_eq!(
        (t["status"].as_str(), t["attempts"].as_u64()),
        (Some("open"), Some(1))
    );
    Ok(())
}

#[tokio::test]
async fn three_lapsed_claims_abandon_the_task() -> TestResult {
    let orch = market("");
    let token = worker(&orch, "gpu-1", Runtime::Vllm, false).await;
    let mut body = task_body("10");
    body["claim_ttl_s"] = json!(1);
    let task = post_task(&orch, &body).await;
    let path = format!("/api/tasks/{task}");
    for attempt in 0..3_u64 {
        let c = claim(&orch, &task, "gpu-1", &token).await;
        assert_eq!(c.status, 200, "{}", c.text);
        assert_eq!(c.body["attempts"], attempt);
        // The sweeper (every 50 ms) reopens it once the 1 s lease is over.
        let t = wait_for(&orch, &path, None, |t| t["attempts"] == attempt + 1).await;
        let expected = if attempt < 2 { "open" } else { "abandoned" };
        assert_eq!(t["status"], expected, "{t}");
    }
    claim(&orch, &task, "gpu-1", &token)
        .await
        .refused(409, "TASK_NOT_OPEN");
    let text = orch.metrics().await;
    assert!(
        text.contains("basis_orchestrator_task_sweeps_total{kind=\"reopened\"} 2"),
        "{text}"
    );
    assert!(text.contains("basis_orchestrator_task_sweeps_total{kind=\"abandoned\"} 1"));
    Ok(())
}

#[tokio::test]
async fn a_task_past_its_deadline_expires() -> TestResult {
    let orch = market("");
    let token = worker(&orch, "gpu-1", Runtime::Vllm, false).await;
    let mut body = task_body("10");
    body["deadline"] = json!(basis_now() + 2);
    let task = post_task(&orch, &body).await;
    let t = wait_for(&orch, &format!("/api/tasks/{task}"), None, |t| {
        t["status"] == "expired"
    })
    .await;
    assert!(t.get("claimed_by").is_none());
    claim(&orch, &task, "gpu-1", &token)
        .await
        .refused(409, "TASK_NOT_OPEN");
    Ok(())
}

#[tokio::test]
async fn the_submit_checks_hash_format_and_repeats() -> TestResult {
    let orch = market("");
    let token = worker(&orch, "gpu-1", Runtime::Vllm, false).await;
    let mut body = task_body("10");
    body["output_format"] = json!("json");
    let task = post_task(&orch, &body).await;
    // Not the claim holder yet.
    submit(&orch, &task, &token, &output_body("gpu-1", "{\"a\": 1}"))
        .await
        .refused(409, "NOT_CLAIM_HOLDER");
    assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
    // json that does not parse.
    submit(
        &orch,
        &task,
        &token,
        &output_body("gpu-1", "{\"summary\": "),
    )
    .await
    .refused(422, "OUTPUT_FORMAT_INVALID");
    // A hash that is not the output's.
    let mut wrong = output_body("gpu-1", "{\"summary\": \"fox\"}");
    wrong["output_hash"] = json!(basis::domain::OutputHash::of(b"something else").to_string());
    let a = submit(&orch, &task, &token, &wrong).await;
    a.refused(422, "HASH_MISMATCH");
    // A malformed hash is a shape error.
    let mut bad = output_body("gpu-1", "{}");
    bad["output_hash"] = json!("0x1234");
    submit(&orch, &task, &token, &bad)
        .await
        .refused(400, "INVALID_JSON");
    // The same submission twice: the same id back (201, then 200).
    let good = output_body("gpu-1", "{\"summary\": \"fox\"}");
    let first = submit(&orch, &task, &token, &good).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["status"], "submitted");
    let second = submit(&orch, &task, &token, &good).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.body["submission_id"], first.body["submission_id"]);
    // A different output now is refused.
    submit(
        &orch,
        &task,
        &token,
        &output_body("gpu-1", "{\"summary\": \"dog\"}"),
    )
    .await
    .refused(409, "ALREADY_SUBMITTED");
    let sub = first.body["submission_id"].as_str().unwrap();
    let got = read_submission(&orch, sub, token.expose_secret()).await;
    assert_eq!(got.body, first.body);
    let t = get(&orch, &format!("/api/tasks/{task}")).await.body;
    assert_eq!(
        (t["status"].as_str(), t["submission_id"].as_str()),
        (Some("submitted"), Some(sub))
    );
    Ok(())
}
