//! `basis canary` end to end (docs/CANARY.md): a real orchestrator, supervisor and echo worker,
//! driven through the gateway and the task market; the checklist must pass and print no secret.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::process::Command;

use serde_json::Value;

#[test]
fn the_canary_passes_and_prints_no_secret() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_basis"))
        .args(["canary", "--json"])
        .env("BASIS_HOME", home.path())
        .env("TMPDIR", home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(out.status.code(), Some(0));
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 16);
    assert!(steps.iter().all(|s| s["outcome"] == "passed"));
    // The canary's task steps ran and settled echo work at 0, stated as simulated.
    let settled = steps
        .iter()
        .find(|s| s["name"].as_str().unwrap().starts_with("settled"))
        .unwrap();
    let detail = settled["detail"].as_str().unwrap();
    assert!(
        detail.contains("verifies") && detail.contains("simulated"),
        "{detail}"
    );
    // No 64-hex run (a token or key) anywhere in what the canary printed; hashes carry 0x
    // and are allowed, so strip them first.
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let without_hashes: String = text
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.starts_with("0x"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        !without_hashes
            .split(' ')
            .any(|w| w.len() >= 64 && w.chars().all(|c| c.is_ascii_hexdigit())),
        "a token-like value was printed"
    );
    for prefix in ["basis_client_", "basis_evaluator_"] {
        assert!(
            !without_hashes.contains(prefix),
            "a {prefix} key was printed"
        );
    }
    // The temp dir (orchestrator DB, env file with the token) is gone.
    let left: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("basis-canary-"))
        .collect();
    assert!(left.is_empty(), "canary temp dir left behind");
}

#[test]
fn a_failing_step_fails_the_canary_with_a_non_zero_exit() {
    // An unusable TMPDIR makes the very first action fail: the canary must say so and exit
    // non-zero rather than pass.
    let out = Command::new(env!("CARGO_BIN_EXE_basis"))
        .args(["canary", "--json"])
        .env("TMPDIR", "/nonexistent/basis-canary-test")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["error"]["code"], "IO_ERROR");
}
