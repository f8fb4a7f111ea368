//! The device key from the CLI against a real orchestrator (docs/SECURITY.md, "Identity:
//! worker id, wallet, device key"): `write-env` makes it, `register` sends only its public half
//! (signed), the worker connects by signing the orchestrator's challenge, `rotate-key` replaces
//! it (the old key is refused at once, an interrupted rotation finishes on a rerun), and a
//! legacy env file that holds only a token moves to a key once, after which the token is
//! refused. The key is pasted into no flag and printed nowhere.

use basis::client::{OrchestratorClient, RegisterAuth, WorkerAuth};
use basis::domain::{DeviceKey, TaskId, TokenSha256, WorkerId, WorkerToken};
use basis::wire::RegisterRequest;
use sha2::{Digest, Sha256};

use super::*;

/// The env file's value of `key`, if set.
fn env_value(home: &Home, key: &str) -> Option<String> {
    std::fs::read_to_string(home.env_file())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_owned))
}

/// Rewrites the env file with `key` set to `value` (appended when absent), mode 0600.
fn set_env_value(home: &Home, key: &str, value: &str) {
    let text = std::fs::read_to_string(home.env_file()).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with(&format!("{key}=")))
        .map(str::to_owned)
        .collect();
    lines.push(format!("{key}={value}"));
    std::fs::write(home.env_file(), lines.join("\n") + "\n").unwrap();
    std::fs::set_permissions(home.env_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn fingerprint(key: &str) -> String {
    DeviceKey::parse(key).unwrap().fingerprint().to_string()
}

/// A copy of the env file at `name` (0600) with the device key replaced by `key`.
fn env_with_key(home: &Home, name: &str, key: &str) -> String {
    let text = std::fs::read_to_string(home.env_file())
        .unwrap()
        .replace(&home.key(), key);
    let path = home.path().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// Stops the supervisor (and its worker) when dropped, so none outlives a failed test.
struct Running<'a>(&'a Home);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.0.basis(&["stop", "--drain-timeout", "1"]);
    }
}

/// `basis start`, then `basis verify --wait 30`: the worker is online.
fn start_and_verify(home: &Home) -> Running<'_> {
    let running = Running(home);
    let (code, started) = home.json(&["start", "--json"]);
    assert_eq!(code, 0, "{started}");
    let (code, verified) = home.json(&["verify", "--wait", "30", "--json"]);
    assert_eq!(code, 0, "{verified}");
    assert_eq!(verified["online"], true, "{verified}");
    running
}

/// `basis stop`; it succeeds.
fn stop(home: &Home) {
    let (code, stopped) = home.json(&["stop", "--drain-timeout", "1", "--json"]);
    assert_eq!(code, 0, "{stopped}");
}

fn client(url: &str) -> OrchestratorClient {
    OrchestratorClient::new(
        url::Url::parse(url).unwrap(),
        std::time::Duration::from_secs(10),
    )
    .unwrap()
}

/// `cli-box`'s registration at `key`, as `basis register` sends it (hardware aside).
fn registration(public: &[u8; 32], key: Option<&DeviceKey>) -> RegisterRequest {
    let sha = format!("0x{}", hex::encode(Sha256::digest(public)));
    RegisterRequest {
        worker_id: WorkerId::parse("cli-box").unwrap(),
        wallet: basis::domain::WalletAddress::parse(WALLET).unwrap(),
        runtime: basis::domain::Runtime::Echo,
        models: vec!["tiny".into()],
        token_sha256: TokenSha256::parse(&sha).unwrap(),
        public_key: key.map(DeviceKey::public),
        hardware: None,
        version: "0.1.0".into(),
        multi_task: false,
        labels: Vec::new(),
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one flow, start to end
fn register_start_and_rotate_with_the_device_key() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    let (code, written) = home.json(&[
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "cli-box",
        "--models",
        "tiny",
        "--orchestrator-url",
        &orch.url,
        "--json",
    ]);
    assert_eq!(code, 0, "{written}");
    let first = home.key();
    assert_eq!(written["key_fingerprint"], fingerprint(&first));
    assert_eq!(env_value(&home, "BASIS_WORKER_TOKEN"), None);

    let (code, registered) = home.json(&["register", "--json"]);
    assert_eq!(code, 0, "{registered}");
    assert_eq!(registered["created"], true);
    assert_eq!(registered["migrated"], false);
    assert_eq!(registered["key_fingerprint"], fingerprint(&first));
    assert_eq!(registered["record"]["key_fingerprint"], fingerprint(&first));
    let (code, net) = home.json(&["network", "--json"]);
    assert_eq!(code, 0, "{net}");
    assert_eq!(
        (&net["credential_matches"], &net["legacy"]),
        (&Value::Bool(true), &Value::Bool(false)),
        "{net}"
    );

    // The worker connects by signing the challenge; the market takes signed requests.
    let running = start_and_verify(&home);
    let task = post_task(&orch.url, "signed");
    let (code, claim) = home.json(&["claim", &task, "--json"]);
    assert_eq!(code, 0, "{claim}");
    stop(&home);
    drop(running);

    // Rotation: the old key signs the new one; the old one is refused at once.
    let (code, rotated) = home.json(&["rotate-key", "--json"]);
    assert_eq!(code, 0, "{rotated}");
    let second = home.key();
    assert_ne!(second, first);
    assert_eq!(rotated["previous_key_fingerprint"], fingerprint(&first));
    assert_eq!(rotated["key_fingerprint"], fingerprint(&second));
    assert_eq!(rotated["record"]["key_fingerprint"], fingerprint(&second));
    assert_eq!(rotated["resumed"], false);
    assert!(
        rotated["next_step"]
            .as_str()
            .unwrap()
            .contains("stop_worker")
    );
    assert_eq!(env_value(&home, "BASIS_DEVICE_KEY_NEXT"), None);
    let human = human_text(&home.basis(&["rotate-key"]));
    assert!(
        human.contains("`basis stop`") || human.contains("basis stop"),
        "{human}"
    );
    let third = home.key();

    let old = env_with_key(&home, "old.env", &first);
    let (code, refused) = home.json(&["release", &task, "--env", &old, "--json"]);
    assert_eq!(code, 2, "{refused}");
    assert_eq!(
        refused["error"]["code"], "WORKER_SIGNATURE_INVALID",
        "{refused}"
    );
    let (code, released) = home.json(&["release", &task, "--json"]);
    assert_eq!(code, 0, "{released}");

    // An interrupted rotation: the pending key is reused.
    let pending = DeviceKey::generate();
    set_env_value(&home, "BASIS_DEVICE_KEY_NEXT", &pending.expose_secret());
    let (code, resumed) = home.json(&[
        "rotate-key",
        "--env-file",
        home.env_file().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{resumed}");
    assert_eq!(resumed["resumed"], true);
    assert_eq!(
        resumed["key_fingerprint"],
        pending.fingerprint().to_string()
    );
    assert_eq!(home.key(), *pending.expose_secret());

    // Interrupted after the orchestrator took the new key: the rerun only promotes it.
    let current = DeviceKey::parse(&home.key()).unwrap();
    let upcoming = DeviceKey::generate();
    let request = registration(upcoming.public().as_bytes(), Some(&upcoming));
    let auth = RegisterAuth {
        key: Some(&upcoming),
        previous_key: Some(&current),
        ..RegisterAuth::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(client(&orch.url).register_with(&request, auth))
        .unwrap();
    set_env_value(&home, "BASIS_DEVICE_KEY_NEXT", &upcoming.expose_secret());
    let (code, promoted) = home.json(&["rotate-key", "--json"]);
    assert_eq!(code, 0, "{promoted}");
    assert_eq!(promoted["resumed"], true);
    assert_eq!(
        promoted["key_fingerprint"],
        upcoming.fingerprint().to_string()
    );
    assert_eq!(home.key(), *upcoming.expose_secret());

    // The worker restarted with the newest key connects.
    let running = start_and_verify(&home);
    stop(&home);
    drop(running);

    let state = std::fs::read_dir(home.path().join("state/logs"))
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        })
        .into_iter()
        .flatten()
        .collect::<String>();
    for key in [&first, &second, &third, &home.key()] {
        let body = &key["basis_dk_".len()..];
        assert!(!state.contains(body), "a worker log holds a device key");
        for out in [&written, &registered, &rotated, &resumed, &promoted] {
            assert!(!out.to_string().contains(body), "{out}");
        }
    }
}

#[test]
fn a_legacy_token_worker_moves_to_its_device_key_once() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    let token = WorkerToken::generate();
    std::fs::write(
        home.env_file(),
        format!(
            "BASIS_WORKER_ID=cli-box\nBASIS_WORKER_WALLET={WALLET}\nBASIS_WORKER_RUNTIME=echo\n\
             BASIS_WORKER_MODELS=tiny\nBASIS_ORCHESTRATOR_URL={}\nBASIS_WORKER_TOKEN={}\n",
            orch.url,
            token.expose_secret()
        ),
    )
    .unwrap();
    std::fs::set_permissions(home.env_file(), std::fs::Permissions::from_mode(0o600)).unwrap();
    // Registered the old way, by the token's sha256.
    let mut legacy = registration(&[0; 32], None);
    legacy.token_sha256 = token.sha256();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let orchestrator = client(&orch.url);
    runtime
        .block_on(orchestrator.register(&legacy, None, None))
        .unwrap();
    let (code, net) = home.json(&["network", "--json"]);
    assert_eq!(code, 0, "{net}");
    assert_eq!(
        (&net["credential_matches"], &net["legacy"]),
        (&Value::Bool(true), &Value::Bool(true)),
        "{net}"
    );
    assert!(
        net["next_step"]
            .as_str()
            .unwrap()
            .contains("register_worker"),
        "{net}"
    );

    // The first register proves the token once, moves to a new key and drops the token.
    let (code, registered) = home.json(&["register", "--json"]);
    assert_eq!(code, 0, "{registered}");
    assert_eq!(registered["migrated"], true, "{registered}");
    let key = home.key();
    assert_eq!(registered["record"]["key_fingerprint"], fingerprint(&key));
    assert_eq!(env_value(&home, "BASIS_WORKER_TOKEN"), None);
    assert!(!registered.to_string().contains(token.expose_secret()));
    let (code, again) = home.json(&["register", "--json"]);
    assert_eq!(
        (code, &again["migrated"]),
        (0, &Value::Bool(false)),
        "{again}"
    );

    // The token alone is refused from now on: as a bearer on a worker route (401), and as the
    // proof of a token registration.
    let task = post_task(&orch.url, "after the move");
    let id = WorkerId::parse("cli-box").unwrap();
    let task_id = TaskId::parse(&task).unwrap();
    let e = runtime
        .block_on(orchestrator.claim(&task_id, &id, WorkerAuth::Token(&token)))
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert!(!e.to_string().contains(token.expose_secret()));
    let e = runtime
        .block_on(orchestrator.register(&legacy, Some(&token), None))
        .unwrap_err();
    assert_eq!(e.code(), basis::domain::ErrorCode::WorkerIdTaken, "{e}");
    // The key works.
    let (code, claim) = home.json(&["claim", &task, "--json"]);
    assert_eq!(code, 0, "{claim}");
}

#[test]
fn a_device_key_in_any_flag_is_refused_without_echo_and_remote_http_needs_consent() {
    let home = Home::new();
    let key = DeviceKey::generate();
    let text = key.expose_secret();
    let body = &text["basis_dk_".len()..];
    let cases: [&[&str]; 4] = [
        &["write-env", "--wallet", WALLET, "--worker-id", &text],
        &["register", "--models", &text],
        &["write-env", "--ollama-model", &format!("model {}", *text)],
        &["claim", &text],
    ];
    for args in cases {
        let out = home.basis(args);
        let shown = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {shown}");
        assert!(shown.contains("SECRET_REFUSED"), "{shown}");
        assert!(!shown.contains(body), "{args:?} echoed the key: {shown}");
    }
    assert!(!home.env_file().exists(), "nothing written");

    let remote = [
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "gpu-1",
        "--orchestrator-url",
        "http://10.1.2.3:8787",
        "--json",
    ];
    let (code, refused) = home.json(&remote);
    assert_eq!(code, 2, "{refused}");
    assert_eq!(refused["error"]["code"], "INVALID_ARGUMENT");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("in clear")
    );
    let human = human_text(&home.basis(&remote[..remote.len() - 1]));
    assert!(human.contains("--allow-insecure-http"), "{human}");
    let (code, written) = home.json(&[&remote[..], &["--allow-insecure-http"]].concat());
    assert_eq!(code, 0, "{written}");
    assert_eq!(written["orchestrator_url"], "http://10.1.2.3:8787/");
    // Another orchestrator than the file's needs --new-orchestrator; the result names the old.
    let moved = [
        "write-env",
        "--orchestrator-url",
        "https://orch.example",
        "--json",
    ];
    let (code, refused) = home.json(&moved);
    assert_eq!(
        (code, &refused["error"]["code"]),
        (2, &Value::from("INVALID_ARGUMENT"))
    );
    let (code, written) = home.json(&[&moved[..], &["--new-orchestrator"]].concat());
    assert_eq!(code, 0, "{written}");
    assert_eq!(written["previous_orchestrator_url"], "http://10.1.2.3:8787");
}
