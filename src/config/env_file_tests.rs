//! Tests of the `worker.env` format: parsing, rendering, merging and redaction.

use super::*;
use crate::domain::DEVICE_KEY_PREFIX;
use crate::domain::{DeviceKey, Problem, Runtime, WalletAddress, WorkerId, WorkerToken};
use secrecy::ExposeSecret;

pub(super) const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

pub(super) fn full_env() -> WorkerEnv {
    WorkerEnv {
        worker_id: Some(WorkerId::parse("gpu-box-1").unwrap()),
        wallet: Some(WalletAddress::parse(WALLET).unwrap()),
        runtime: Some(Runtime::Ollama),
        models: vec!["llama3.2:3b".into(), "qwen2.5:7b".into()],
        ollama_model: Some("llama3.2:3b".into()),
        ollama_url: Some("http://127.0.0.1:11434".parse().unwrap()),
        vllm_url: Some("http://10.0.0.2:8000/v1".parse().unwrap()),
        orchestrator_url: Some("https://orch.example".parse().unwrap()),
        token: Some(WorkerToken::generate()),
        device_key: Some(DeviceKey::generate()),
        device_key_next: Some(DeviceKey::generate()),
        evaluator_key: Some(secrecy::SecretString::from(format!(
            "basis_evaluator_{}",
            "e7".repeat(32)
        ))),
        multi_task: Some(true),
        fallback_urls: vec![
            "https://orch-b.example".parse().unwrap(),
            "https://orch-c.example:8787".parse().unwrap(),
        ],
        capacity: Some(12),
        labels: vec!["region=eu".into(), "tier:gold".into()],
        extra: vec![
            ("CUDA_VISIBLE_DEVICES".into(), "0,1".into()),
            ("GREETING".into(), "hello world".into()),
            ("QUOTED".into(), "it's \"x\" $HOME \\ `y`".into()),
            ("EMPTY".into(), String::new()),
        ],
    }
}

pub(super) fn secret(env: &WorkerEnv) -> String {
    env.token.as_ref().unwrap().expose_secret().to_owned()
}

#[test]
fn multi_task_is_true_false_or_absent() {
    let env = WorkerEnv::parse("BASIS_WORKER_MULTI_TASK=true\n").unwrap();
    assert_eq!(env.multi_task, Some(true));
    assert!(env.render().contains("\nBASIS_WORKER_MULTI_TASK=true\n"));
    assert_eq!(WorkerEnv::parse("").unwrap().multi_task, None);
    assert!(WorkerEnv::parse("BASIS_WORKER_MULTI_TASK=yes\n").is_err());
}

#[test]
fn ensure_token_generates_when_absent() {
    let mut env = WorkerEnv::default();
    assert!(env.ensure_token());
    assert!(env.token.is_some());
}

#[test]
fn ensure_device_key_generates_when_absent_and_keeps_one() {
    let mut env = WorkerEnv::default();
    assert!(env.ensure_device_key());
    let fingerprint = env.device_key.as_ref().unwrap().fingerprint();
    assert!(!env.ensure_device_key(), "an existing key is kept");
    assert_eq!(env.device_key.as_ref().unwrap().fingerprint(), fingerprint);
    assert!(env.token.is_none(), "no token for a new file");
}

/// The device keys round-trip, are kept by a merge that does not name them, and appear in
/// Debug, masked and parse errors only as their fingerprints.
#[test]
fn device_keys_round_trip_and_are_never_shown() {
    let env = full_env();
    let key = env.device_key.as_ref().unwrap();
    let next = env.device_key_next.as_ref().unwrap();
    let (text_key, text_next) = (key.expose_secret(), next.expose_secret());
    let text = env.render();
    assert!(text.contains(&format!("\nBASIS_DEVICE_KEY={}\n", *text_key)));
    assert!(text.contains(&format!("\nBASIS_DEVICE_KEY_NEXT={}\n", *text_next)));
    assert!(text.contains("BASIS_DEVICE_KEY, the worker's private key"));
    let back = WorkerEnv::parse(&text).unwrap();
    assert_eq!(back.device_key.as_ref().unwrap().public(), key.public());
    assert_eq!(
        back.device_key_next.as_ref().unwrap().public(),
        next.public()
    );
    let mut merged = back.clone();
    merged.merge(WorkerEnv::default());
    assert_eq!(merged.device_key.unwrap().public(), key.public());
    assert_eq!(merged.device_key_next.unwrap().public(), next.public());
    let body = &text_key[DEVICE_KEY_PREFIX.len()..];
    for shown in [format!("{env:?}"), format!("{env:#?}"), env.masked()] {
        assert!(!shown.contains(body), "{shown}");
        assert!(
            !shown.contains(&text_next[DEVICE_KEY_PREFIX.len()..]),
            "{shown}"
        );
        assert!(shown.contains(key.fingerprint().as_str()), "{shown}");
    }
    assert!(env.masked().contains(&format!(
        "BASIS_DEVICE_KEY=<redacted, fingerprint {}>",
        key.fingerprint()
    )));
    let cut = &text_key[..text_key.len() - 1];
    for bad in [
        cut.to_owned(),
        format!("{}x", *text_key),
        text_key.replace("basis_dk_", ""),
    ] {
        let err = WorkerEnv::parse(&format!("A=1\nBASIS_DEVICE_KEY={bad}\n")).unwrap_err();
        let shown = format!("{err} {err:?}");
        let shown = format!("{shown} {:?}", Problem::from(err));
        assert!(!shown.contains(&body[..20]), "{shown}");
        assert!(
            shown.contains("line 2") && shown.contains("BASIS_DEVICE_KEY"),
            "{shown}"
        );
    }
}

#[test]
fn round_trips_through_parse() {
    let env = full_env();
    let text = env.render();
    let back = WorkerEnv::parse(&text).unwrap();
    assert_eq!(back.render(), text);
    assert!(
        back.token
            .as_ref()
            .unwrap()
            .ct_eq(env.token.as_ref().unwrap())
    );
    assert_eq!(back.extra, env.extra);
    assert_eq!(back.models, env.models);
    assert_eq!(back.vllm_url, env.vllm_url);
    // Plain KEY=value lines for the known keys: no quotes, no export.
    assert!(text.contains("\nBASIS_WORKER_WALLET=0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n"));
    assert!(text.contains("\nOLLAMA_URL=http://127.0.0.1:11434\n"));
    assert!(text.contains("\nBASIS_WORKER_MODELS=llama3.2:3b,qwen2.5:7b\n"));
    assert!(
        text.contains("\nGREETING=hello world\n"),
        "inner spaces need no quotes"
    );
    assert!(text.contains("\nEMPTY=\n"));
    assert!(
        text.contains(r#"QUOTED="it's \"x\" \$HOME \\ \`y\`""#),
        "{text}"
    );
    assert!(text.starts_with("# "));
    assert!(text.contains("0600"));
    // The default (empty) env renders to the header only and parses back empty.
    let empty = WorkerEnv::parse(&WorkerEnv::default().render()).unwrap();
    assert!(empty.keys().is_empty());
}

#[test]
fn parse_accepts_dotenv_forms() {
    let token = WorkerToken::generate();
    let text = format!(
        "\u{feff}# comment\r\n\r\n  export BASIS_WORKER_WALLET={}\r\nBASIS_WORKER_RUNTIME=\"vllm\" # trailing\n\
         BASIS_WORKER_TOKEN='{}'\nBASIS_WORKER_MODELS= a , b,,\nBASIS_OLLAMA_MODEL=\nX = \"q\\\"uote\"\n",
        WALLET.to_lowercase(),
        token.expose_secret()
    );
    let env = WorkerEnv::parse(&text).unwrap();
    assert_eq!(env.wallet.unwrap().checksummed(), WALLET);
    assert_eq!(env.runtime, Some(Runtime::Vllm));
    assert!(env.token.as_ref().unwrap().ct_eq(&token));
    assert_eq!(env.models, ["a", "b"]);
    assert_eq!(env.ollama_model, None);
    assert_eq!(env.extra, [("X".to_owned(), "q\"uote".to_owned())]);
    assert_eq!(
        env.effective_ollama_url().as_str(),
        "http://127.0.0.1:11434/"
    );
    assert_eq!(env.effective_vllm_url().as_str(), "http://127.0.0.1:8000/");
}

fn parse_err(text: &str) -> (usize, String) {
    match WorkerEnv::parse(text).unwrap_err() {
        EnvFileError::Parse { line, reason, .. } => (line, reason),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn parse_errors_carry_line_and_never_the_value() {
    let cases = [
        ("A=1\n\nnot a pair sekrit-value\n", 3, "KEY=value"),
        ("# c\n1BAD=sekrit-value\n", 2, "key"),
        ("A=\"sekrit-value\n", 1, "unterminated"),
        ("A='sekrit-value\n", 1, "unterminated"),
        ("A='x' sekrit-value\n", 1, "after the closing quote"),
        ("A=1\nBASIS_WORKER_ID=Sekrit-Value\n", 2, "worker_id"),
        ("\n\n\nBASIS_WORKER_RUNTIME=sekrit-value\n", 4, "echo"),
        ("OLLAMA_URL=ftp://sekrit-value\n", 1, "http"),
        ("BASIS_ORCHESTRATOR_URL=sekrit-value\n", 1, "URL"),
        ("A=1\nA=sekrit-value\n", 2, "line 1"),
    ];
    for (text, line, needle) in cases {
        let (got, reason) = parse_err(text);
        assert_eq!(got, line, "{text:?}: {reason}");
        assert!(reason.contains(needle), "{text:?}: {reason}");
        assert!(
            !reason.to_lowercase().contains("sekrit"),
            "{text:?}: {reason}"
        );
    }
}

#[test]
fn wallet_errors_give_the_rule_and_the_private_key_message() {
    let key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    let (line, reason) = parse_err(&format!("A=1\nBASIS_WORKER_WALLET=0x{key}\n"));
    assert_eq!(line, 2);
    assert!(reason.contains("PRIVATE KEY"), "{reason}");
    assert!(!reason.contains(key));

    let (line, reason) = parse_err(&format!("\n\n\nBASIS_WORKER_WALLET={key}\n"));
    assert_eq!(line, 4);
    assert!(reason.contains("PRIVATE KEY"));

    let flipped = WALLET.replacen('a', "A", 1);
    let (_, reason) = parse_err(&format!("BASIS_WORKER_WALLET={flipped}\n"));
    assert!(reason.contains("EIP-55"), "{reason}");
    assert!(!reason.to_lowercase().contains(&WALLET[2..].to_lowercase()));

    let (_, reason) = parse_err("BASIS_WORKER_WALLET=0x1234\n");
    assert!(reason.contains("40 hex"), "{reason}");
}

#[test]
fn token_never_shown_in_debug_masked_or_errors() {
    let env = full_env();
    let token = secret(&env);
    let fingerprint = env.token.as_ref().unwrap().fingerprint();
    for shown in [format!("{env:?}"), format!("{env:#?}"), env.masked()] {
        assert!(!shown.contains(&token), "{shown}");
        assert!(shown.contains(fingerprint.as_str()), "{shown}");
    }
    assert!(env.masked().contains(&format!(
        "BASIS_WORKER_TOKEN=<redacted, fingerprint {fingerprint}>"
    )));
    // Unknown values may be secrets too: Debug and masked show their keys only.
    assert!(!format!("{env:?}").contains("hello world"));
    assert!(!env.masked().contains("hello world"));
    assert!(env.masked().contains("GREETING=<not shown>"));

    // Malformed tokens (one char short, uppercase, quoted badly) are never echoed.
    let bad_tokens = [
        token[..63].to_owned(),
        token.to_uppercase(),
        format!("{token}0"),
    ];
    for bad in &bad_tokens {
        let text = format!("A=1\nBASIS_WORKER_TOKEN={bad}\n");
        let err = WorkerEnv::parse(&text).unwrap_err();
        let shown = [
            err.to_string(),
            format!("{err:?}"),
            serde_json::to_string(&Problem::from(err)).unwrap(),
        ];
        for s in &shown {
            assert!(!s.contains(&bad[..32]), "{s}");
        }
        assert!(shown[0].contains("line 2"), "{}", shown[0]);
        assert!(shown[2].contains("line 2"), "{}", shown[2]);
    }
    let err = WorkerEnv::parse(&format!("BASIS_WORKER_TOKEN=\"{token}\n")).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(&token));
}

#[test]
fn the_evaluator_key_round_trips_and_is_never_shown() {
    let env = full_env();
    let key = env
        .evaluator_key
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let text = env.render();
    assert!(text.contains(&format!("\nBASIS_EVALUATOR_KEY={key}\n")));
    let back = WorkerEnv::parse(&text).unwrap();
    assert_eq!(
        back.evaluator_key.as_ref().unwrap().expose_secret(),
        key.as_str()
    );
    let fingerprint = secret_fingerprint(env.evaluator_key.as_ref().unwrap());
    for shown in [format!("{env:?}"), env.masked()] {
        assert!(!shown.contains(&key), "{shown}");
        assert!(shown.contains(fingerprint.as_str()), "{shown}");
    }
    // A key with a space or a quote is refused without being echoed.
    let err = WorkerEnv::parse("BASIS_EVALUATOR_KEY=basis evaluator secretvalue\n").unwrap_err();
    assert!(!format!("{err} {err:?}").contains("secretvalue"));
    // Kept across a merge that does not name it.
    let mut kept = full_env();
    kept.merge(WorkerEnv::default());
    assert!(kept.evaluator_key.is_some());
}

#[test]
fn the_worker_env_rule() {
    let written = full_env().render();
    for ours in [
        "",
        " \n\n",
        written.as_str(),
        // basis's header marks a file as its own whatever else it holds.
        "# basis worker environment, written by basis. Read by ...\nCUDA_VISIBLE_DEVICES=0\n",
        "\u{feff}BASIS_WORKER_ID=gpu-1\n",
        "# mine\nexport BASIS_WORKER_ID=gpu-1\nOLLAMA_URL=http://127.0.0.1:11434\nBASIS_ECHO_DELAY_MS=5\n",
    ] {
        assert!(WorkerEnv::is_worker_env_text(ours), "{ours:?}");
    }
    for foreign in [
        "export PATH=\"$HOME/bin:$PATH\"\n",
        "BASIS_WORKER_ID=gpu-1\nexport PATH=/usr/bin\n",
        "# only a comment\n",
        "alias ll='ls -l'\n",
        "BASIS_WORKER_ID=gpu-1\nif [ -f x ]; then . x; fi\n",
        "[section]\nkey = 1\n",
        "CUDA_VISIBLE_DEVICES=0\n",
    ] {
        assert!(!WorkerEnv::is_worker_env_text(foreign), "{foreign:?}");
    }
}

#[test]
fn fallback_orchestrators_are_a_list_of_http_urls_kept_on_rewrite() {
    let env = WorkerEnv::parse(
        "BASIS_ORCHESTRATOR_URL=http://a:8787\n\
         BASIS_ORCHESTRATOR_FALLBACK_URLS=http://b:8787, https://c.example ,\n",
    )
    .unwrap();
    let urls: Vec<&str> = env.fallback_urls.iter().map(url::Url::as_str).collect();
    assert_eq!(urls, ["http://b:8787/", "https://c.example/"]);
    assert!(
        env.render()
            .contains("BASIS_ORCHESTRATOR_FALLBACK_URLS=http://b:8787,https://c.example\n"),
        "{}",
        env.render()
    );
    let mut kept = env.clone();
    kept.merge(WorkerEnv::default());
    assert_eq!(kept.fallback_urls, env.fallback_urls);
    assert!(WorkerEnv::parse("BASIS_ORCHESTRATOR_FALLBACK_URLS=ftp://x\n").is_err());
}

#[test]
fn capacity_is_a_whole_number_from_1_to_256_kept_on_rewrite() {
    let text = "BASIS_WORKER_CAPACITY=24\n";
    let env = WorkerEnv::parse(text).unwrap();
    assert_eq!(env.capacity, Some(24));
    let mut kept = env.clone();
    kept.merge(WorkerEnv::default());
    assert_eq!(kept.capacity, Some(24));
    assert!(kept.render().contains("BASIS_WORKER_CAPACITY=24"));
    for bad in ["0", "257", "four", "-1", "2.5"] {
        let e = WorkerEnv::parse(&format!("BASIS_WORKER_CAPACITY={bad}\n")).unwrap_err();
        assert!(e.to_string().contains("1 to 256"), "{bad}: {e}");
    }
}
