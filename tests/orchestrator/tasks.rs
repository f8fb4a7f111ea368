//! The task market over HTTP, posting and reading: client keys, validation (a float or
//! negative reward, a zero reward, a past deadline), private keys refused without echo, the
//! listing's filters and cursor, size limits, and the market in /openapi.json and /metrics.

use base64::Engine as _;
use basis::domain::Runtime;

use super::market::*;
use super::*;

#[tokio::test]
async fn posting_needs_a_client_key_unless_open() -> TestResult {
    let orch = Orchestrator::with(Options {
        toml: market_toml(""),
        ..Options::default()
    });
    post(&orch, "/api/tasks", None, &task_body("10"))
        .await
        .refused(401, "CLIENT_KEY_REQUIRED");
    post(
        &orch,
        "/api/tasks",
        Some("basis_client_nope"),
        &task_body("10"),
    )
    .await
    .refused(401, "CLIENT_KEY_INVALID");
    let key = orch.create_key("client").0.trim().to_owned();
    let a = post(&orch, "/api/tasks", Some(&key), &task_body("10")).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let client = a.body["client"].as_str().unwrap();
    assert!(client.starts_with("key:") && client.len() == 12, "{client}");
    assert_eq!(a.body["status"], "open");
    assert_eq!(a.body["asset"], "USDC");
    assert_eq!(a.body["claim_ttl_s"], 600);
    assert_eq!(a.body["pass_threshold"], 70);
    let id = a.body["task_id"].as_str().unwrap();
    let got = get(&orch, &format!("/api/tasks/{id}")).await;
    assert_eq!(got.body, a.body);
    get(&orch, &format!("/api/tasks/task-{}", "0".repeat(32)))
        .await
        .refused(404, "TASK_NOT_FOUND");
    get(&orch, "/api/tasks/nope")
        .await
        .refused(400, "INVALID_ARGUMENT");
    assert!(!orch.logs().contains(&key), "the client key was logged");
    Ok(())
}

#[tokio::test]
async fn bad_tasks_are_refused_with_their_codes() -> TestResult {
    let orch = market("");
    // A reward as a float, a negative one, or a JSON number: amounts are decimal strings.
    for reward in [
        json!(1.5),
        json!("-5"),
        json!(-5),
        json!(1000),
        json!("1.5"),
    ] {
        let mut body = task_body("1");
        body["reward"] = reward.clone();
        post(&orch, "/api/tasks", None, &body)
            .await
            .refused(400, "INVALID_JSON");
    }
    let cases = [
        ("reward", json!("0")),
        ("criteria", json!([])),
        ("deadline", json!(basis_now() - 10)),
        ("asset", json!("ETH")),
        ("claim_ttl_s", json!(0)),
        ("pass_threshold", json!(101)),
        ("description", json!("   ")),
    ];
    for (field, value) in cases {
        let mut body = task_body("1");
        body[field] = value;
        let a = post(&orch, "/api/tasks", None, &body).await;
        assert_eq!(
            (a.status, a.code()),
            (400, "INVALID_ARGUMENT"),
            "{field}: {}",
            a.text
        );
    }
    let mut body = task_body("1");
    body["output_format"] = json!("xml");
    post(&orch, "/api/tasks", None, &body)
        .await
        .refused(400, "INVALID_JSON");
    Ok(())
}

#[tokio::test]
async fn a_private_key_in_a_description_or_an_output_is_refused_and_not_echoed() -> TestResult {
    let orch = market("");
    for field in ["description", "criteria"] {
        let mut body = task_body("1");
        body[field] = if field == "criteria" {
            json!([format!("key {PRIVATE_KEY}")])
        } else {
            json!(format!("use the private key 0x{PRIVATE_KEY} to pay"))
        };
        let a = post(&orch, "/api/tasks", None, &body).await;
        a.refused(400, "SECRET_REFUSED");
        assert!(!a.text.contains(PRIVATE_KEY), "{}", a.text);
    }
    let mut body = task_body("1");
    body["input"]["messages"][0]["content"] = json!(format!("PRIVATE_KEY={PRIVATE_KEY}"));
    let a = post(&orch, "/api/tasks", None, &body).await;
    a.refused(400, "SECRET_REFUSED");
    assert!(!a.text.contains(PRIVATE_KEY));

    let token = worker(&orch, "gpu-1", Runtime::Vllm, false).await;
    let task = post_task(&orch, &task_body("10")).await;
    assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
    let output = format!("here is my wallet key: {PRIVATE_KEY}");
    let a = submit(&orch, &task, &token, &output_body("gpu-1", &output)).await;
    a.refused(400, "SECRET_REFUSED");
    assert!(!a.text.contains(PRIVATE_KEY), "{}", a.text);
    // Hidden in a bytes output too.
    let mut body = task_body("10");
    body["output_format"] = json!("bytes");
    let task = post_task(&orch, &body).await;
    let token2 = worker(&orch, "gpu-2", Runtime::Vllm, false).await;
    assert_eq!(claim(&orch, &task, "gpu-2", &token2).await.status, 200);
    let encoded = base64::engine::general_purpose::STANDARD.encode(output.as_bytes());
    let mut sub = output_body("gpu-2", &encoded);
    sub["output_hash"] = json!(basis::domain::OutputHash::of(output.as_bytes()).to_string());
    // Found in the decoded bytes: 422, as any secret found in what an output decodes to.
    let a = submit(&orch, &task, &token2, &sub).await;
    a.refused(422, "SECRET_REFUSED");
    assert!(!a.text.contains(PRIVATE_KEY));
    assert!(
        !orch.logs().contains(PRIVATE_KEY),
        "the key reached the log"
    );
    Ok(())
}

/// The address of [`PRIVATE_KEY`].
const KEYS_WALLET: &str = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23";

#[tokio::test]
async fn hashes_pass_in_free_text_but_the_workers_own_key_and_token_do_not() -> TestResult {
    let orch = market("");
    let tx = "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b";
    // A description, criteria and a prompt may cite a transaction or a digest.
    let mut body = task_body("10");
    body["description"] = json!(format!("Explain what transaction {tx} did."));
    body["criteria"] = json!([format!("names the block that holds {tx}")]);
    body["input"]["messages"][0]["content"] = json!(format!("What did {tx} do?"));
    let task = post_task(&orch, &body).await;
    // A worker paid to the wallet whose private key is PRIVATE_KEY.
    let token = worker_paid_to(&orch, "gpu-1", Runtime::Vllm, false, KEYS_WALLET).await;
    assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
    let refused = [
        // Its wallet's key, unlabelled, in any case, split in groups or in a bytes layer.
        format!("done: {PRIVATE_KEY}"),
        format!("done: 0x{}", PRIVATE_KEY.to_uppercase()),
        PRIVATE_KEY
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" "),
        // Its own token, unlabelled.
        format!("result {}", token.expose_secret()),
    ];
    for output in &refused {
        let a = submit(&orch, &task, &token, &output_body("gpu-1", output)).await;
        a.refused(422, "SECRET_REFUSED");
        assert!(!a.text.contains(PRIVATE_KEY) && !a.text.contains(token.expose_secret()));
    }
    // Any other 64-hex value is a hash: accepted.
    let output = format!(
        "The transaction {tx} moved 5 USDC; its receipt root is 0x{}.",
        "ab".repeat(32)
    );
    let a = submit(&orch, &task, &token, &output_body("gpu-1", &output)).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let logs = orch.logs();
    assert!(!logs.contains(PRIVATE_KEY) && !logs.contains(token.expose_secret()));
    Ok(())
}

#[tokio::test]
async fn the_listing_filters_orders_and_pages() -> TestResult {
    let orch = market("");
    let mut ids = Vec::new();
    for (reward, caps, due_in) in [
        ("5", json!([]), 3600),
        ("900", json!(["gpu:nvidia"]), 3600),
        ("70", json!(["gpu:amd"]), 3600),
        ("70", json!([]), 3600),
        ("1000", json!(["runtime:vllm", "gpu:nvidia"]), 60),
    ] {
        let mut body = task_body(reward);
        body["required_capabilities"] = caps;
        body["deadline"] = json!(basis_now() + due_in);
        ids.push(post_task(&orch, &body).await);
    }
    let rewards = |b: &Value| -> Vec<String> {
        b["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["reward"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = get(&orch, "/api/tasks").await;
    assert_eq!(rewards(&all.body), ["1000", "900", "70", "70", "5"]);
    assert!(all.body.get("next_cursor").is_none());
    let f = get(
        &orch,
        "/api/tasks?capabilities=gpu:nvidia,runtime:vllm&min_reward=70&deadline_buffer_s=600",
    )
    .await;
    assert_eq!(rewards(&f.body), ["900", "70"]);
    // Pages of two, following the cursor, give the whole list once.
    let mut seen = Vec::new();
    let mut path = "/api/tasks?limit=2".to_owned();
    loop {
        let page = get(&orch, &path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(rewards(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/tasks?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["1000", "900", "70", "70", "5"]);
    get(&orch, "/api/tasks?limit=51")
        .await
        .refused(400, "INVALID_ARGUMENT");
    get(&orch, "/api/tasks?cursor=zzz")
        .await
        .refused(400, "INVALID_ARGUMENT");
    get(&orch, "/api/tasks?min_reward=1.5")
        .await
        .refused(400, "INVALID_ARGUMENT");
    get(&orch, "/api/tasks?colour=red")
        .await
        .refused(400, "INVALID_ARGUMENT");
    let claimed = get(&orch, "/api/tasks?status=claimed").await;
    assert_eq!(claimed.body["tasks"], json!([]));
    Ok(())
}

#[tokio::test]
async fn outputs_past_the_size_limit_get_413() -> TestResult {
    let orch = market("max_output_bytes = 1024");
    let token = worker(&orch, "gpu-1", Runtime::Vllm, false).await;
    let task = post_task(&orch, &task_body("10")).await;
    assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
    // Past max_output_bytes the handler refuses it; past the body limit itself (output × 2 +
    // headroom) the extractor refuses it before reading it all. Either way the server may
    // close the connection while the client still writes (broken pipe under load), so retry
    // until the answer itself is read.
    for size in [1025, 200_000] {
        let body = output_body("gpu-1", &"a".repeat(size));
        let mut answered = None;
        for _ in 0..10 {
            let sent = orch
                .http()
                .post(orch.at(&format!("/api/tasks/{task}/submit")))
                .bearer_auth(token.expose_secret())
                .json(&body)
                .send()
                .await;
            if let Ok(resp) = sent {
                // The connection is not reused after a 413 (its body was left unread).
                assert_eq!(resp.headers()["connection"], "close", "{size} bytes");
                answered = Some((resp.status().as_u16(), resp.json::<Value>().await?));
                break;
            }
        }
        let (status, body) = answered.expect("no answer to an oversized submit");
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (413, Some("PAYLOAD_TOO_LARGE")),
            "{size} bytes"
        );
    }
    let ok = "a fine summary";
    assert_eq!(
        submit(&orch, &task, &token, &output_body("gpu-1", ok))
            .await
            .status,
        201
    );
    Ok(())
}

#[tokio::test]
async fn the_market_is_in_openapi_and_metrics() -> TestResult {
    let orch = market("");
    let doc = get(&orch, "/openapi.json").await.body;
    for path in [
        "/api/tasks",
        "/api/tasks/{id}/claim",
        "/api/tasks/{id}/submit",
        "/api/submissions/{id}/evaluate",
        "/api/submissions/{id}/resolve",
        "/api/workers/{id}/rewards",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    assert!(doc["components"]["schemas"]["Submission"].is_object());
    let (task, _, _) = submitted(&orch, "gpu-1", Runtime::Vllm, "A fox jumps.").await;
    assert!(!task.is_empty());
    let text = orch.metrics().await;
    assert!(
        text.contains("basis_orchestrator_tasks_posted_total 1"),
        "{text}"
    );
    assert!(text.contains("basis_orchestrator_task_claims_total{outcome=\"claimed\"} 1"));
    assert!(text.contains("basis_orchestrator_task_submissions_total{outcome=\"new\"} 1"));
    let status = get(&orch, "/api/workers/onboarding/status").await.body;
    assert_eq!(status["task_market"]["protocol_fee_bps"], 250);
    Ok(())
}
