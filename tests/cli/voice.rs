//! The CLI speaks CLI: its `next:` lines and error fixes name `basis` commands and `--flags`,
//! never MCP tool names or tool arguments; `--json` keeps the tool's exact words.

use super::*;

/// Every MCP tool, and tool arguments that are identifiers.
const TOOL_WORDS: &[&str] = &[
    "check_hardware",
    "write_env",
    "register_worker",
    "network_status",
    "start_worker",
    "stop_worker",
    "worker_status",
    "verify_online",
    "fetch_tasks",
    "claim_task",
    "release_task",
    "execute_task",
    "submit_output",
    "get_submission",
    "dispute_output",
    "verify_output",
    "wait_s",
    "worker_id",
    "env_file",
    "only_matching",
    "multi_task",
    "duration_ms",
    "task_id",
    "submission_id",
];

fn assert_speaks_cli(what: &str, text: &str) {
    for word in TOOL_WORDS {
        let leaked = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == *word);
        assert!(!leaked, "`{what}` shows the tool word {word}:\n{text}");
    }
}

/// Runs `args` in `home`, checks its human text names no tool, returns that text.
fn said(home: &Home, args: &[&str]) -> String {
    let text = human_text(&home.basis(args));
    assert_speaks_cli(&args.join(" "), &text);
    text
}

#[test]
fn next_lines_name_basis_commands_with_the_ids_they_need() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    let written = said(
        &home,
        &[
            "write-env",
            "--wallet",
            WALLET,
            "--worker-id",
            "cli-box",
            "--models",
            "tiny",
            "--orchestrator-url",
            &orch.url,
        ],
    );
    assert!(
        line_with(&written, "next:").contains("`basis register`"),
        "{written}"
    );
    let registered = said(&home, &["register"]);
    let next = line_with(&registered, "next:");
    assert!(
        next.contains("`basis start`") && next.contains("`basis verify`"),
        "{next}"
    );
    assert!(line_with(&said(&home, &["network"]), "next:").contains("`basis start`"));
    assert!(line_with(&said(&home, &["status"]), "next:").contains("`basis start`"));

    let task = post_task(&orch.url, "hello voice");
    let listed = said(&home, &["tasks"]);
    assert!(
        line_with(&listed, "next:").contains("`basis claim TASK_ID`"),
        "{listed}"
    );
    let claimed = said(&home, &["claim", &task]);
    let next = line_with(&claimed, "next:");
    assert!(next.contains(&format!("`basis execute {task}`")), "{next}");
    assert!(next.contains(&format!("`basis submit {task}`")), "{next}");
    let ran = said(&home, &["execute", &task]);
    let next = line_with(&ran, "next:");
    assert!(
        next.contains(&format!("`basis submit {task}`")) && next.contains("--duration-ms"),
        "{next}"
    );
    let submitted = said(&home, &["submit", &task, "--output", "echo: hello voice"]);
    assert!(
        line_with(&submitted, "next:").contains("`basis submission sub-"),
        "{submitted}"
    );

    // --json is the tool's output, word for word.
    let (_, json) = home.json(&["network", "--json"]);
    assert!(
        json["next_step"].as_str().unwrap().contains("start_worker"),
        "{json}"
    );
}

#[test]
fn errors_name_flags_and_the_commands_that_fix_them() {
    let home = Home::new();
    let orch = TestOrchestrator::start(home.path());
    onboard(&home, &orch.url, &[]);
    let first = post_task(&orch.url, "one");
    let second = post_task(&orch.url, "two");

    let text = said(&home, &["verify", "--wait", "400"]);
    assert!(
        line_with(&text, "error[").contains("--wait must be at most 300"),
        "{text}"
    );
    assert!(line_with(&text, "fix:").contains("--wait"), "{text}");

    let text = said(&home, &["write-env", "--worker-id", "GPU_Box"]);
    assert!(
        line_with(&text, "error[").contains("--worker-id must not"),
        "{text}"
    );

    let text = said(&home, &["claim", "task-nope"]);
    assert!(line_with(&text, "fix:").contains("`basis tasks`"), "{text}");

    assert!(home.basis(&["claim", &first]).status.success());
    let text = said(&home, &["claim", &second]);
    let fix = line_with(&text, "fix:");
    assert!(
        line_with(&text, "error[").contains("ACTIVE_CLAIM_EXISTS"),
        "{text}"
    );
    for command in [
        format!("`basis submit {first}`"),
        format!("`basis release {first}`"),
        "`basis register --multi-task`".to_owned(),
    ] {
        assert!(fix.contains(&command), "{command} missing from {fix}");
    }
    let text = said(&home, &["release", &second]);
    let fix = line_with(&text, "fix:");
    assert!(
        fix.contains("`basis claim TASK_ID`") && !fix.contains("POST /api"),
        "{fix}"
    );

    // The orchestrator's own fixes name commands, never raw HTTP.
    let (_, json) = home.json(&["claim", &second, "--json"]);
    let fix = json["error"]["fix"].as_str().unwrap();
    assert!(fix.contains("submit_output (`basis submit"), "{fix}");
    assert!(
        !fix.contains("multi_task.") && !fix.contains("Bearer"),
        "{fix}"
    );

    // A key the orchestrator does not know: the fix names the env file's key.
    let env = std::fs::read_to_string(home.env_file()).unwrap();
    let other = basis::domain::DeviceKey::generate();
    let other = format!("BASIS_DEVICE_KEY={}", *other.expose_secret());
    std::fs::write(
        home.env_file(),
        env.replace(&format!("BASIS_DEVICE_KEY={}", home.key()), &other),
    )
    .unwrap();
    let text = said(&home, &["release", &first]);
    assert!(
        line_with(&text, "error[").contains("WORKER_SIGNATURE_INVALID"),
        "{text}"
    );
    let fix = line_with(&text, "fix:");
    assert!(fix.contains("BASIS_DEVICE_KEY"), "{fix}");
    assert!(
        !fix.contains("Authorization") && !fix.contains("Bearer"),
        "{fix}"
    );
}
