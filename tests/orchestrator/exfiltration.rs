//! The orchestrator's half of keeping host files off the market: an output is re-checked over
//! what it decodes to (a bytes output's bytes; base64, hex, gzip, zip inside) before it is
//! stored (422 `SECRET_REFUSED`, nothing echoed or stored), and a submission is readable only
//! by the task's poster, an evaluator, the submitting worker and the admin: no credential is
//! 401, a stranger's credential the same 404 as a submission that does not exist, and no other
//! route shows an output.

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use basis::domain::{OutputHash, Runtime};
use reqwest::Method;

use super::market::*;
use super::*;

const TOKEN: &str = "9f2c4e1a7b3d5f60819a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70";
const OUTPUT: &str = "A fox jumps over a dog, quietly.";

fn env_file() -> String {
    format!("BASIS_WORKER_ID=gpu-9\nBASIS_WORKER_TOKEN={TOKEN}\n")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The submit body for a bytes output of `raw`.
fn bytes_body(id: &str, raw: &[u8]) -> Value {
    json!({
        "worker_id": id,
        "output": STANDARD.encode(raw),
        "output_hash": OutputHash::of(raw).to_string(),
    })
}

#[tokio::test]
async fn a_secret_inside_the_decoded_output_is_refused_and_not_stored() -> TestResult {
    let orch = market("");
    let token = worker(&orch, "gpu-1", Runtime::Vllm, false).await;
    let mut body = task_body("10");
    body["output_format"] = json!("bytes");
    let env = env_file();
    let cases: Vec<(&str, Value)> = vec![
        (
            "a gzip of an env file",
            bytes_body("gpu-1", &gzip(env.as_bytes())),
        ),
        ("an env file as bytes", bytes_body("gpu-1", env.as_bytes())),
        (
            "base64 text of an env file, as bytes",
            bytes_body("gpu-1", STANDARD.encode(&env).as_bytes()),
        ),
    ];
    for (what, sub) in cases {
        let task = post_task(&orch, &body).await;
        assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
        let a = submit(&orch, &task, &token, &sub).await;
        a.refused(422, "SECRET_REFUSED");
        assert!(!a.text.contains(TOKEN), "{what}: {}", a.text);
        let t = get(&orch, &format!("/api/tasks/{task}")).await;
        assert_eq!(t.body["status"], "claimed", "{what}: nothing was stored");
        release(&orch, &task, &token).await;
    }
    // A text output hiding base64 of a private key.
    let task = post_task(&orch, &task_body("10")).await;
    assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
    let hidden = format!(
        "my notes: {}",
        STANDARD.encode(format!("key={PRIVATE_KEY}"))
    );
    let a = submit(&orch, &task, &token, &output_body("gpu-1", &hidden)).await;
    a.refused(422, "SECRET_REFUSED");
    assert!(!a.text.contains(PRIVATE_KEY) && !a.text.contains(&hidden));
    let logs = orch.logs();
    assert!(!logs.contains(TOKEN) && !logs.contains(PRIVATE_KEY));
    Ok(())
}

async fn release(orch: &Orchestrator, task: &str, token: &WorkerToken) {
    let a = post(
        orch,
        &format!("/api/tasks/{task}/release"),
        Some(token.expose_secret()),
        &json!({"worker_id": "gpu-1"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
}

/// A closed orchestrator; a task posted with client key A, claimed and submitted by gpu-1.
struct Posted {
    orch: Orchestrator,
    poster: String,
    task: String,
    sub: String,
    token: WorkerToken,
}

async fn posted() -> Posted {
    let orch = Orchestrator::with(Options {
        toml: market_toml(""),
        ..Options::default()
    });
    let poster = orch.create_key("client").0.trim().to_owned();
    let a = post(&orch, "/api/tasks", Some(&poster), &task_body("1000000")).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let task = a.body["task_id"].as_str().unwrap().to_owned();
    let token = worker(&orch, "gpu-1", Runtime::Vllm, false).await;
    assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let s = submit(&orch, &task, &token, &output_body("gpu-1", OUTPUT)).await;
    assert_eq!(s.status, 201, "{}", s.text);
    let sub = s.body["submission_id"].as_str().unwrap().to_owned();
    Posted {
        orch,
        poster,
        task,
        sub,
        token,
    }
}

async fn read(orch: &Orchestrator, sub: &str, bearer: Option<&str>, admin: Option<&str>) -> Answer {
    let path = format!("/api/submissions/{sub}");
    call(orch, Method::GET, &path, bearer, admin, None).await
}

#[tokio::test]
async fn only_the_poster_an_evaluator_the_worker_and_the_admin_read_a_submission() -> TestResult {
    let p = posted().await;
    let orch = &p.orch;
    let missing = format!("sub-{}", "0".repeat(32));
    // No credential: 401, for a real submission and a missing one alike.
    for sub in [&p.sub, &missing] {
        let a = read(orch, sub, None, None).await;
        a.refused(401, "SUBMISSION_CREDENTIAL_REQUIRED");
        assert!(!a.text.contains(OUTPUT));
    }
    // Strangers: the same 404 as a submission that does not exist.
    let other_client = orch.create_key("client").0.trim().to_owned();
    let other_worker = worker(orch, "gpu-2", Runtime::Vllm, false).await;
    let strangers: [(Option<&str>, Option<&str>); 5] = [
        (Some("basis_client_nope"), None),
        (Some(other_client.as_str()), None),
        (Some(other_worker.expose_secret()), None),
        (Some(TOKEN), None),
        (None, Some("basis_admin_nope")),
    ];
    let unknown = read(orch, &missing, Some(&p.poster), None).await;
    unknown.refused(404, "SUBMISSION_NOT_FOUND");
    for (bearer, admin) in strangers {
        let a = read(orch, &p.sub, bearer, admin).await;
        a.refused(404, "SUBMISSION_NOT_FOUND");
        assert_eq!(a.body, unknown.body, "a stranger can tell it exists");
        assert!(!a.text.contains(OUTPUT));
    }
    // The four who may.
    let evaluator = orch.create_key("evaluator").0.trim().to_owned();
    let admin = orch.create_key("admin").0.trim().to_owned();
    let readers: [(Option<&str>, Option<&str>); 4] = [
        (Some(p.poster.as_str()), None),
        (Some(evaluator.as_str()), None),
        (Some(p.token.expose_secret()), None),
        (None, Some(admin.as_str())),
    ];
    for (bearer, admin) in readers {
        let a = read(orch, &p.sub, bearer, admin).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["output"], OUTPUT);
    }
    // No other route shows the output.
    for path in [
        format!("/api/tasks/{}", p.task),
        "/api/tasks?status=submitted".to_owned(),
        "/api/workers/gpu-1/rewards".to_owned(),
        "/api/workers/gpu-1".to_owned(),
    ] {
        let a = get(orch, &path).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        assert!(!a.text.contains(OUTPUT), "{path} shows the output");
    }
    // Settled: the receipt carries the output's hash, never the output.
    let settled = evaluate(
        orch,
        &p.sub,
        Some(&evaluator),
        &json!({"score": 90, "passed": true, "reasons": ["fine"]}),
    )
    .await;
    assert_eq!(settled.status, 200, "{}", settled.text);
    let receipt = settled.body["receipt_id"].as_str().unwrap();
    let r = get(orch, &format!("/api/receipts/{receipt}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.contains(OUTPUT));
    Ok(())
}

#[tokio::test]
async fn with_open_the_poster_is_whoever_sent_the_key() -> TestResult {
    let orch = market("");
    let token = worker(&orch, "gpu-1", Runtime::Vllm, false).await;
    let mut subs = Vec::new();
    for bearer in [None, Some("any-poster-secret-1234")] {
        let a = post(&orch, "/api/tasks", bearer, &task_body("10")).await;
        assert_eq!(a.status, 201, "{}", a.text);
        let task = a.body["task_id"].as_str().unwrap().to_owned();
        assert_eq!(claim(&orch, &task, "gpu-1", &token).await.status, 200);
        let s = submit(&orch, &task, &token, &output_body("gpu-1", OUTPUT)).await;
        assert_eq!(s.status, 201, "{}", s.text);
        subs.push(s.body["submission_id"].as_str().unwrap().to_owned());
    }
    // Posted without a key: that poster has nothing to read it with.
    read(&orch, &subs[0], Some("any-poster-secret-1234"), None)
        .await
        .refused(404, "SUBMISSION_NOT_FOUND");
    let a = read(&orch, &subs[1], Some("any-poster-secret-1234"), None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    read(&orch, &subs[1], Some("another-secret-12345"), None)
        .await
        .refused(404, "SUBMISSION_NOT_FOUND");
    Ok(())
}
