//! The env file's writes: `basis write-env` and `basis register` processes started together on
//! a fresh home all end with the one device key the file keeps, which is the one the
//! orchestrator registered; and `--out` onto a file that is not a worker env file leaves it as it was
//! unless `--force` is given.

use super::*;

use basis::domain::DeviceKey;

/// The key's fingerprint as the commands print it.
fn fingerprint(key: &str) -> String {
    DeviceKey::parse(key).unwrap().fingerprint().to_string()
}

#[test]
fn racing_write_env_and_register_processes_keep_one_key() {
    for round in 0..3 {
        let home = Home::new();
        let orch = TestOrchestrator::start(home.path());
        let base = [
            "--wallet",
            WALLET,
            "--worker-id",
            "race-box",
            "--orchestrator-url",
            &orch.url,
            "--json",
        ];
        let children: Vec<(bool, std::process::Child)> = (0..8)
            .map(|i| {
                // One register: two racing registrations of a new id are the orchestrator's own race.
                let register = i == 3;
                let command = if register { "register" } else { "write-env" };
                let child = Command::new(env!("CARGO_BIN_EXE_basis"))
                    .arg(command)
                    .args(base)
                    .env("BASIS_HOME", home.path())
                    .env_remove("BASIS_ORCHESTRATOR_URL")
                    .env_remove("BASIS_CONFIG")
                    .current_dir(home.path())
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (register, child)
            })
            .collect();
        let key = {
            let outputs: Vec<(bool, Output)> = children
                .into_iter()
                .map(|(register, child)| (register, child.wait_with_output().unwrap()))
                .collect();
            let kept = fingerprint(&home.key());
            for (register, out) in &outputs {
                assert!(out.status.success(), "round {round}: {}", all_output(out));
                let json: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(
                    json["key_fingerprint"], kept,
                    "round {round}: a process reported a key the file does not keep: {json}"
                );
                if *register {
                    assert_eq!(json["record"]["key_fingerprint"], kept, "{json}");
                }
            }
            kept
        };
        // The orchestrator holds that key: a register now proves possession of it.
        let (code, json) = home.json(&["register", "--json"]);
        assert_eq!(code, 0, "{json}");
        assert_eq!(json["record"]["key_fingerprint"], key);
        assert_eq!(json["created"], false);
        let lock = home.path().join("worker.env.lock");
        assert_eq!(
            std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn out_onto_a_file_that_is_not_a_worker_env_file_is_refused_unless_forced() {
    let home = Home::new();
    let bashrc = home.path().join(".bashrc");
    let original = "# ~/.bashrc\nexport PATH=\"$HOME/.local/bin:$PATH\"\nBASIS_WORKER_ID=x1\n";
    // 0600, as the old code needed to read it (and then rewrote it), and 0644, where the
    // refusal must be this one, not a chmod 600 fix.
    for mode in [0o600, 0o644] {
        std::fs::write(&bashrc, original).unwrap();
        std::fs::set_permissions(&bashrc, std::fs::Permissions::from_mode(mode)).unwrap();
        let args = [
            "write-env",
            "--wallet",
            WALLET,
            "--worker-id",
            "gpu-1",
            "--out",
            ".bashrc",
        ];
        let (code, json) = home.json(&[&args[..], &["--json"]].concat());
        assert_eq!(code, 2, "{json}");
        assert_eq!(json["error"]["code"], "ENV_FILE_FOREIGN", "{json}");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains(".bashrc")
        );
        assert_eq!(std::fs::read(&bashrc).unwrap(), original.as_bytes());
        let meta = std::fs::metadata(&bashrc).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode);
        assert!(!home.path().join(".bashrc.lock").exists());
        let human = human_text(&home.basis(&args));
        assert!(human.contains("`basis write-env --force`"), "{human}");
    }

    let (code, json) = home.json(&[
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "gpu-1",
        "--out",
        ".bashrc",
        "--force",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        (&json["created"], &json["key_kept"]),
        (&Value::Bool(false), &Value::Bool(false))
    );
    let written = std::fs::read_to_string(&bashrc).unwrap();
    assert!(!written.contains("PATH"), "{written}");
    assert!(written.contains("BASIS_DEVICE_KEY="));
    let mode = std::fs::metadata(&bashrc).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The default env file and a missing --out need no force.
    let (code, json) = home.json(&[
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "gpu-1",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    let (code, json) = home.json(&[
        "write-env",
        "--out",
        "other.env",
        "--wallet",
        WALLET,
        "--worker-id",
        "gpu-1",
        "--json",
    ]);
    assert_eq!((code, &json["created"]), (0, &Value::Bool(true)), "{json}");
}

#[test]
fn capacity_and_fallback_urls_are_written_kept_and_cleared() {
    let home = Home::new();
    let base = ["write-env", "--wallet", WALLET, "--worker-id", "gpu-1"];
    // A new echo worker: its runtime's default capacity, no fallbacks.
    let (code, json) = home.json(&[&base[..], &["--json"]].concat());
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["capacity"], 16);
    assert_eq!(json["fallback_orchestrator_urls"], serde_json::json!([]));
    let (code, json) = home.json(&[
        "write-env",
        "--capacity",
        "3",
        "--fallback-url",
        "http://10.0.0.2:8787",
        "--fallback-url",
        "https://orch-c.example/",
        // The first replica is plain http on the LAN: a deliberate choice.
        "--allow-insecure-http",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["capacity"], 3);
    assert_eq!(
        json["fallback_orchestrator_urls"],
        serde_json::json!(["http://10.0.0.2:8787", "https://orch-c.example"])
    );
    let file = std::fs::read_to_string(home.env_file()).unwrap();
    assert!(file.contains("BASIS_WORKER_CAPACITY=3\n"), "{file}");
    assert!(
        file.contains(
            "BASIS_ORCHESTRATOR_FALLBACK_URLS=http://10.0.0.2:8787,https://orch-c.example\n"
        ),
        "{file}"
    );
    // Another rewrite keeps both; the human output says them.
    let human = human_text(&home.basis(&["write-env", "--multi-task"]));
    assert!(
        human.contains("runs up to 3 gateway jobs at once"),
        "{human}"
    );
    assert!(
        human.contains("fails over to http://10.0.0.2:8787"),
        "{human}"
    );
    // Out of range is refused with the range, and nothing changes.
    let (code, json) = home.json(&["write-env", "--capacity", "0", "--json"]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["error"]["code"], "INVALID_ARGUMENT");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 to 256")
    );
    let file = std::fs::read_to_string(home.env_file()).unwrap();
    assert!(file.contains("BASIS_WORKER_CAPACITY=3\n"), "{file}");
    // An empty --fallback-url= removes the fallbacks.
    let (code, json) = home.json(&["write-env", "--fallback-url=", "--json"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["fallback_orchestrator_urls"], serde_json::json!([]));
    let file = std::fs::read_to_string(home.env_file()).unwrap();
    assert!(!file.contains("BASIS_ORCHESTRATOR_FALLBACK_URLS"), "{file}");
    assert!(file.contains("BASIS_WORKER_CAPACITY=3\n"), "{file}");
}

#[test]
fn labels_are_written_registered_and_matched() {
    let home = Home::new();
    let orch = crate::TestOrchestrator::start(home.path());
    let (code, json) = home.json(&[
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "labelled",
        "--label",
        "region=eu",
        "--label",
        "tier:gold",
        "--runtime",
        "echo",
        "--models",
        "tiny",
        "--orchestrator-url",
        &orch.url,
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        json["labels"],
        serde_json::json!(["region=eu", "tier:gold"])
    );
    let file = std::fs::read_to_string(home.env_file()).unwrap();
    assert!(
        file.contains("BASIS_WORKER_LABELS=region=eu,tier:gold\n"),
        "{file}"
    );
    // A malformed label is refused and the file keeps its labels.
    let (code, json) = home.json(&["write-env", "--label", "Bad Label", "--json"]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["error"]["code"], "INVALID_ARGUMENT");
    let (code, registered) = home.json(&["register", "--json"]);
    assert_eq!(code, 0, "{registered}");
    // Registered: the orchestrator's view of this worker, labels included.
    let (code, page) = home.json(&["tasks", "--json"]);
    assert_eq!(code, 0, "{page}");
    let caps = page["worker_capabilities"].to_string();
    assert!(
        caps.contains("label:region=eu")
            && caps.contains("label:tier:gold")
            && (caps.contains("cpu-only") || caps.contains("\"gpu\"")),
        "{caps}"
    );
    // Shown only what it can claim: a task needing another label is left out (`--all` lists
    // it, marked with what is missing).
    let eu = crate::post_task_needing(&orch.url, "eu", 900, &["label:region=eu"]);
    let us = crate::post_task_needing(&orch.url, "us", 800, &["label:region=us"]);
    let ids = |page: &Value| -> Vec<String> {
        page["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["task_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, page) = home.json(&["tasks", "--json"]);
    assert_eq!(ids(&page), std::slice::from_ref(&eu), "{page}");
    let (_, page) = home.json(&["tasks", "--all", "--json"]);
    assert_eq!(ids(&page), [eu, us], "{page}");
    assert_eq!(
        page["tasks"][1]["missing_capabilities"],
        serde_json::json!(["label:region=us"])
    );
    // `--label=` alone removes them.
    let (code, json) = home.json(&["write-env", "--label=", "--json"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["labels"], serde_json::json!([]));
}
