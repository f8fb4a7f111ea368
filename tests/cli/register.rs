//! `basis register`: a new orchestrator URL is saved only once that orchestrator answered,
//! and `--multi-task` goes from the flag through the env file to the orchestrator, which then
//! lets the worker hold several claims.

use super::*;

fn saved_url(home: &Home) -> String {
    std::fs::read_to_string(home.env_file())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("BASIS_ORCHESTRATOR_URL=").map(str::to_owned))
        .unwrap()
}

#[test]
fn a_new_orchestrator_url_is_saved_only_once_it_answered() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    onboard(&home, &orch.url, &[]);
    assert_eq!(saved_url(&home), orch.url);

    let dead = dead_url();
    // Another orchestrator is a deliberate change: refused without --new-orchestrator.
    let (code, json) = home.json(&["register", "--orchestrator-url", &dead, "--json"]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["error"]["code"], "INVALID_ARGUMENT", "{json}");
    assert!(
        json["error"]["fix"]
            .as_str()
            .unwrap()
            .contains("new_orchestrator")
    );
    let (code, json) = home.json(&[
        "register",
        "--orchestrator-url",
        &dead,
        "--new-orchestrator",
        "--json",
    ]);
    assert_eq!(code, 1, "{json}");
    assert_eq!(json["error"]["code"], "ORCHESTRATOR_UNREACHABLE");
    assert_eq!(
        saved_url(&home),
        orch.url,
        "an unreachable URL replaced a working one"
    );

    // The same orchestrator under another name answers: now it is saved.
    let other = orch.url.replace("127.0.0.1", "localhost");
    let (code, json) = home.json(&[
        "register",
        "--orchestrator-url",
        &other,
        "--new-orchestrator",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(saved_url(&home), other);
    assert_eq!(
        json["previous_orchestrator_url"],
        orch.url.as_str(),
        "{json}"
    );
}

#[test]
fn multi_task_goes_from_the_flag_to_the_orchestrator_and_allows_several_claims() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    onboard(&home, &orch.url, &[]);
    let first = post_task(&orch.url, "one");
    let second = post_task(&orch.url, "two");
    assert!(home.basis(&["claim", &first]).status.success());
    let (code, _) = home.json(&["claim", &second, "--json"]);
    assert_eq!(code, 3, "one claim at a time by default");

    let (code, json) = home.json(&["register", "--multi-task", "--json"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["record"]["multi_task"], true, "{json}");
    let env = std::fs::read_to_string(home.env_file()).unwrap();
    assert!(env.contains("\nBASIS_WORKER_MULTI_TASK=true\n"), "{env}");
    let (code, json) = home.json(&["claim", &second, "--json"]);
    assert_eq!(code, 0, "{json}");

    let (code, json) = home.json(&["register", "--multi-task=false", "--json"]);
    assert_eq!(
        (code, &json["record"]["multi_task"]),
        (0, &Value::Bool(false))
    );
}
