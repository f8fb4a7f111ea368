//! Discovery from the worker's host, with the real binary against a real orchestrator:
//! `basis erc8004 prepare` prints the worker's registration file and calldata that decodes
//! (with alloy) to `register(agentURI)` of the given URI; `basis erc8004 link` records the
//! agent id so the file lists it; `basis leaderboard` shows the worker's own rank; no output
//! holds the token.

use alloy_sol_types::{SolCall as _, sol};

use super::*;

sol! {
    function register(string agentURI) external returns (uint256 agentId);
}

const REGISTRY: &str = "0x8004a169fb4a3325136eb29fa0ceb6d2e539a432";

#[test]
fn prepare_link_and_leaderboard_from_the_cli() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    onboard(&home, &orch.url, &[]);
    let token = std::fs::read_to_string(home.env_file())
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("BASIS_WORKER_TOKEN=").map(str::to_owned))
        .unwrap();

    let (code, json) = home.json(&[
        "erc8004",
        "prepare",
        "--registry",
        REGISTRY,
        "--chain-id",
        "8453",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    assert!(!json.to_string().contains(&token), "the token leaked");
    let uri = json["agent_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!("{}/api/workers/cli-box/agent-registration.json", orch.url)
    );
    let tx = &json["transaction"];
    assert_eq!(tx["chain_id"], 8453);
    assert_eq!(tx["to"], "0x8004A169FB4a3325136EB29fA0ceB6D2e539a432");
    assert_eq!(tx["value"], "0");
    let data = hex::decode(tx["data"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    assert_eq!(registerCall::abi_decode(&data).unwrap().agentURI, uri);
    assert_eq!(json["registration"]["agentWallet"], WALLET);
    assert_eq!(json["registration"]["registrations"], serde_json::json!([]));

    let (code, json) = home.json(&[
        "erc8004",
        "link",
        "--agent-id",
        "42",
        "--registry",
        REGISTRY,
        "--chain-id",
        "8453",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        json["registration"]["registrations"],
        serde_json::json!([{
            "agentId": 42,
            "agentRegistry": "eip155:8453:0x8004A169FB4a3325136EB29fA0ceB6D2e539a432"
        }])
    );
    // A half-given registry is refused with a fix, before anything is sent.
    let (code, json) = home.json(&["erc8004", "link", "--agent-id", "1", "--json"]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["error"]["code"], "INVALID_ARGUMENT");

    let (code, json) = home.json(&["leaderboard", "--window", "all", "--json"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["worker_id"], "cli-box");
    assert_eq!(json["you"]["worker_id"], "cli-box");
    assert_eq!(json["you"]["rank"], 1);
    let (code, json) = home.json(&["leaderboard", "--by", "fastest", "--json"]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["error"]["code"], "INVALID_ARGUMENT");
    let out = home.basis(&["leaderboard"]);
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(
        human_text(&out).contains("this worker: rank 1 of 1"),
        "{}",
        all_output(&out)
    );
}
