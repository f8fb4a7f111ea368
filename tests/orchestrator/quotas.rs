//! Quotas per client key and the operator's key commands, against the real orchestrator
//! process and the real CLI (`keys create --requests-per-minute/--tokens-per-day`, `keys list`,
//! `keys set-limits`, `keys revoke`): a key over its requests per minute or tokens per day gets
//! 429 `QUOTA_EXCEEDED` with `Retry-After` and is served again after it; a revoked key is
//! refused at once, on every route, although the gateway had just remembered it.

use std::process::Command;

use super::fake_worker::*;
use super::*;

/// `basis orchestrator keys create --role ROLE` with `args` (the database, quotas) and `env`:
/// the key it printed.
pub fn create_key_with(role: &str, args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> String {
    let out = Command::new(common::orchestrator::bin())
        .args(["orchestrator", "keys", "create", "--role", role])
        .args(args)
        .envs(env.iter().copied())
        .env_remove("BASIS_ORCHESTRATOR_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A client key with `flags` (its quotas), in `orch`'s database.
fn client_key_with(orch: &Orchestrator, flags: &[&str]) -> String {
    let mut args = vec!["--db".as_ref(), orch.db.as_os_str()];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    create_key_with("client", &args, &[])
}

/// `basis orchestrator keys ARGS --json` as the operator, with `admin` in BASIS_ADMIN_KEY.
fn keys_cli(orch: &Orchestrator, admin: &str, args: &[&str]) -> (bool, Value) {
    let out = Command::new(common::orchestrator::bin())
        .args(["orchestrator", "keys"])
        .args(args)
        .args(["--json", "--url", orch.url.as_str()])
        .env("BASIS_ADMIN_KEY", admin)
        .env_remove("BASIS_ORCHESTRATOR_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains(admin), "the admin key is never printed");
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
    )
}

/// The id `keys list` shows for `key`.
fn id_of(key: &str) -> String {
    use sha2::Digest as _;
    format!(
        "key:{}",
        &hex::encode(sha2::Sha256::digest(key.as_bytes()))[..8]
    )
}

async fn models(orch: &Orchestrator, key: &str) -> reqwest::Response {
    orch.http()
        .get(orch.at("/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn code(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Answers every job with "ok" (usage 3 prompt + 2 completion tokens) until dropped.
async fn echo_worker(orch: &Orchestrator) -> tokio::task::JoinHandle<()> {
    let token = register(orch, "gpu-q", &["m"]).await;
    let mut worker = FakeWorker::connect(orch, &token, "gpu-q", &["m"], 4).await;
    tokio::spawn(async move {
        loop {
            let (job, _) = worker.next_job().await;
            worker.done(&job, "ok");
        }
    })
}

#[tokio::test]
async fn a_key_over_its_requests_per_minute_waits_for_retry_after() -> TestResult {
    let orch = fast();
    let key = client_key_with(&orch, &["--requests-per-minute", "60"]);
    let free = client_key(&orch);
    // 60 at once (the whole minute's bucket), then refused.
    for _ in 0..60 {
        assert_eq!(models(&orch, &key).await.status(), 200);
    }
    let refused = models(&orch, &key).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(code(refused).await, "QUOTA_EXCEEDED");
    let chat_refused = chat(&orch, Some(&key), "m", false).await;
    assert_eq!(chat_refused.status(), 429);
    let body: Value = chat_refused.json().await?;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("60 requests per minute"),
        "{body}"
    );
    // Another key is not affected; after Retry-After the limited one is served again.
    assert_eq!(models(&orch, &free).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(models(&orch, &key).await.status(), 200);
    Ok(())
}

#[tokio::test]
async fn tokens_per_day_are_counted_listed_and_can_be_raised_at_once() -> TestResult {
    let orch = fast();
    let admin = orch.create_key("admin").0.trim().to_owned();
    let key = client_key_with(&orch, &["--tokens-per-day", "5"]);
    let _worker = echo_worker(&orch).await;
    // The first job uses 5 tokens (3 + 2): served in full; the next is refused until midnight.
    assert_eq!(chat(&orch, Some(&key), "m", false).await.status(), 200);
    let refused = chat(&orch, Some(&key), "m", false).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=86_400).contains(&retry), "until UTC midnight: {retry}");
    assert_eq!(code(refused).await, "QUOTA_EXCEEDED");
    // Calls that use no tokens are not held by the token quota.
    assert_eq!(models(&orch, &key).await.status(), 200);

    let (ok, list) = keys_cli(&orch, &admin, &["list"]);
    assert!(ok, "{list}");
    let id = id_of(&key);
    let entry = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["role"], "client");
    assert_eq!(entry["limits"]["tokens_per_day"], 5);
    assert_eq!(
        entry["usage_today"],
        json!({"requests": 1, "prompt_tokens": 3, "completion_tokens": 2, "amount": "0"})
    );
    assert!(!list.to_string().contains(&key), "a key is never listed");

    let (ok, changed) = keys_cli(
        &orch,
        &admin,
        &["set-limits", &id, "--tokens-per-day", "100"],
    );
    assert!(ok, "{changed}");
    assert_eq!(changed["limits"], json!({"tokens_per_day": 100}));
    // At once, although the gateway remembered the key's old quota a moment ago.
    assert_eq!(chat(&orch, Some(&key), "m", false).await.status(), 200);
    Ok(())
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once_on_every_route() -> TestResult {
    let orch = fast();
    let admin = orch.create_key("admin").0.trim().to_owned();
    let key = client_key(&orch);
    let _worker = echo_worker(&orch).await;
    assert_eq!(chat(&orch, Some(&key), "m", false).await.status(), 200);
    assert_eq!(models(&orch, &key).await.status(), 200);

    // Without the admin key, or with a wrong one, nothing changes.
    let (ok, refused) = keys_cli(&orch, "basis_admin_wrong", &["revoke", &id_of(&key)]);
    assert!(!ok);
    assert_eq!(refused["error"]["code"], "ADMIN_KEY_REQUIRED");
    let (ok, unknown) = keys_cli(&orch, &admin, &["revoke", "key:00000000"]);
    assert!(!ok);
    assert_eq!(unknown["error"]["code"], "KEY_NOT_FOUND");

    // Named by its whole sha256, as `keys list` shows it (a hash, not a secret).
    let full = {
        use sha2::Digest as _;
        format!("0x{}", hex::encode(sha2::Sha256::digest(key.as_bytes())))
    };
    let (ok, revoked) = keys_cli(&orch, &admin, &["revoke", &full]);
    assert!(ok, "{revoked}");
    assert!(revoked["revoked_at"].as_u64().is_some());
    assert_eq!(revoked["id"], id_of(&key).as_str());
    let chat_now = chat(&orch, Some(&key), "m", false).await;
    assert_eq!(chat_now.status(), 401);
    assert_eq!(code(chat_now).await, "CLIENT_KEY_INVALID");
    assert_eq!(models(&orch, &key).await.status(), 401);
    let post = orch
        .http()
        .post(orch.at("/api/tasks"))
        .bearer_auth(&key)
        .json(&super::market::task_body("1000"))
        .send()
        .await?;
    assert_eq!(post.status(), 401);
    Ok(())
}

#[tokio::test]
async fn limits_are_for_client_keys_and_at_least_one() {
    let orch = fast();
    let out = Command::new(common::orchestrator::bin())
        .args(["orchestrator", "keys", "create", "--role", "admin", "--db"])
        .arg(&orch.db)
        .args(["--requests-per-minute", "5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("client keys only"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(common::orchestrator::bin())
        .args(["orchestrator", "keys", "create", "--role", "client", "--db"])
        .arg(&orch.db)
        .args(["--tokens-per-day", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "0 is refused by the flag's range");
    let admin = orch.create_key("admin").0.trim().to_owned();
    let evaluator = orch.create_key("evaluator").0.trim().to_owned();
    let (ok, refused) = keys_cli(
        &orch,
        &admin,
        &[
            "set-limits",
            &id_of(&evaluator),
            "--requests-per-minute",
            "5",
        ],
    );
    assert!(!ok);
    assert_eq!(refused["error"]["code"], "INVALID_ARGUMENT");
}

/// Two replicas of one PostgreSQL database (not `--open`): a key revoked on one is refused at
/// once by the other, which had just remembered it; a request forwarded from one replica to a
/// worker on the other counts against its key's usage.
#[tokio::test]
async fn replicas_share_usage_and_forget_a_revoked_key_at_once() -> TestResult {
    use basis::orchestrator::replica::config::{ENV_REPLICA_ID, ENV_REPLICA_SECRET};
    use basis::orchestrator::store::postgres::testdb::TestDb;

    let db = TestDb::create().await;
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let replica = |i: usize| {
        Orchestrator::with(Options {
            toml: fast_toml(),
            args: Vec::new(),
            env: vec![
                ("BASIS_DATABASE_URL".into(), db.url.clone()),
                (ENV_REPLICA_ID.into(), format!("r-{i}")),
                (ENV_REPLICA_SECRET.into(), secret.clone()),
            ],
        })
    };
    let (a, b) = (replica(0), replica(1));
    let create = |role: &str| create_key_with(role, &[], &[("BASIS_DATABASE_URL", &db.url)]);
    let (admin, key) = (create("admin"), create("client"));

    // A worker on b; a request on a reaches it (forwarded) and counts against the key.
    let token = register(&b, "gpu-b", &["m"]).await;
    let mut worker = FakeWorker::connect(&b, &token, "gpu-b", &["m"], 4).await;
    let _answers = tokio::spawn(async move {
        loop {
            let (job, _) = worker.next_job().await;
            worker.done(&job, "ok");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = chat(&a, Some(&key), "m", false).await;
        if resp.status() == 200 {
            assert!(
                resp.headers().contains_key("x-basis-replica-id"),
                "forwarded"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never forwarded: {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, list) = keys_cli(&a, &admin, &["list"]);
    assert!(ok, "{list}");
    let usage = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id_of(&key).as_str())
        .map(|k| k["usage_today"].clone())
        .unwrap();
    assert_eq!(usage["requests"], 1, "{list}");
    assert_eq!(usage["prompt_tokens"], 3);

    // b remembers the key; revoked on a, b refuses it at once (not within the cache TTL).
    assert_eq!(models(&b, &key).await.status(), 200);
    let (ok, revoked) = keys_cli(&a, &admin, &["revoke", &id_of(&key)]);
    assert!(ok, "{revoked}");
    assert_eq!(models(&b, &key).await.status(), 401);
    assert_eq!(models(&a, &key).await.status(), 401);
    Ok(())
}
