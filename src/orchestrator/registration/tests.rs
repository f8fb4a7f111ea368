//! Unit tests of registration body parsing: codes per field, the guard, no echo.

use serde_json::json;

use super::*;

fn body() -> Value {
    json!({
        "worker_id": "gpu-1",
        "wallet": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "runtime": "ollama",
        "models": ["llama3.2:1b", "llama3.2:1b", "qwen2.5:7b"],
        "token_sha256": format!("0x{}", "ab".repeat(32)),
        "version": "0.1.0",
        "hardware": {"gpus": [{"vendor": "nvidia", "name": "H100", "vram_total_mib": 81559}]},
        "some_future_field": 1
    })
}

fn code_of(body: &Value) -> (ErrorCode, String) {
    let e = parse_register(body).unwrap_err();
    (
        e.problem.code,
        format!("{} {:?}", e.problem.message, e.problem.fix),
    )
}

#[test]
fn a_good_body_parses_and_normalises() {
    let r = parse_register(&body()).unwrap();
    assert_eq!(
        r.wallet.checksummed(),
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    );
    assert_eq!(
        r.models,
        ["llama3.2:1b", "qwen2.5:7b"],
        "duplicates dropped, order kept"
    );
    assert_eq!(r.hardware.unwrap().gpus[0].vram_total_mib, Some(81_559));
    assert!(!r.multi_task);
}

#[test]
fn wallet_errors_have_their_codes_and_a_suggestion() {
    let mut b = body();
    b["wallet"] = json!("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD");
    let (code, text) = code_of(&b);
    assert_eq!(code, ErrorCode::WalletChecksumMismatch);
    assert!(
        text.contains("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
        "{text}"
    );
    b["wallet"] = json!("0x1234");
    assert_eq!(code_of(&b).0, ErrorCode::InvalidWallet);
    b["wallet"] = json!(format!("0x{}", "0".repeat(40)));
    assert_eq!(code_of(&b).0, ErrorCode::ZeroWallet);
}

#[test]
fn a_private_key_in_the_wallet_is_refused_without_echo() {
    let key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    for input in [key.to_owned(), format!("0x{key}")] {
        let mut b = body();
        b["wallet"] = json!(input);
        let (code, text) = code_of(&b);
        assert_eq!(code, ErrorCode::PrivateKeyRefused);
        assert!(!text.contains(key));
    }
}

#[test]
fn secrets_in_free_text_fields_are_refused() {
    let mnemonic =
        "abandon ability able about above absent absorb abstract absurd abuse access accident";
    for (field, value) in [
        ("version", json!(mnemonic)),
        ("models", json!(["ok", "sk-ant-api03-AbCdEf0123456789"])),
        ("hardware", json!({"os": "-----BEGIN PRIVATE KEY-----"})),
        (
            "extra",
            json!("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"),
        ),
    ] {
        let mut b = body();
        b[field] = value;
        let (code, text) = code_of(&b);
        assert_eq!(code, ErrorCode::SecretRefused, "{field}");
        assert!(!text.contains("AbCdEf0123456789") && !text.contains("abandon ability"));
    }
}

#[test]
fn other_fields_get_their_codes() {
    let cases = [
        ("worker_id", json!("Bad_Id"), ErrorCode::InvalidWorkerId),
        ("runtime", json!("cuda"), ErrorCode::UnknownRuntime),
        (
            "token_sha256",
            json!("ab".repeat(32)),
            ErrorCode::InvalidArgument,
        ),
        ("version", json!(""), ErrorCode::InvalidArgument),
        ("version", json!("1\n2"), ErrorCode::InvalidArgument),
        ("models", json!("llama"), ErrorCode::InvalidJson),
        (
            "models",
            json!(vec!["m"; MAX_MODELS + 1]),
            ErrorCode::InvalidArgument,
        ),
        (
            "models",
            json!(["x".repeat(MAX_MODEL_LEN + 1)]),
            ErrorCode::InvalidArgument,
        ),
        ("multi_task", json!("yes"), ErrorCode::InvalidJson),
        (
            "hardware",
            json!({"gpus": [{"vendor": 3}]}),
            ErrorCode::InvalidJson,
        ),
        ("worker_id", Value::Null, ErrorCode::InvalidJson),
    ];
    for (field, value, code) in cases {
        let mut b = body();
        b[field] = value;
        assert_eq!(code_of(&b).0, code, "{field}");
    }
    assert_eq!(code_of(&json!([1, 2])).0, ErrorCode::InvalidJson);
}

#[test]
fn shape_errors_in_hardware_name_the_path() {
    let mut b = body();
    b["hardware"] = json!({"gpus": [{"vendor": "nvidia", "vram_total_mib": "lots"}]});
    let (_, text) = code_of(&b);
    assert!(text.contains("hardware.gpus[0].vram_total_mib"), "{text}");
    assert!(!text.contains("lots"));
}
