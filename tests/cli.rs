//! The CLI as a user runs it: the real `basis` binary in a temp `BASIS_HOME`, checking exit
//! codes, `--json` output, the env file on disk, and that no secret is ever printed;
//! `basis mcp install` for every client in `mcp_install`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Human output as a newcomer reads it, one file per concern under `tests/cli/`.
mod cli {
    use super::*;

    mod device_key;
    mod discovery;
    mod env_file;
    mod mcp_install;
    mod readable;
    mod register;
    mod verify;
    mod voice;
}

const WALLET_LOWER: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const PRIVATE_KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env_file(&self) -> PathBuf {
        self.path().join("worker.env")
    }

    fn basis(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_basis"))
            .args(args)
            .env("BASIS_HOME", self.path())
            .env_remove("BASIS_ORCHESTRATOR_URL")
            .env_remove("BASIS_CONFIG")
            .current_dir(self.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let out = self.basis(args);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), v)
    }

    /// The device key's text in the env file (the worker's one secret).
    fn key(&self) -> String {
        std::fs::read_to_string(self.env_file())
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("BASIS_DEVICE_KEY=").map(str::to_owned))
            .unwrap()
    }
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn write_env_creates_a_private_file_and_never_prints_the_key() {
    let home = Home::new();
    let out = home.basis(&[
        "write-env",
        "--wallet",
        WALLET_LOWER,
        "--worker-id",
        "gpu-1",
    ]);
    assert!(out.status.success(), "{}", all_output(&out));
    let mode = std::fs::metadata(home.env_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(home.env_file()).unwrap();
    assert!(
        text.contains(&format!("BASIS_WORKER_WALLET={WALLET}")),
        "checksummed"
    );
    assert!(text.contains("BASIS_WORKER_RUNTIME=echo"));
    let key = home.key();
    assert!(key.starts_with("basis_dk_") && key.len() == 52, "{key}");
    assert!(
        !text.contains("BASIS_WORKER_TOKEN"),
        "no token for a new file"
    );
    assert!(!all_output(&out).contains(&key[9..]));
}

#[test]
fn write_env_json_keeps_the_key_on_rewrite() {
    let home = Home::new();
    let (code, first) = home.json(&[
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "gpu-1",
        "--json",
    ]);
    assert_eq!(code, 0);
    assert_eq!(first["created"], true);
    assert_eq!(first["key_kept"], false);
    assert_eq!(first["legacy_token"], false);
    assert_eq!(first["mode"], "0600");
    let key = home.key();
    let (code, second) = home.json(&[
        "write-env",
        "--runtime",
        "ollama",
        "--ollama-model",
        "llama3.1:8b",
        "--json",
    ]);
    assert_eq!(code, 0, "{second}");
    assert_eq!(second["created"], false);
    assert_eq!(second["key_kept"], true);
    assert!(
        second["key_fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("SHA256:")
    );
    assert_eq!(second["key_fingerprint"], first["key_fingerprint"]);
    assert_eq!(second["models"], serde_json::json!(["llama3.1:8b"]));
    assert_eq!(home.key(), key);
    assert!(!second.to_string().contains(&key[9..]));
}

#[test]
fn a_private_key_as_wallet_is_refused_with_its_own_message_and_not_echoed() {
    let home = Home::new();
    for key in [PRIVATE_KEY.to_owned(), format!("0x{PRIVATE_KEY}")] {
        let out = home.basis(&["write-env", "--wallet", &key, "--worker-id", "gpu-1"]);
        assert_eq!(out.status.code(), Some(2));
        let text = all_output(&out);
        assert!(text.contains("PRIVATE_KEY_REFUSED"), "{text}");
        assert!(!text.contains(PRIVATE_KEY));
        let (_, json) = home.json(&["write-env", "--wallet", &key, "--worker-id", "x1", "--json"]);
        assert_eq!(json["error"]["code"], "PRIVATE_KEY_REFUSED");
        assert!(!json.to_string().contains(PRIVATE_KEY));
    }
    assert!(!home.env_file().exists(), "nothing written");
}

#[test]
fn a_mnemonic_in_any_flag_is_refused_without_echo() {
    let home = Home::new();
    let phrase = "legal winner thank year wave sausage worth useful legal winner thank yellow";
    let (code, json) = home.json(&[
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "gpu-1",
        "--ollama-model",
        phrase,
        "--json",
    ]);
    assert_eq!(code, 2);
    assert_eq!(json["error"]["code"], "SECRET_REFUSED");
    assert!(!json.to_string().contains("sausage"));
}

#[test]
fn bad_input_gets_a_code_and_a_fix() {
    let home = Home::new();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "write-env",
                "--wallet",
                "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                "--worker-id",
                "a1",
            ],
            "WALLET_CHECKSUM_MISMATCH",
        ),
        (
            &["write-env", "--wallet", WALLET, "--worker-id", "Bad_Id"],
            "INVALID_WORKER_ID",
        ),
        (
            &[
                "write-env",
                "--wallet",
                WALLET,
                "--worker-id",
                "a1",
                "--runtime",
                "cuda",
            ],
            "UNKNOWN_RUNTIME",
        ),
        (
            &[
                "write-env",
                "--wallet",
                WALLET,
                "--worker-id",
                "a1",
                "--out",
                "/etc/basis.env",
            ],
            "ENV_PATH_NOT_ALLOWED",
        ),
    ];
    for (args, code) in cases {
        let mut args = args.to_vec();
        args.push("--json");
        let (status, json) = home.json(&args);
        assert_eq!(status, 2, "{json}");
        assert_eq!(json["error"]["code"], code, "{json}");
        assert!(json["error"]["fix"].is_string(), "{json}");
    }
}

#[test]
fn hash_prints_keccak256_of_a_file_and_of_stdin() {
    let home = Home::new();
    let file = home.path().join("out.txt");
    std::fs::write(&file, b"hello").unwrap();
    let expected = "0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8";
    let out = home.basis(&["hash", file.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);
    let mut child = Command::new(env!("CARGO_BIN_EXE_basis"))
        .args(["hash", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"hello").unwrap();
    let out = child.wait_with_output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["output_hash"], expected);
    assert_eq!(json["bytes"], 5);
}

#[test]
fn logs_go_to_stderr_and_stdout_stays_clean_for_json() {
    let home = Home::new();
    let out = Command::new(env!("CARGO_BIN_EXE_basis"))
        .args([
            "write-env",
            "--wallet",
            WALLET,
            "--worker-id",
            "gpu-1",
            "--json",
        ])
        .env("BASIS_HOME", home.path())
        .env("RUST_LOG", "trace")
        .current_dir(home.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice::<Value>(&out.stdout).expect("stdout holds only the JSON");
    assert!(!all_output(&out).contains(&home.key()));
}

/// A `basis orchestrator --open` child on 127.0.0.1:0 with its database in `dir`; killed on drop.
struct TestOrchestrator {
    child: std::process::Child,
    url: String,
    db: PathBuf,
}

impl TestOrchestrator {
    fn start(dir: &Path) -> Self {
        use std::io::BufRead;
        let db = dir.join("orchestrator.db");
        let mut child = Command::new(env!("CARGO_BIN_EXE_basis"))
            .args(["orchestrator", "--listen", "127.0.0.1:0", "--open", "--db"])
            .arg(&db)
            .env("BASIS_HOME", dir)
            .env_remove("BASIS_CONFIG")
            .env_remove("BASIS_ORCHESTRATOR_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
        Self { child, url, db }
    }
}

impl Drop for TestOrchestrator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts an inference task (model `tiny` on echo) to the orchestrator at `url`.
fn post_task(url: &str, prompt: &str) -> String {
    post_task_paying(url, prompt, 700)
}

/// [`post_task`] with a reward of `reward` atomic units.
fn post_task_paying(url: &str, prompt: &str, reward: u128) -> String {
    post_task_needing(url, prompt, reward, &[])
}

/// [`post_task_paying`], also requiring the capabilities `more`.
fn post_task_needing(url: &str, prompt: &str, reward: u128, more: &[&str]) -> String {
    use basis::domain::{Amount, OutputFormat};
    use basis::wire::{InputMessage, PostTaskRequest, TaskInput};
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let request = PostTaskRequest {
        description: "echo the prompt".into(),
        criteria: vec!["repeats the prompt".into()],
        required_capabilities: ["runtime:echo", "model:tiny"]
            .iter()
            .chain(more)
            .map(|c| (*c).to_owned())
            .collect(),
        reward: Amount::from_atomic(reward),
        asset: None,
        deadline,
        output_format: OutputFormat::Text,
        claim_ttl_s: None,
        evaluator: None,
        pass_threshold: None,
        input: Some(TaskInput {
            model: "tiny".into(),
            messages: vec![InputMessage {
                role: "user".into(),
                content: prompt.into(),
            }],
            max_tokens: None,
        }),
        min_vram_mib: None,
        family: None,
        metric: None,
    };
    let client = basis::client::OrchestratorClient::new(
        url::Url::parse(url).unwrap(),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let task = runtime.block_on(client.post_task(&request, None)).unwrap();
    task.task_id.to_string()
}

#[test]
fn task_commands_print_the_tools_json_and_exit_with_the_codes_status() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    let (code, _) = home.json(&[
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "cli-box",
        "--runtime",
        "echo",
        "--models",
        "tiny",
        "--orchestrator-url",
        &orch.url,
        "--json",
    ]);
    assert_eq!(code, 0);
    let (code, registered) = home.json(&["register", "--json"]);
    assert_eq!(code, 0, "{registered}");
    let task = post_task(&orch.url, "hello market");

    let (code, page) = home.json(&["tasks", "--matching", "--json"]);
    assert_eq!(code, 0, "{page}");
    assert_eq!(page["tasks"][0]["task_id"], task.as_str());
    assert_eq!(page["tasks"][0]["capabilities_match"], true);
    let human = all_output(&home.basis(&["tasks"]));
    assert!(human.contains(&task) && human.contains("next:"), "{human}");

    let (code, claim) = home.json(&["claim", &task, "--json"]);
    assert_eq!(code, 0, "{claim}");
    assert!(claim["claim_expiry"].as_u64().unwrap() > 0);
    let (code, run) = home.json(&["execute", &task, "--json"]);
    assert_eq!(code, 0, "{run}");
    assert_eq!(run["output"], "echo: hello market");
    let (code, sub) = home.json(&[
        "submit",
        &task,
        "--output",
        "echo: hello market",
        "--prompt-tokens",
        "2",
        "--completion-tokens",
        "3",
        "--json",
    ]);
    assert_eq!(code, 0, "{sub}");
    assert_eq!(sub["output_hash"], run["output_hash"]);
    let id = sub["submission_id"].as_str().unwrap().to_owned();
    let (code, shown) = home.json(&["submission", &id, "--json"]);
    assert_eq!(code, 0, "{shown}");
    assert_eq!(shown["status"], "submitted");
    assert_eq!(shown["output_hash_verified"], true);

    // Without an evaluator key: review works, a verdict is refused (exit 2).
    let (code, review) = home.json(&["evaluate", &id, "--json"]);
    assert_eq!(code, 0, "{review}");
    assert_eq!(review["mode"], "review");
    assert_eq!(review["evaluator_key_configured"], false);
    let verdict = [
        "evaluate", &id, "--score", "90", "--passed", "--reason", "ok", "--json",
    ];
    let (code, refused) = home.json(&verdict);
    assert_eq!(
        (code, &refused["error"]["code"]),
        (2, &Value::from("EVALUATOR_KEY_REQUIRED"))
    );
    // Conflicts with remote state exit 3.
    let (code, refused) = home.json(&["dispute", &id, "--reason", "fine", "--json"]);
    assert_eq!(
        (code, &refused["error"]["code"]),
        (3, &Value::from("NOT_DISPUTABLE"))
    );
    let missing = format!("task-{}", "0".repeat(32));
    let (code, refused) = home.json(&["claim", &missing, "--json"]);
    assert_eq!(
        (code, &refused["error"]["code"]),
        (3, &Value::from("TASK_NOT_FOUND"))
    );
    // A private key pasted as output, labelled, or this host's own device key: refused
    // (exit 2), never echoed.
    for output in [
        format!("private key: 0x{PRIVATE_KEY}"),
        format!("result {}", home.key()),
    ] {
        let out = home.basis(&["submit", &task, "--output", &output, "--json"]);
        assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
        assert!(all_output(&out).contains("SECRET_REFUSED"));
        assert!(!all_output(&out).contains(PRIVATE_KEY));
        assert!(!all_output(&out).contains(&home.key()));
    }
    // A transaction hash is not a key: it passes the guard, and the orchestrator answers
    // (this task already has its submission).
    let tx = "0x88df016429689c079f3b2f6ad39fa052532c56795b733da78a91ebe6a713944b";
    let (_, answer) = home.json(&["submit", &task, "--output", &format!("tx {tx}"), "--json"]);
    assert_ne!(answer["error"]["code"], "SECRET_REFUSED", "{answer}");
    // A file from outside the work directory: refused (exit 2), never read.
    let out = home.basis(&["submit", &task, "--output-file", "/etc/passwd", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(all_output(&out).contains("OUTPUT_FILE_NOT_ALLOWED"));
    assert!(!all_output(&out).contains("root:"));

    evaluate_with_a_key(&home, &orch, &verdict);
}

/// With the evaluator key in an env file, `verdict` is posted and settles the task; the key
/// is never printed.
fn evaluate_with_a_key(home: &Home, orch: &TestOrchestrator, verdict: &[&str]) {
    let keys = Command::new(env!("CARGO_BIN_EXE_basis"))
        .args([
            "orchestrator",
            "keys",
            "create",
            "--role",
            "evaluator",
            "--db",
        ])
        .arg(&orch.db)
        .env_remove("BASIS_ORCHESTRATOR_CONFIG")
        .output()
        .unwrap();
    let key = String::from_utf8(keys.stdout).unwrap().trim().to_owned();
    let env = home.path().join("evaluator.env");
    std::fs::write(
        &env,
        format!(
            "BASIS_ORCHESTRATOR_URL={}\nBASIS_EVALUATOR_KEY={key}\n",
            orch.url
        ),
    )
    .unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut with_key = verdict.to_vec();
    with_key.extend(["--env", env.to_str().unwrap()]);
    let out = home.basis(&with_key);
    let settled: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{settled}");
    assert_eq!(settled["status"], "completed");
    assert_eq!(settled["credit"]["unpaid"], "simulated");
    assert!(!all_output(&out).contains(&key));
    assert!(!all_output(&out).contains(&home.key()));
}

#[test]
fn no_flag_or_clap_error_echoes_a_secret() {
    let home = Home::new();
    let pem = "-----BEGIN RSA PRIVATE KEY-----MIIEpAIBAAKCAQEA";
    let phrase = "legal winner thank year wave sausage worth useful legal winner thank yellow";
    let db = home.path().join(PRIVATE_KEY);
    let cases: Vec<Vec<String>> = vec![
        vec![pem.into()],
        vec!["write-env".into(), pem.into()],
        vec!["logs".into(), "-n".into(), PRIVATE_KEY.into()],
        vec!["hash".into(), PRIVATE_KEY.into()],
        vec!["--config".into(), format!("/tmp/{PRIVATE_KEY}")],
        vec![
            "orchestrator".into(),
            "--db".into(),
            db.display().to_string(),
        ],
        vec![
            "write-env".into(),
            "--models".into(),
            phrase.replace(' ', ","),
        ],
        vec![
            "write-env".into(),
            "--models".into(),
            "legal-winner-thank-year-wave-sausage".into(),
            "--models".into(),
            "worth-useful-legal-winner-thank-yellow".into(),
        ],
    ];
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = home.basis(&args);
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(text.contains("SECRET_REFUSED"), "{args:?}: {text}");
        for secret in [PRIVATE_KEY, "MIIEpAIBAAKCAQEA", "sausage"] {
            assert!(!text.contains(secret), "{args:?} echoed it: {text}");
        }
    }
    assert!(!db.exists(), "a file was named after the secret");
}

/// `write-env` (echo runtime, model `tiny`, worker `cli-box`, pointed at `url`) with `extra`
/// flags, then `register`; panics unless both succeed.
fn onboard(home: &Home, url: &str, extra: &[&str]) {
    let mut args = vec![
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "cli-box",
        "--models",
        "tiny",
        "--orchestrator-url",
        url,
    ];
    args.extend(extra);
    let out = home.basis(&args);
    assert!(out.status.success(), "{}", all_output(&out));
    let out = home.basis(&["register"]);
    assert!(out.status.success(), "{}", all_output(&out));
}

/// A URL on 127.0.0.1 where nothing listens (a port that was free a moment ago).
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// What a person reads: stdout, and stderr's `error[…]` and `fix:` lines (not log lines).
fn human_text(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error[") || l.trim_start().starts_with("fix:"))
        .collect();
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        problems.join("\n")
    )
}

/// The line of `text` that starts with `prefix` (after indentation).
fn line_with<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"))
}

#[test]
fn a_loose_env_file_is_refused_with_the_chmod_fix_and_no_key() {
    let home = Home::new();
    let out = home.basis(&["write-env", "--wallet", WALLET, "--worker-id", "gpu-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let key = home.key();
    std::fs::set_permissions(home.env_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, json) = home.json(&["write-env", "--runtime", "echo", "--json"]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["error"]["code"], "ENV_FILE_INSECURE");
    assert!(json["error"]["fix"].as_str().unwrap().contains("chmod 600"));
    assert!(!json.to_string().contains(&key[9..]));
    let mode = std::fs::metadata(home.env_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644, "a refused file is left as it was");
}
