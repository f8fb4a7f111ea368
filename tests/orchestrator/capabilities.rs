//! Capabilities and labels, against the real orchestrator process: a worker registers its
//! hardware and labels and the registry shows what the task market derives from them; a claim
//! from a CPU-only worker on a task needing a GPU with 24 GiB is refused with
//! `CAPABILITY_MISMATCH` naming what is missing; `?fits=` lists only what a worker can claim;
//! a gateway request asking for a label (`x-basis-worker-label`) runs only on a worker with it,
//! waits for one when they are busy, and is 503 when none has it.

use basis::wire::{GpuSummary, HardwareSummary};

use super::fake_worker::*;
use super::market::*;
use super::*;

/// Registers `id` serving model `m` with `hardware` and `labels`; returns its token.
async fn register_with(
    orch: &Orchestrator,
    id: &str,
    hardware: Option<HardwareSummary>,
    labels: &[&str],
) -> WorkerToken {
    let token = WorkerToken::generate();
    let mut req = request(id, &token);
    req.models = vec!["m".into()];
    req.hardware = hardware;
    req.labels = labels.iter().map(|l| (*l).to_owned()).collect();
    orch.client().register(&req, None, None).await.unwrap();
    token
}

fn gpu(vram_mib: u64) -> HardwareSummary {
    HardwareSummary {
        gpus: vec![GpuSummary {
            vendor: "nvidia".into(),
            name: Some("NVIDIA L4".into()),
            vram_total_mib: Some(vram_mib),
            compute_capability: Some("8.9".into()),
        }],
        ..HardwareSummary::default()
    }
}

#[tokio::test]
async fn a_cpu_only_worker_cannot_claim_a_task_needing_24_gib_of_vram() -> TestResult {
    let orch = market("");
    let cpu = register_with(&orch, "cpu-1", None, &[]).await;
    let big = register_with(&orch, "gpu-1", Some(gpu(24_576)), &["region=eu"]).await;

    let record = super::fake_worker::record(&orch, "gpu-1").await;
    assert_eq!(
        record["capabilities"],
        json!([
            "runtime:echo",
            "model:m",
            "gpu",
            "gpu:nvidia",
            "compute:8.9",
            "label:region=eu"
        ])
    );
    assert_eq!(record["vram_mib"], 24_576);
    assert_eq!(record["labels"], json!(["region=eu"]));
    let cpu_record = super::fake_worker::record(&orch, "cpu-1").await;
    assert_eq!(
        cpu_record["capabilities"],
        json!(["runtime:echo", "model:m", "cpu-only"])
    );

    let mut body = task_body("10");
    body["required_capabilities"] = json!(["gpu"]);
    body["min_vram_mib"] = json!(24_576);
    let task = post_task(&orch, &body).await;

    // Offered only to the worker that fits.
    let listed = |who: &'static str| {
        let orch = &orch;
        async move {
            get(orch, &format!("/api/tasks?fits={who}")).await.body["tasks"]
                .as_array()
                .map_or(0, Vec::len)
        }
    };
    assert_eq!(listed("cpu-1").await, 0);
    assert_eq!(listed("gpu-1").await, 1);
    assert_eq!(get(&orch, "/api/tasks?fits=nobody").await.status, 404);

    let refused = claim(&orch, &task, "cpu-1", &cpu).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "CAPABILITY_MISMATCH");
    let message = refused.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("gpu") && message.contains("vram >= 24576 MiB (has no GPU VRAM)"),
        "{message}"
    );
    let won = claim(&orch, &task, "gpu-1", &big).await;
    assert_eq!(won.status, 200, "{}", won.text);
    Ok(())
}

#[tokio::test]
async fn labels_are_checked_at_registration() {
    let orch = market("");
    let token = WorkerToken::generate();
    for bad in [json!(["Region=EU"]), json!("region=eu"), json!([1])] {
        let mut body = raw_body("w-1", WALLET_LOWER, &token);
        body["labels"] = bad.clone();
        let resp = orch
            .http()
            .post(orch.at("/api/workers/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
}

/// The user text of a job's request.
fn text_of(request: &Value) -> String {
    request["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn chat_labelled(orch: &Orchestrator, label: Option<&str>, text: &str) -> reqwest::Response {
    let mut req = orch
        .http()
        .post(orch.at("/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": text}]}));
    if let Some(label) = label {
        req = req.header("x-basis-worker-label", label);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_gateway_request_asking_for_a_label_runs_only_where_it_is() -> TestResult {
    let orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: fast_toml(),
        ..Options::default()
    });
    let eu = register_with(&orch, "gpu-eu", None, &["region=eu"]).await;
    let plain = register_with(&orch, "gpu-any", None, &[]).await;
    let mut eu_worker = FakeWorker::connect(&orch, &eu, "gpu-eu", &["m"], 1).await;
    let mut plain_worker = FakeWorker::connect(&orch, &plain, "gpu-any", &["m"], 4).await;

    // Asked for: only the labelled worker takes it.
    let first = tokio::spawn({
        let (http, url) = (orch.http(), orch.at("/v1/chat/completions"));
        async move {
            http.post(url)
                .header("x-basis-worker-label", "region=eu")
                .json(&json!({"model": "m", "messages": [{"role": "user", "content": "eu-1"}]}))
                .send()
                .await
        }
    });
    let (job, request) = eu_worker.next_job().await;
    assert_eq!(text_of(&request), "eu-1");
    // It is busy (capacity 1): the next labelled request waits for it, although the other
    // worker is free.
    let second = tokio::spawn({
        let (http, url) = (orch.http(), orch.at("/v1/chat/completions"));
        async move {
            http.post(url)
                .header("x-basis-worker-label", "region=eu")
                .json(&json!({"model": "m", "messages": [{"role": "user", "content": "eu-2"}]}))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // An unlabelled request meanwhile goes to the free worker.
    let any = tokio::spawn({
        let (http, url) = (orch.http(), orch.at("/v1/chat/completions"));
        async move {
            http.post(url)
                .json(&json!({"model": "m", "messages": [{"role": "user", "content": "any"}]}))
                .send()
                .await
        }
    });
    let (any_job, any_request) = plain_worker.next_job().await;
    assert_eq!(text_of(&any_request), "any");
    plain_worker.done(&any_job, "ok");
    assert_eq!(any.await??.status(), 200);
    eu_worker.done(&job, "ok");
    let first = first.await??;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-basis-worker-id"], "gpu-eu");
    let (job, request) = eu_worker.next_job().await;
    assert_eq!(text_of(&request), "eu-2", "the waiting labelled request");
    eu_worker.done(&job, "ok");
    let second = second.await??;
    assert_eq!(second.headers()["x-basis-worker-id"], "gpu-eu");

    // No worker has it: 503 naming the label; a malformed label: 400.
    let none = chat_labelled(&orch, Some("region=us"), "us").await;
    assert_eq!(none.status(), 503);
    let body: Value = none.json().await?;
    assert_eq!(body["error"]["code"], "NO_WORKER_AVAILABLE");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("with label `region=us`"),
        "{body}"
    );
    let bad = chat_labelled(&orch, Some("Not A Label"), "bad").await;
    assert_eq!(bad.status(), 400);
    Ok(())
}
