//! Discovery from the worker's host, with the real binary against a real orchestrator:
//! `basis erc8004 prepare` prints the worker's registration file and calldata that decodes
//! (with alloy) to `register(agentURI)` of the given URI; `basis erc8004 link` records the
//! agent id so the file lists it; `basis leaderboard` shows the worker's own rank; no output
//! holds the device key.

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
    let token = home.key();

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
    assert!(!json.to_string().contains(&token[9..]), "the key leaked");
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

sol! {
    function giveFeedback(
        uint256 agentId,
        int128 value,
        uint8 valueDecimals,
        string tag1,
        string tag2,
        string endpoint,
        string feedbackURI,
        bytes32 feedbackHash
    ) external;
}

/// An evaluated submission becomes a feedback payload whose `feedbackHash` is the
/// attestation hash (recomputed from the evaluation it carries), and a `giveFeedback` call
/// for the worker's agent id that decodes back to the payload.
#[test]
fn an_evaluation_exports_as_erc8004_feedback() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    onboard(&home, &orch.url, &[]);
    let task = post_task(&orch.url, "hello feedback");
    assert_eq!(home.json(&["claim", &task, "--json"]).0, 0);
    let (code, sent) = home.json(&["submit", &task, "--output", "hello back", "--json"]);
    assert_eq!(code, 0, "{sent}");
    let sub = sent["submission_id"].as_str().unwrap().to_owned();
    // Not evaluated yet: nothing to export.
    let (code, json) = home.json(&["erc8004", "feedback", &sub, "--json"]);
    assert_eq!(
        (code, json["error"]["code"].as_str()),
        (2, Some("INVALID_ARGUMENT")),
        "{json}"
    );
    evaluate_with_a_key(
        &home,
        &orch,
        &[
            "evaluate", &sub, "--score", "88", "--passed", "--reason", "fine", "--json",
        ],
    );
    let (code, json) = home.json(&[
        "erc8004",
        "link",
        "--agent-id",
        "9",
        "--registry",
        REGISTRY,
        "--chain-id",
        "8453",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    let (code, json) = home.json(&[
        "erc8004",
        "feedback",
        &sub,
        "--reputation-registry",
        "0x8004baa17c55a88189ae136b182e5fda19de9b63",
        "--chain-id",
        "8453",
        "--json",
    ]);
    assert_eq!(code, 0, "{json}");
    let f = &json["feedback"];
    assert_eq!(
        (f["value"].as_u64(), f["tag1"].as_str()),
        (Some(88), Some("basis-task"))
    );
    assert_eq!(
        (f["agentId"].as_u64(), f["tag2"].as_str()),
        (Some(9), Some("passed"))
    );
    let evaluation: basis::domain::Evaluation =
        serde_json::from_value(f["evaluation"].clone()).unwrap();
    let hash = evaluation.attestation_hash().unwrap().to_string();
    assert_eq!(f["feedbackHash"], hash.as_str());
    let tx = &json["transaction"];
    assert_eq!(tx["to"], "0x8004BAa17C55a88189AE136b182e5fdA19dE9b63");
    let data = hex::decode(tx["data"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let call = giveFeedbackCall::abi_decode(&data).unwrap();
    assert_eq!(call.agentId, alloy_primitives::U256::from(9));
    assert_eq!((call.value, call.valueDecimals), (88, 0));
    assert_eq!(call.feedbackURI, f["feedbackURI"].as_str().unwrap());
    assert_eq!(format!("{}", call.feedbackHash), hash);
    assert!(
        !json.to_string().contains(&home.key()[9..]),
        "the key leaked"
    );
}

/// `basis rewards verify FILE` accepts a batch file as built, and names what is wrong once a
/// payout is changed.
#[test]
fn a_batch_file_verifies_offline_and_a_changed_payout_does_not() {
    use std::str::FromStr as _;

    use alloy_primitives::{Address, U256};
    use basis::domain::{BatchDomain, BatchHeader, WalletAddress, build_batch_file};
    let home = Home::new();
    let header = BatchHeader {
        batch_id: 3,
        period_start: 1_796_200_000,
        period_end: 1_796_286_400,
        asset: "USDC".into(),
        token: Address::from_str("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913").unwrap(),
        domain: BatchDomain {
            name: "basis settlement".into(),
            version: "1".into(),
            chain_id: 8453,
            verifying_contract: Address::from_str(REGISTRY).unwrap(),
        },
    };
    let payouts = [
        (WalletAddress::parse(WALLET).unwrap(), U256::from(975_000)),
        (
            WalletAddress::parse("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359").unwrap(),
            U256::from(25_000),
        ),
    ];
    let mut file = serde_json::to_value(build_batch_file(&header, &payouts).unwrap()).unwrap();
    let path = home.path().join("batch-3.json");
    std::fs::write(&path, file.to_string()).unwrap();
    let (code, json) = home.json(&["rewards", "verify", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(
        (json["leaves"].as_u64(), json["total"].as_str()),
        (Some(2), Some("1000000"))
    );
    file["leaves"][1]["amount"] = "250000".into();
    std::fs::write(&path, file.to_string()).unwrap();
    let (code, json) = home.json(&["rewards", "verify", path.to_str().unwrap(), "--json"]);
    assert_eq!(code, 3, "{json}");
    assert_eq!(json["error"]["code"], "BATCH_INVALID");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("leaf 2"),
        "{json}"
    );
}
