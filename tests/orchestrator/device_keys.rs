//! Device keys and signed requests from the orchestrator's side (docs/SECURITY.md, "Signed
//! requests"): registration proves possession of the key; every worker action is signed
//! (RFC 9421) and refused when replayed, changed after signing, stale, made for another
//! orchestrator, or by another key; rotation needs the old key; a legacy token worker moves to a
//! key once and its token is refused from then on; an admin revocation stops the key on every
//! route and closes its channel; the channel opens by signing a challenge.

use basis::domain::DeviceKey;
use basis::wire::signature::{self, LABEL, PREVIOUS_LABEL};
use reqwest::Method;

use super::fake_worker::*;
use super::market::*;
use super::*;

/// A request signed once, kept whole so it can be sent again (a replay) or elsewhere.
#[derive(Debug, Clone)]
struct Signed {
    method: Method,
    path: String,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Signed {
    /// `method path` with `body`, signed for `orch` by `keys` (label and key), made at `created`.
    fn new(
        orch: &Orchestrator,
        method: Method,
        path: &str,
        body: &Value,
        id: &str,
        keys: &[(&'static str, &DeviceKey)],
        created: u64,
    ) -> Self {
        let body = serde_json::to_vec(body).unwrap();
        let target = orch.at(path).to_string();
        let id = WorkerId::parse(id).unwrap();
        let members: Vec<_> = keys
            .iter()
            .map(|(label, key)| {
                signature::sign_member(key, label, &id, method.as_str(), &target, &body, created)
            })
            .collect();
        let h = signature::headers(&body, &members);
        Self {
            method,
            path: path.to_owned(),
            body,
            headers: vec![
                ("content-digest", h.content_digest),
                ("signature-input", h.signature_input),
                ("signature", h.signature),
            ],
        }
    }

    fn now(orch: &Orchestrator, path: &str, body: &Value, id: &str, key: &DeviceKey) -> Self {
        Self::new(
            orch,
            Method::POST,
            path,
            body,
            id,
            &[(LABEL, key)],
            basis_now(),
        )
    }

    /// Sends it to `orch` (which may not be the one it was signed for).
    async fn send(&self, orch: &Orchestrator) -> Answer {
        self.send_with(orch, &[]).await
    }

    async fn send_with(&self, orch: &Orchestrator, extra: &[(&str, &str)]) -> Answer {
        let mut rb = orch
            .http()
            .request(self.method.clone(), orch.at(&self.path))
            .header("content-type", "application/json")
            .body(self.body.clone());
        for (name, value) in &self.headers {
            rb = rb.header(*name, value);
        }
        for (name, value) in extra {
            rb = rb.header(*name, *value);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }
}

fn keyed(id: &str, key: &DeviceKey) -> Value {
    json!({
        "worker_id": id,
        "wallet": WALLET_LOWER,
        "runtime": "echo",
        "models": ["echo", "llama3.2:1b"],
        "public_key": key.public().to_string(),
        "version": "0.1.0",
    })
}

const REGISTER: &str = "/api/workers/register";

async fn register_key(orch: &Orchestrator, id: &str, key: &DeviceKey) -> Answer {
    Signed::now(orch, REGISTER, &keyed(id, key), id, key)
        .send(orch)
        .await
}

fn claim_of(orch: &Orchestrator, task: &str, id: &str, key: &DeviceKey) -> Signed {
    Signed::now(
        orch,
        &format!("/api/tasks/{task}/claim"),
        &json!({ "worker_id": id }),
        id,
        key,
    )
}

#[tokio::test]
async fn registration_proves_the_key_and_stores_only_its_public_half() -> TestResult {
    let orch = market("");
    let key = DeviceKey::generate();
    // The public key without a signature by it: refused.
    let (status, body, _) = post_raw(&orch, &keyed("gpu-1", &key)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("WORKER_SIGNATURE_INVALID"))
    );
    // Signed by another key than the one it registers: refused.
    let other = DeviceKey::generate();
    Signed::now(&orch, REGISTER, &keyed("gpu-1", &key), "gpu-1", &other)
        .send(&orch)
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    let a = register_key(&orch, "gpu-1", &key).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["key_fingerprint"], key.fingerprint().to_string());
    // The same registration again, signed afresh: unchanged.
    assert_eq!(register_key(&orch, "gpu-1", &key).await.status, 200);
    // Another key without the old key's signature: the id is taken.
    register_key(&orch, "gpu-1", &other)
        .await
        .refused(409, "WORKER_ID_TAKEN");
    // A token registration for a worker with a key: refused.
    let (status, body, _) = post_raw(
        &orch,
        &raw_body("gpu-1", WALLET_LOWER, &WorkerToken::generate()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("WORKER_ID_TAKEN"))
    );
    let secret = key.expose_secret();
    assert!(
        !orch.logs().contains(&secret[9..]),
        "the private key was logged"
    );
    Ok(())
}

#[tokio::test]
async fn a_signed_claim_works_once_and_every_tampered_copy_is_refused() -> TestResult {
    let orch = market("");
    let other_orch = market("");
    let key = DeviceKey::generate();
    assert_eq!(register_key(&orch, "gpu-1", &key).await.status, 201);
    assert_eq!(register_key(&other_orch, "gpu-1", &key).await.status, 201);
    let task = post_task(&orch, &task_body("10")).await;
    let path = format!("/api/tasks/{task}/claim");
    let body = json!({ "worker_id": "gpu-1" });

    // Made 301 s ago or 301 s ahead: outside the window.
    for created in [basis_now() - 301, basis_now() + 301] {
        Signed::new(
            &orch,
            Method::POST,
            &path,
            &body,
            "gpu-1",
            &[(LABEL, &key)],
            created,
        )
        .send(&orch)
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    }
    // The body changed after signing.
    let mut changed = claim_of(&orch, &task, "gpu-1", &key);
    changed.body = serde_json::to_vec(&json!({ "worker_id": "gpu-2" })).unwrap();
    changed
        .send(&orch)
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    // The body (the same JSON, other bytes) and its digest changed after signing.
    let mut redigested = changed.clone();
    redigested.body = br#"{ "worker_id": "gpu-1" }"#.to_vec();
    redigested.headers[0].1 = signature::content_digest(&redigested.body);
    redigested
        .send(&orch)
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    // Signed for the other orchestrator, sent here (the Host header is this one's).
    Signed::now(&other_orch, &path, &body, "gpu-1", &key)
        .send(&orch)
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    // By another key.
    claim_of(&orch, &task, "gpu-1", &DeviceKey::generate())
        .send(&orch)
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    // Unsigned, or with a bearer token: a worker with a key must sign.
    post(
        &orch,
        &path,
        Some(WorkerToken::generate().expose_secret()),
        &body,
    )
    .await
    .refused(401, "WORKER_SIGNATURE_INVALID");

    let good = claim_of(&orch, &task, "gpu-1", &key);
    let a = good.send(&orch).await;
    assert_eq!(a.status, 200, "{}", a.text);
    // The same request again: its nonce is spent.
    let again = good.send(&orch).await;
    again.refused(401, "WORKER_SIGNATURE_INVALID");
    assert!(again.text.contains("nonce"), "{}", again.text);
    // Captured here, replayed at another orchestrator that knows the same worker and key.
    let task_b = post_task(&other_orch, &task_body("10")).await;
    let captured = claim_of(&orch, &task_b, "gpu-1", &key);
    captured
        .send(&other_orch)
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    // …even with this orchestrator's Host forged: the other answers only to its own address.
    let here = orch.at("/");
    let forged = format!("{}:{}", here.host_str().unwrap(), here.port().unwrap());
    captured
        .send_with(&other_orch, &[("host", &forged)])
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    Ok(())
}

/// `Signed::new`, but for `origin` instead of the orchestrator's address.
fn signed_for(origin: &str, path: &str, body: &Value, id: &str, key: &DeviceKey) -> Signed {
    let bytes = serde_json::to_vec(body).unwrap();
    let id = WorkerId::parse(id).unwrap();
    let target = format!("{origin}{path}");
    let m = signature::sign_member(key, LABEL, &id, "POST", &target, &bytes, basis_now());
    let h = signature::headers(&bytes, &[m]);
    Signed {
        method: Method::POST,
        path: path.to_owned(),
        body: bytes,
        headers: vec![
            ("content-digest", h.content_digest),
            ("signature-input", h.signature_input),
            ("signature", h.signature),
        ],
    }
}

#[tokio::test]
async fn configured_origins_refuse_a_forged_host() -> TestResult {
    let a = market("");
    // B is known to its workers as http://b.example (a proxy in front, say).
    let b = Orchestrator::with(Options {
        args: vec!["--open".into()],
        toml: format!("origins = [\"http://b.example\"]\n{}", market_toml("")),
        ..Options::default()
    });
    let key = DeviceKey::generate();
    let body = keyed("gpu-1", &key);
    // Signed for B's address rather than its origin: refused.
    Signed::now(&b, REGISTER, &body, "gpu-1", &key)
        .send(&b)
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    let at_b = signed_for("http://b.example", REGISTER, &body, "gpu-1", &key)
        .send(&b)
        .await;
    assert_eq!(at_b.status, 201, "{}", at_b.text);
    assert_eq!(register_key(&a, "gpu-1", &key).await.status, 201);
    // A request made for A, replayed at B with A's Host forged: B answers only to its origin.
    let task = post_task(&b, &task_body("10")).await;
    let for_a = claim_of(&a, &task, "gpu-1", &key);
    let host = a.at("/");
    let forged = format!("{}:{}", host.host_str().unwrap(), host.port().unwrap());
    for_a
        .send_with(&b, &[("host", &forged)])
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    let claimed = signed_for(
        "http://b.example",
        &format!("/api/tasks/{task}/claim"),
        &json!({ "worker_id": "gpu-1" }),
        "gpu-1",
        &key,
    )
    .send(&b)
    .await;
    assert_eq!(claimed.status, 200, "{}", claimed.text);
    Ok(())
}

#[tokio::test]
async fn rotation_needs_the_old_key_and_the_old_key_stops_at_once() -> TestResult {
    let orch = market("");
    let old = DeviceKey::generate();
    let new = DeviceKey::generate();
    assert_eq!(register_key(&orch, "gpu-1", &old).await.status, 201);
    let task = post_task(&orch, &task_body("10")).await;
    // A channel opened with the old key…
    let (mut ws, first) = channel_as(&orch, "gpu-1", &old, None).await;
    assert!(
        matches!(first, Some(OrchestratorMessage::Welcome { .. })),
        "{first:?}"
    );
    // Signed by the new key, with a `previous` signature by a stranger: refused.
    let stranger = DeviceKey::generate();
    Signed::new(
        &orch,
        Method::POST,
        REGISTER,
        &keyed("gpu-1", &new),
        "gpu-1",
        &[(LABEL, &new), (PREVIOUS_LABEL, &stranger)],
        basis_now(),
    )
    .send(&orch)
    .await
    .refused(401, "WORKER_SIGNATURE_INVALID");
    let rotated = Signed::new(
        &orch,
        Method::POST,
        REGISTER,
        &keyed("gpu-1", &new),
        "gpu-1",
        &[(LABEL, &new), (PREVIOUS_LABEL, &old)],
        basis_now(),
    )
    .send(&orch)
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(
        rotated.body["key_fingerprint"],
        new.fingerprint().to_string()
    );
    // …closes with the rotation, and the old key opens no other.
    refused_with(recv_frame(&mut ws).await, "WORKER_KEY_CHANGED");
    let (_, first) = channel_as(&orch, "gpu-1", &old, None).await;
    refused_with(first, "WORKER_SIGNATURE_INVALID");
    claim_of(&orch, &task, "gpu-1", &old)
        .send(&orch)
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    assert_eq!(
        claim_of(&orch, &task, "gpu-1", &new)
            .send(&orch)
            .await
            .status,
        200
    );
    Ok(())
}

#[tokio::test]
async fn a_legacy_token_worker_moves_to_a_key_once_and_its_token_is_refused() -> TestResult {
    let orch = market("");
    let token = worker(&orch, "gpu-1", Runtime::Echo, false).await;
    let task = post_task(&orch, &task_body("10")).await;
    let key = DeviceKey::generate();
    let mut body = keyed("gpu-1", &key);
    body["models"] = json!(["llama3.2:1b"]);
    // Without the token: someone else's id.
    Signed::now(&orch, REGISTER, &body, "gpu-1", &key)
        .send(&orch)
        .await
        .refused(409, "WORKER_ID_TAKEN");
    let bearer = format!("Bearer {}", token.expose_secret());
    let moved = Signed::now(&orch, REGISTER, &body, "gpu-1", &key)
        .send_with(&orch, &[("authorization", &bearer)])
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.body["key_fingerprint"], key.fingerprint().to_string());
    // The token alone no longer works: not for a claim, not for the channel.
    claim(&orch, &task, "gpu-1", &token)
        .await
        .refused(401, "WORKER_SIGNATURE_INVALID");
    assert_eq!(
        open(&orch, Some(token.expose_secret())).await.err(),
        Some(401)
    );
    assert_eq!(
        claim_of(&orch, &task, "gpu-1", &key)
            .send(&orch)
            .await
            .status,
        200
    );
    assert!(
        !orch.logs().contains(token.expose_secret()),
        "the token was logged"
    );
    Ok(())
}

/// Opens the channel as `id` with `key`'s proof over the challenge for `origin`: the first
/// frame after the hello.
async fn channel_as(
    orch: &Orchestrator,
    id: &str,
    key: &DeviceKey,
    origin: Option<&str>,
) -> (Ws, Option<OrchestratorMessage>) {
    let mut ws = open(orch, None)
        .await
        .expect("the upgrade needs no credential");
    let Some(OrchestratorMessage::Challenge { challenge }) = recv_frame(&mut ws).await else {
        panic!("the first frame is not a challenge");
    };
    let base = orch.at("/");
    let origin = origin.map_or_else(|| signature::origin_of(&base), str::to_owned);
    let wid = WorkerId::parse(id).unwrap();
    let WorkerMessage::Hello {
        protocol,
        worker_id,
        version,
        runtime,
        models,
        capacity,
        ..
    } = hello(id, &["echo"], 1)
    else {
        unreachable!()
    };
    let hello = WorkerMessage::Hello {
        protocol,
        worker_id,
        version,
        runtime,
        models,
        capacity,
        proof: Some(signature::channel_proof(key, &origin, &challenge, &wid)),
    };
    send_frame(&mut ws, &hello).await;
    let first = recv_frame(&mut ws).await;
    (ws, first)
}

fn refused_with(frame: Option<OrchestratorMessage>, want: &str) {
    match frame {
        Some(OrchestratorMessage::Error { code, .. }) => assert_eq!(code, want),
        other => panic!("expected error {want}, got {other:?}"),
    }
}

#[tokio::test]
async fn the_channel_opens_by_signing_its_challenge_and_a_revocation_closes_it() -> TestResult {
    let orch = market("");
    let key = DeviceKey::generate();
    assert_eq!(register_key(&orch, "gpu-1", &key).await.status, 201);
    let (_, first) = channel_as(&orch, "gpu-1", &DeviceKey::generate(), None).await;
    refused_with(first, "WORKER_SIGNATURE_INVALID");
    let (_, first) = channel_as(&orch, "gpu-1", &key, Some("https://another.example")).await;
    refused_with(first, "WORKER_SIGNATURE_INVALID");
    let (mut ws, first) = channel_as(&orch, "gpu-1", &key, None).await;
    assert!(
        matches!(first, Some(OrchestratorMessage::Welcome { .. })),
        "{first:?}"
    );
    let online = wait_record(&orch, "gpu-1", |r| r["online"] == true).await;
    assert!(online["revoked"].is_null(), "{online}");

    // Revoking needs the admin key.
    let path = "/api/workers/gpu-1/revoke";
    call(&orch, Method::POST, path, None, None, None)
        .await
        .refused(401, "ADMIN_KEY_REQUIRED");
    let admin = orch.create_key("admin").0.trim().to_owned();
    let revoked = call(&orch, Method::POST, path, None, Some(&admin), None).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body["revoked"], true);
    // Its open channel closes with WORKER_REVOKED…
    refused_with(recv_frame(&mut ws).await, "WORKER_REVOKED");
    // …it cannot open another, act, or re-register itself…
    let (_, first) = channel_as(&orch, "gpu-1", &key, None).await;
    refused_with(first, "WORKER_REVOKED");
    let task = post_task(&orch, &task_body("10")).await;
    claim_of(&orch, &task, "gpu-1", &key)
        .send(&orch)
        .await
        .refused(403, "WORKER_REVOKED");
    register_key(&orch, "gpu-1", &DeviceKey::generate())
        .await
        .refused(403, "WORKER_REVOKED");
    // …until the admin re-registers it (here with a new key).
    let fresh = DeviceKey::generate();
    let back = Signed::now(&orch, REGISTER, &keyed("gpu-1", &fresh), "gpu-1", &fresh)
        .send_with(&orch, &[("x-basis-admin-key", &admin)])
        .await;
    assert_eq!(back.status, 200, "{}", back.text);
    assert!(back.body["revoked"].is_null(), "{}", back.text);
    assert_eq!(
        claim_of(&orch, &task, "gpu-1", &fresh)
            .send(&orch)
            .await
            .status,
        200
    );
    Ok(())
}

/// Two replicas of one PostgreSQL database: a worker whose channel is open on B, revoked on A,
/// is cut off on B at once (A tells B), and B refuses its signed actions too.
#[tokio::test]
async fn a_revocation_on_one_replica_closes_the_channel_held_by_another() -> TestResult {
    use basis::orchestrator::replica::config::{ENV_REPLICA_ID, ENV_REPLICA_SECRET};
    use basis::orchestrator::store::postgres::testdb::TestDb;

    let db = TestDb::create().await;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let replica = |i: usize| {
        Orchestrator::with(Options {
            toml: market_toml(""),
            args: vec!["--open".into()],
            env: vec![
                ("BASIS_DATABASE_URL".into(), db.url.clone()),
                (ENV_REPLICA_ID.into(), format!("r-{i}")),
                (ENV_REPLICA_SECRET.into(), secret.clone()),
            ],
        })
    };
    let (a, b) = (replica(0), replica(1));
    let admin = super::quotas::create_key_with("admin", &[], &[("BASIS_DATABASE_URL", &db.url)]);
    let key = DeviceKey::generate();
    assert_eq!(register_key(&b, "gpu-1", &key).await.status, 201);
    let (mut ws, first) = channel_as(&b, "gpu-1", &key, None).await;
    assert!(
        matches!(first, Some(OrchestratorMessage::Welcome { .. })),
        "{first:?}"
    );
    // A knows B once B has announced itself (at start) and the worker is online there.
    wait_record(&a, "gpu-1", |r| r["online"] == true).await;
    let revoked = call(
        &a,
        Method::POST,
        "/api/workers/gpu-1/revoke",
        None,
        Some(admin.trim()),
        None,
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    refused_with(recv_frame(&mut ws).await, "WORKER_REVOKED");
    let task = post_task(&b, &task_body("10")).await;
    claim_of(&b, &task, "gpu-1", &key)
        .send(&b)
        .await
        .refused(403, "WORKER_REVOKED");
    Ok(())
}

/// `basis orchestrator workers revoke ID`: the admin key from the environment, never printed;
/// a wrong one changes nothing.
#[tokio::test]
async fn the_operator_revokes_a_worker_from_the_command_line() -> TestResult {
    let orch = market("");
    let key = DeviceKey::generate();
    assert_eq!(register_key(&orch, "gpu-1", &key).await.status, 201);
    let admin = orch.create_key("admin").0.trim().to_owned();
    let revoke = |admin: &str, id: &str| {
        std::process::Command::new(common::orchestrator::bin())
            .args([
                "orchestrator",
                "workers",
                "revoke",
                id,
                "--json",
                "--url",
                orch.url.as_str(),
            ])
            .env("BASIS_ADMIN_KEY", admin)
            .env_remove("BASIS_ORCHESTRATOR_URL")
            .output()
            .unwrap()
    };
    let wrong = revoke("basis_admin_nope", "gpu-1");
    assert!(!wrong.status.success());
    assert!(record(&orch, "gpu-1").await["revoked"].is_null());
    let missing = revoke(&admin, "gpu-9");
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stdout).contains("WORKER_NOT_FOUND")
            || String::from_utf8_lossy(&missing.stderr).contains("WORKER_NOT_FOUND")
    );
    let out = revoke(&admin, "gpu-1");
    let stdout = String::from_utf8(out.stdout)?;
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains(&admin), "the admin key was printed");
    let shown: Value = serde_json::from_str(&stdout)?;
    assert_eq!(
        (shown["worker_id"].as_str(), shown["revoked"].as_bool()),
        (Some("gpu-1"), Some(true))
    );
    assert_eq!(record(&orch, "gpu-1").await["revoked"], true);
    Ok(())
}
