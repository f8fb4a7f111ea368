//! The task market through MCP, against a real `basis orchestrator` (`SQLite` in a temp dir):
//! the Worker Agent flow (fetch_tasks → claim_task → execute_task → submit_output →
//! get_submission) on a real echo worker started through the supervisor, and the Evaluator
//! Agent flow (verify_output to review, then with a verdict) from another host whose env file
//! holds the evaluator key. Every structuredContent validates against its tool's outputSchema;
//! neither the worker token nor the evaluator key appears in any result or log. Then a vLLM
//! worker (an in-test OpenAI-compatible server stands in for vLLM, which cannot run here)
//! earns a real credit, and the bad inputs an agent will meet.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use basis::domain::{OutputFormat, OutputHash};
use rmcp::model::{CallToolRequestParams, NumberOrString, ProgressToken, RequestMetaObject};
use serde_json::{Value, json};

use crate::market::{Market, agent_task, fake_vllm, inference_task, onboard, refused, step};
use crate::support::{self, Client, Home, Result, private_key, problem, token_in};

/// execute_task with a progress token; returns the output and checks progress was reported.
async fn execute_with_progress(client: &Client, seen: &mut String, task_id: &str) -> Result<Value> {
    let tools = client.list_all_tools().await?;
    let mut params = CallToolRequestParams::new("execute_task");
    params.arguments = json!({"task_id": task_id}).as_object().cloned();
    params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String("exec-1".into()),
    )));
    let result = client.call_tool(params).await?;
    let tool = tools
        .iter()
        .find(|t| t.name == "execute_task")
        .ok_or("no execute_task")?;
    support::check_result(tool, &result)?;
    seen.push_str(&serde_json::to_string(&result)?);
    if result.is_error == Some(true) {
        return Err(format!("execute_task failed: {:?}", result.content).into());
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let progress = support::lock(&client.service().progress).clone();
    assert!(
        progress.iter().any(|p| p.progress >= 1.0),
        "no final progress: {progress:?}"
    );
    Ok(result.structured_content.unwrap_or_default())
}

/// The worker's side of one task: fetch (it matches), claim, execute, submit (twice: the same
/// id), get_submission. Returns the submission id.
async fn work_on(
    client: &Client,
    seen: &mut String,
    task_id: &str,
    prompt: &str,
    expected_output: &str,
) -> Result<String> {
    let tools = client.list_all_tools().await?;
    let page = step(
        client,
        &tools,
        seen,
        "fetch_tasks",
        json!({"only_matching": true}),
    )
    .await?;
    let listed = page["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["task_id"] == task_id))
        .ok_or_else(|| format!("{task_id} not listed: {page}"))?;
    assert_eq!(listed["capabilities_match"], true, "{listed}");
    assert_eq!(listed["has_input"], true, "{listed}");

    let claim = step(
        client,
        &tools,
        seen,
        "claim_task",
        json!({"task_id": task_id}),
    )
    .await?;
    assert_eq!(claim["task_id"], task_id);
    assert!(claim["claim_expiry"].as_u64() > claim["claimed_at"].as_u64());
    assert_eq!(claim["task"]["input"]["messages"][0]["content"], prompt);
    let again = step(
        client,
        &tools,
        seen,
        "claim_task",
        json!({"task_id": task_id}),
    )
    .await?;
    assert_eq!(
        again["claim_expiry"], claim["claim_expiry"],
        "claiming again is idempotent"
    );

    let run = execute_with_progress(client, seen, task_id).await?;
    assert_eq!(run["output"], expected_output, "{run}");
    let hash = OutputHash::of(expected_output.as_bytes()).to_string();
    assert_eq!(run["output_hash"], hash.as_str());

    let args = json!({
        "task_id": task_id, "output": run["output"], "usage": run["usage"],
        "duration_ms": run["timings"]["total_ms"],
    });
    let submitted = step(client, &tools, seen, "submit_output", args.clone()).await?;
    assert_eq!(submitted["output_hash"], hash.as_str());
    assert_eq!(submitted["created"], true);
    assert_eq!(submitted["status"], "submitted");
    assert!(submitted["evaluation_deadline"].as_u64().is_some());
    let duplicate = step(client, &tools, seen, "submit_output", args).await?;
    assert_eq!(duplicate["submission_id"], submitted["submission_id"]);
    assert_eq!(duplicate["created"], false);

    let id = submitted["submission_id"]
        .as_str()
        .ok_or("no id")?
        .to_owned();
    let shown = step(
        client,
        &tools,
        seen,
        "get_submission",
        json!({"submission_id": id}),
    )
    .await?;
    assert_eq!(shown["status"], "submitted");
    assert_eq!(shown["output_hash_verified"], true);
    Ok(id)
}

/// The Evaluator Agent: review (hash checked, criteria shown), then pass with a verdict.
async fn evaluate(market: &Market, seen: &mut String, id: &str, output: &str) -> Result<Value> {
    let home = market.evaluator_home()?;
    let (client, stderr) = support::stdio(&home, &[]).await?;
    let tools = client.list_all_tools().await?;
    let review = step(
        &client,
        &tools,
        seen,
        "verify_output",
        json!({"submission_id": id}),
    )
    .await?;
    assert_eq!(review["mode"], "review");
    assert_eq!(review["hash_verified"], true);
    assert_eq!(review["evaluator_key_configured"], true);
    assert_eq!(review["output"], output);
    assert_eq!(review["criteria"].as_array().map(Vec::len), Some(2));
    let verdict = json!({
        "submission_id": id, "score": 92, "passed": true,
        "reasons": ["answers the question", "one sentence"],
    });
    let settled = step(&client, &tools, seen, "verify_output", verdict.clone()).await?;
    assert_eq!(settled["mode"], "evaluated");
    assert_eq!(settled["status"], "completed", "{settled}");
    assert_eq!(settled["attestation_verified"], true, "{settled}");
    assert!(settled["receipt_hash"].is_string(), "{settled}");
    // The settlement's receipt, as the resource template serves it: verified, as sealed.
    let templates = client.list_all_resource_templates().await?;
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "basis://receipts/{id}"),
        "{templates:?}"
    );
    let hash = settled["receipt_hash"].as_str().unwrap_or_default();
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(format!(
            "basis://receipts/{hash}"
        )))
        .await?;
    let rmcp::model::ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("a receipt is text: {read:?}");
    };
    let receipt: Value = serde_json::from_str(text)?;
    assert_eq!(
        basis::domain::verify_receipt_json(&receipt)?.to_string(),
        hash
    );
    let sneaky = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "basis://receipts/../../../etc/passwd",
        ))
        .await;
    assert!(sneaky.is_err(), "{sneaky:?}");
    let twice = refused(&client, "verify_output", verdict).await?;
    assert_eq!(twice["code"], "ALREADY_EVALUATED");
    client.cancel().await?;
    seen.push_str(&stderr.text());
    Ok(settled)
}

/// `fetch_tasks` shows by default only what this worker can claim; `only_matching: false`
/// shows the rest too (returned), each with what is missing.
async fn only_what_it_can_claim(
    client: &Client,
    tools: &[rmcp::model::Tool],
    seen: &mut String,
    task: &basis::wire::Task,
    unmatched: &basis::wire::Task,
) -> Result<Value> {
    let mine = step(client, tools, seen, "fetch_tasks", json!({})).await?;
    let listed: Vec<&Value> = mine["tasks"]
        .as_array()
        .map(|t| t.iter().collect())
        .unwrap_or_default();
    assert!(
        listed
            .iter()
            .all(|t| t["task_id"] != unmatched.task_id.as_str()),
        "{mine}"
    );
    assert!(
        listed.iter().any(|t| t["task_id"] == task.task_id.as_str()),
        "{mine}"
    );
    step(
        client,
        tools,
        seen,
        "fetch_tasks",
        json!({"only_matching": false}),
    )
    .await
}

#[tokio::test]
async fn the_worker_agent_and_evaluator_agent_flows_with_an_echo_worker() -> Result {
    let market = Market::start().await?;
    let home = Home::new()?;
    let (client, stderr) = support::stdio(&home, &[]).await?;
    let tools = client.list_all_tools().await?;
    let mut seen = String::new();
    let worker = ("echo-box", "echo", &["tiny"][..]);
    onboard(&client, &tools, &mut seen, worker, &market.url, json!({})).await?;
    let prompt = "what is the capital of France";
    let task = market
        .post(&inference_task(
            "tiny",
            &["runtime:echo", "model:tiny"],
            1000,
            prompt,
        ))
        .await?;
    let mut other = inference_task("tiny", &["gpu:nvidia"], 5000, "x");
    other.input = None;
    let unmatched = market.post(&other).await?;

    step(&client, &tools, &mut seen, "start_worker", json!({})).await?;
    let flow = async {
        let online = step(
            &client,
            &tools,
            &mut seen,
            "verify_online",
            json!({"wait_s": 30}),
        )
        .await?;
        assert_eq!(online["online"], true, "{online}");
        let all = only_what_it_can_claim(&client, &tools, &mut seen, &task, &unmatched).await?;
        let shown = all["tasks"]
            .as_array()
            .and_then(|t| {
                t.iter()
                    .find(|t| t["task_id"] == unmatched.task_id.as_str())
            })
            .ok_or("the unmatched task is not listed")?;
        assert_eq!(shown["capabilities_match"], false);
        assert_eq!(shown["missing_capabilities"], json!(["gpu:nvidia"]));
        let expected = format!("echo: {prompt}");
        let id = work_on(&client, &mut seen, task.task_id.as_str(), prompt, &expected).await?;
        let settled = evaluate(&market, &mut seen, &id, &expected).await?;
        // Echo work is simulated: credited, but it pays nothing.
        assert_eq!(settled["credit"]["unpaid"], "simulated", "{settled}");
        assert_eq!(settled["credit"]["net"], "0");
        let shown = step(
            &client,
            &tools,
            &mut seen,
            "get_submission",
            json!({"submission_id": id}),
        )
        .await?;
        assert_eq!(shown["status"], "completed");
        assert_eq!(shown["attestation_verified"], true);
        assert_eq!(shown["credit"]["unpaid"], "simulated");
        assert!(
            shown["next_step"]
                .as_str()
                .is_some_and(|s| s.contains("simulated"))
        );
        Ok::<_, support::BoxError>(())
    }
    .await;
    let stopped = step(&client, &tools, &mut seen, "stop_worker", json!({})).await;
    flow?;
    stopped?;
    client.cancel().await?;
    let token = token_in(&home.env_file())?;
    for text in [
        &seen,
        &stderr.text(),
        &market.orch.stderr.text(),
        &market.orch.stdout.text(),
    ] {
        assert!(!text.contains(&token), "the worker token leaked");
        assert!(
            !text.contains(&market.evaluator_key),
            "the evaluator key leaked"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_vllm_worker_earns_a_real_credit_gross_minus_fee() -> Result {
    // A test double for vLLM (which cannot run here): an OpenAI-compatible streaming server.
    let answer = "Paris is the capital of France.";
    let vllm = fake_vllm("fake-llm", answer, Duration::from_millis(20)).await?;
    let market = Market::start().await?;
    let home = Home::new()?;
    let (client, stderr) = support::stdio(&home, &[]).await?;
    let tools = client.list_all_tools().await?;
    let mut seen = String::new();
    let worker = ("gpu-box", "vllm", &["fake-llm"][..]);
    let extra = json!({"vllm_url": vllm.url});
    onboard(&client, &tools, &mut seen, worker, &market.url, extra).await?;
    let prompt = "name the capital of France";
    let caps = ["runtime:vllm", "model:fake-llm"];
    let task = market
        .post(&inference_task("fake-llm", &caps, 10_000, prompt))
        .await?;
    let id = work_on(&client, &mut seen, task.task_id.as_str(), prompt, answer).await?;
    let settled = evaluate(&market, &mut seen, &id, answer).await?;
    let credit = &settled["credit"];
    assert!(credit.get("unpaid").is_none(), "{settled}");
    // The default protocol fee is 250 bps: 2.5 % of 10000.
    assert_eq!(credit["gross"], "10000", "{settled}");
    assert_eq!(credit["fee"], "250");
    assert_eq!(credit["net"], "9750");
    let shown = step(
        &client,
        &tools,
        &mut seen,
        "get_submission",
        json!({"submission_id": id}),
    )
    .await?;
    assert_eq!(shown["credit"]["net"], "9750");
    // Its next step says the credit in whole units (USDC has 6 decimals).
    assert_eq!(shown["credit"]["asset_decimals"], 6);
    assert!(
        shown["next_step"]
            .as_str()
            .is_some_and(|s| s.contains("credited 0.00975 USDC")),
        "{shown}"
    );
    let rewards = market
        .client()?
        .rewards(&basis::domain::WorkerId::parse("gpu-box")?)
        .await?;
    assert_eq!(rewards.totals.pending.to_string(), "9750");
    client.cancel().await?;
    let token = token_in(&home.env_file())?;
    for text in [&seen, &stderr.text()] {
        assert!(!text.contains(&token) && !text.contains(&market.evaluator_key));
    }
    Ok(())
}

/// Waits (5 s at most) for the fake runtime to see its client go away.
async fn runtime_call_closed(vllm: &crate::market::FakeVllm) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if vllm.dropped.swap(false, Ordering::SeqCst) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn execute_task_stops_on_cancellation_and_before_the_claim_expires() -> Result {
    // The vLLM test double streams one word every 300 ms: a run takes about 12 s.
    let answer = "slow ".repeat(40).leak();
    let vllm = fake_vllm("slow-llm", answer, Duration::from_millis(300)).await?;
    let market = Market::start().await?;
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    let tools = client.list_all_tools().await?;
    let mut seen = String::new();
    let worker = ("slow-box", "vllm", &["slow-llm"][..]);
    let extra = json!({"vllm_url": vllm.url});
    onboard(&client, &tools, &mut seen, worker, &market.url, extra).await?;
    let caps = ["runtime:vllm", "model:slow-llm"];
    let task = market
        .post(&inference_task("slow-llm", &caps, 100, "go slowly"))
        .await?;
    let id = task.task_id.to_string();
    step(
        &client,
        &tools,
        &mut seen,
        "claim_task",
        json!({"task_id": id}),
    )
    .await?;
    // The client gives up after 1 s: dropping the call sends notifications/cancelled.
    let call = support::call(&client, "execute_task", json!({"task_id": id}));
    assert!(
        tokio::time::timeout(Duration::from_secs(1), call)
            .await
            .is_err(),
        "the run finished early"
    );
    assert!(
        runtime_call_closed(&vllm).await,
        "the runtime call went on after the cancellation"
    );
    step(
        &client,
        &tools,
        &mut seen,
        "release_task",
        json!({"task_id": id}),
    )
    .await?;

    // A 2 s lease: the run is stopped before the claim expires, with time left to submit.
    let mut short = inference_task("slow-llm", &caps, 100, "too slow");
    short.claim_ttl_s = Some(2);
    let short = market.post(&short).await?.task_id.to_string();
    step(
        &client,
        &tools,
        &mut seen,
        "claim_task",
        json!({"task_id": short}),
    )
    .await?;
    let started = Instant::now();
    let stopped = refused(&client, "execute_task", json!({"task_id": short})).await?;
    assert_eq!(stopped["code"], "JOB_TIMEOUT", "{stopped}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        runtime_call_closed(&vllm).await,
        "the stopped run kept its connection"
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn market_mistakes_come_back_as_codes_with_fixes() -> Result {
    let market = Market::start().await?;
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    let tools = client.list_all_tools().await?;
    let mut seen = String::new();
    let worker = ("oops-box", "echo", &["tiny"][..]);
    onboard(&client, &tools, &mut seen, worker, &market.url, json!({})).await?;
    let haiku = market.post(&agent_task(OutputFormat::Json)).await?;
    let other = market.post(&agent_task(OutputFormat::Text)).await?;
    let (haiku, other) = (haiku.task_id.to_string(), other.task_id.to_string());

    let missing = format!("task-{}", "0".repeat(32));
    let code = |v: Value| v["code"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        code(refused(&client, "claim_task", json!({"task_id": missing})).await?),
        "TASK_NOT_FOUND"
    );
    assert_eq!(
        code(refused(&client, "claim_task", json!({"task_id": "nope"})).await?),
        "INVALID_ARGUMENT"
    );
    step(
        &client,
        &tools,
        &mut seen,
        "claim_task",
        json!({"task_id": haiku}),
    )
    .await?;
    assert_eq!(
        code(refused(&client, "claim_task", json!({"task_id": other})).await?),
        "ACTIVE_CLAIM_EXISTS"
    );
    // No input: the agent produces the output itself.
    let no_input = refused(&client, "execute_task", json!({"task_id": haiku})).await?;
    assert_eq!(code(no_input.clone()), "TASK_HAS_NO_INPUT");
    assert!(
        no_input["fix"]
            .as_str()
            .is_some_and(|f| f.contains("submit_output"))
    );
    // A json task refuses output that does not parse, before anything is sent.
    let bad_json = json!({"task_id": haiku, "output": "{\"haiku\": "});
    assert_eq!(
        code(refused(&client, "submit_output", bad_json).await?),
        "OUTPUT_FORMAT_INVALID"
    );
    // A private key pasted into the output is refused and not echoed.
    let key = private_key();
    let result = support::call(
        &client,
        "submit_output",
        json!({"task_id": haiku, "output": format!("my key is {key}")}),
    )
    .await?;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(
        problem(&result).map(|p| p["code"].clone()),
        Some(json!("SECRET_REFUSED"))
    );
    let shown = serde_json::to_string(&result)?;
    assert!(
        !shown.contains(key.trim_start_matches("0x")),
        "the key was echoed"
    );
    reject_then_dispute(&market, &client, &tools, &mut seen, &haiku).await?;
    // Now free to claim, then release, the other task.
    step(
        &client,
        &tools,
        &mut seen,
        "claim_task",
        json!({"task_id": other}),
    )
    .await?;
    let released = step(
        &client,
        &tools,
        &mut seen,
        "release_task",
        json!({"task_id": other}),
    )
    .await?;
    assert_eq!(released["task"]["status"], "open");
    assert_eq!(
        code(refused(&client, "execute_task", json!({"task_id": other})).await?),
        "TASK_HAS_NO_INPUT"
    );
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn the_evaluator_refuses_an_output_altered_after_submission() -> Result {
    let market = Market::start().await?;
    let home = Home::new()?;
    let (client, _stderr) = support::stdio(&home, &[]).await?;
    let tools = client.list_all_tools().await?;
    let mut seen = String::new();
    let worker = ("honest-box", "echo", &["tiny"][..]);
    onboard(&client, &tools, &mut seen, worker, &market.url, json!({})).await?;
    let task = market.post(&agent_task(OutputFormat::Text)).await?;
    let task_id = task.task_id.to_string();
    step(
        &client,
        &tools,
        &mut seen,
        "claim_task",
        json!({"task_id": task_id}),
    )
    .await?;
    // A transaction hash in an output is a hash, not a key: it passes both guards.
    let output = json!({"task_id": task_id, "output": "silicon hums softly; anchored in \
        0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b"});
    let sub = step(&client, &tools, &mut seen, "submit_output", output).await?;
    let id = sub["submission_id"].as_str().ok_or("no id")?.to_owned();
    client.cancel().await?;
    // Someone with access to the orchestrator's database alters the stored output.
    let db = rusqlite::Connection::open(&market.db)?;
    db.busy_timeout(std::time::Duration::from_secs(5))?;
    let changed = db.execute(
        "UPDATE submissions SET output = 'a different poem' WHERE submission_id = ?1",
        [&id],
    )?;
    assert_eq!(changed, 1);
    let evaluator_home = market.evaluator_home()?;
    let (evaluator, _e) = support::stdio(&evaluator_home, &[]).await?;
    let review = refused(&evaluator, "verify_output", json!({"submission_id": id})).await?;
    assert_eq!(review["code"], "OUTPUT_TAMPERED", "{review}");
    let verdict = json!({"submission_id": id, "score": 99, "passed": true, "reasons": ["ok"]});
    let posted = refused(&evaluator, "verify_output", verdict).await?;
    assert_eq!(
        posted["code"], "OUTPUT_TAMPERED",
        "a tampered output was evaluated"
    );
    evaluator.cancel().await?;
    let stored: Option<String> = db.query_row(
        "SELECT evaluation FROM submissions WHERE submission_id = ?1",
        [&id],
        |row| row.get(0),
    )?;
    assert_eq!(stored, None, "nothing was posted");
    Ok(())
}

/// Submits valid output for the claimed json `task`; a verdict from this (keyless) host and a
/// dispute before any rejection are refused; the evaluator rejects it; the worker disputes.
async fn reject_then_dispute(
    market: &Market,
    client: &Client,
    tools: &[rmcp::model::Tool],
    seen: &mut String,
    haiku: &str,
) -> Result {
    let code = |v: Value| v["code"].as_str().unwrap_or_default().to_owned();
    // Valid output goes through; a verdict without an evaluator key is refused.
    let ok = json!({"task_id": haiku, "output": "{\"haiku\": \"fans hum / tensors flow\"}"});
    let sub = step(client, tools, seen, "submit_output", ok).await?;
    let id = sub["submission_id"].clone();
    let verdict = json!({"submission_id": id, "score": 80, "passed": true, "reasons": ["ok"]});
    assert_eq!(
        code(refused(client, "verify_output", verdict).await?),
        "EVALUATOR_KEY_REQUIRED"
    );
    let dispute = json!({"submission_id": id, "reason": "it is a haiku"});
    assert_eq!(
        code(refused(client, "dispute_output", dispute.clone()).await?),
        "NOT_DISPUTABLE"
    );
    // The evaluator rejects it; the worker disputes the rejection.
    let evaluator_home = market.evaluator_home()?;
    let (evaluator, _e) = support::stdio(&evaluator_home, &[]).await?;
    let reject =
        json!({"submission_id": id, "score": 20, "passed": false, "reasons": ["not 5-7-5"]});
    let rejected = step(&evaluator, tools, seen, "verify_output", reject).await?;
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    evaluator.cancel().await?;
    let disputed = step(client, tools, seen, "dispute_output", dispute).await?;
    assert_eq!(disputed["status"], "disputed", "{disputed}");
    assert_eq!(disputed["dispute"]["reason"], "it is a haiku");
    Ok(())
}
