//! Human output reads as a person expects: amounts in whole units, times as dates, states in
//! words, a refused worker id with exactly its fault and a valid form of it.

use super::*;

/// `YYYY-MM-DDTHH:MM:SSZ (in …)` somewhere in `line`.
fn has_date_and_distance(line: &str) -> bool {
    let Some(z) = line.find("Z (") else {
        return false;
    };
    let date = &line[..z];
    let rfc = date.len() >= 19 && date.as_bytes()[date.len() - 9] == b'T';
    rfc && (line[z..].starts_with("Z (in ") || line[z..].contains(" ago)"))
}

#[test]
fn amounts_show_whole_units_and_json_keeps_atomic_ones() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    onboard(&home, &orch.url, &[]);
    for reward in [1_000_000, 250_000, 700] {
        post_task_paying(&orch.url, "pay me", reward);
    }
    let out = home.basis(&["tasks"]);
    let text = human_text(&out);
    for shown in ["  1 USDC  ", "  0.25 USDC  ", "  0.0007 USDC  "] {
        assert!(text.contains(shown), "{shown:?} missing:\n{text}");
    }
    assert!(!text.contains("1000000"), "{text}");
    let (_, json) = home.json(&["tasks", "--json"]);
    assert_eq!(json["tasks"][0]["reward"], "1000000", "{json}");
    assert_eq!(json["tasks"][0]["asset_decimals"], 6, "{json}");
}

#[test]
fn times_show_as_dates_with_how_far_away() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    onboard(&home, &orch.url, &[]);
    let task = post_task(&orch.url, "when");
    let out = home.basis(&["claim", &task]);
    let text = human_text(&out);
    let line = line_with(&text, "claimed");
    assert!(has_date_and_distance(line), "{line}");
    let (_, shown) = home.json(&["tasks", "--status", "claimed", "--json"]);
    let expiry = shown["tasks"][0]["claim_expiry"].as_u64().unwrap();
    assert!(
        !text.contains(&expiry.to_string()),
        "raw unix seconds:\n{text}"
    );

    let out = home.basis(&["submit", &task, "--output", "echo: when"]);
    let text = human_text(&out);
    let line = line_with(&text, "evaluation due by:");
    assert!(has_date_and_distance(line), "{line}");
    assert!(line.contains("(in 1 d)"), "{line}");
}

#[test]
fn a_bad_worker_id_is_told_exactly_what_is_wrong_and_a_valid_form() {
    let home = Home::new();
    let out = home.basis(&["write-env", "--wallet", WALLET, "--worker-id", "GPU_Box"]);
    assert_eq!(out.status.code(), Some(2));
    let text = human_text(&out);
    let error = line_with(&text, "error[INVALID_WORKER_ID]");
    assert!(error.contains("uppercase letters or '_'"), "{error}");
    assert!(
        !error.contains("characters)") && !error.contains("long"),
        "{error}"
    );
    assert!(line_with(&text, "fix:").contains("\"gpu-box\""), "{text}");

    let out = home.basis(&["write-env", "--wallet", WALLET, "--worker-id=-gpu"]);
    let text = human_text(&out);
    let error = line_with(&text, "error[INVALID_WORKER_ID]");
    assert!(
        error.contains("start with a lowercase letter or digit"),
        "{error}"
    );
    assert!(
        !error.contains("uppercase") && !error.contains("long"),
        "{error}"
    );
    assert!(line_with(&text, "fix:").contains("\"gpu\""), "{text}");
}

#[test]
fn states_read_as_words_not_rust_names() {
    let home = Home::new();
    let url = dead_url();
    let out = home.basis(&[
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "cli-box",
        "--orchestrator-url",
        &url,
    ]);
    assert!(out.status.success(), "{}", all_output(&out));
    let text = human_text(&home.basis(&["verify"]));
    assert!(text.contains("the supervisor is not running"), "{text}");
    for debug in ["NotRunning", "Running", "Stopped", "Online", "Backoff"] {
        assert!(!text.contains(debug), "{debug} in:\n{text}");
    }
}
