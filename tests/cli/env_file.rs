//! The env file under concurrent writers: `basis write-env` and `basis register` processes
//! started together on a fresh home all end with the one token the file keeps, which is the
//! one the orchestrator registered.

use super::*;

use basis::domain::WorkerToken;

/// The token's fingerprint as the commands print it.
fn fingerprint(token: &str) -> String {
    WorkerToken::parse(token).unwrap().fingerprint().to_string()
}

#[test]
fn racing_write_env_and_register_processes_keep_one_token() {
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
        let token = {
            let outputs: Vec<(bool, Output)> = children
                .into_iter()
                .map(|(register, child)| (register, child.wait_with_output().unwrap()))
                .collect();
            let kept = fingerprint(&home.token());
            for (register, out) in &outputs {
                assert!(out.status.success(), "round {round}: {}", all_output(out));
                let json: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(
                    json["token_fingerprint"], kept,
                    "round {round}: a process reported a token the file does not keep: {json}"
                );
                if *register {
                    assert_eq!(json["record"]["token_fingerprint"], kept, "{json}");
                }
            }
            kept
        };
        // The orchestrator holds that token: a register now proves possession of it.
        let (code, json) = home.json(&["register", "--json"]);
        assert_eq!(code, 0, "{json}");
        assert_eq!(json["record"]["token_fingerprint"], token);
        assert_eq!(json["created"], false);
        let lock = home.path().join("worker.env.lock");
        assert_eq!(
            std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
