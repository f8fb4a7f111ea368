//! Example-based tests of the guard: each kind refused, the false positives that must pass,
//! JSON paths, the helper traits, and that no error text contains the value.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::*;
use crate::domain::{ErrorCode, Problem};

pub(super) const FIELD: &str = "description";

/// Refuses `value` in `FIELD`, checks the kind and that no output leaks `secret`.
pub(super) fn refused(value: &str, secret: &str) -> SecretRefused {
    let err = check_text(FIELD, value).expect_err("should be refused");
    assert_eq!(err.field, FIELD);
    assert_no_leak(&err, value);
    assert_no_leak(&err, secret);
    err
}

/// No text derived from `err` contains `secret` or any piece of it longer than the field name.
pub(super) fn assert_no_leak(err: &SecretRefused, secret: &str) {
    let problem = Problem::from(err.clone());
    let outputs = [
        err.to_string(),
        format!("{err:?}"),
        err.message(),
        err.fix().to_owned(),
        format!("{problem:?}"),
        serde_json::to_string(&problem).unwrap(),
    ];
    if let Some(leak) = leak(&outputs, secret, err.field.len() + 1) {
        panic!("leaked {leak}");
    }
}

/// The first piece of `secret` of `window` characters (or all of it) found in an output.
fn leak(outputs: &[String], secret: &str, window: usize) -> Option<String> {
    let chars: Vec<char> = secret.chars().collect();
    outputs.iter().find_map(|output| {
        if output.contains(secret) {
            return Some(format!("the value in {output}"));
        }
        chars.windows(window).find_map(|piece| {
            let piece: String = piece.iter().collect();
            output
                .contains(&piece)
                .then(|| format!("{piece:?} in {output}"))
        })
    })
}

fn passes(value: &str) {
    assert_eq!(
        check_text(FIELD, value),
        Ok(()),
        "false positive on {value:?}"
    );
}

pub(super) const KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

#[test]
fn private_key_with_and_without_prefix() {
    for value in [
        KEY.to_owned(),
        format!("0x{KEY}"),
        format!("0X{}", KEY.to_uppercase()),
        format!("my key is 0x{KEY}, please use it"),
        format!("PRIVATE_KEY={KEY}\n"),
        format!("\"{KEY}\""),
        format!("key-{KEY}-backup"),
        format!("é{KEY}ü"),
    ] {
        assert_eq!(refused(&value, KEY).kind, SecretKind::PrivateKey, "{value}");
    }
}

#[test]
fn hex_false_positives() {
    let address = "0x52908400098527886E0F7030069857D2E4169EE7";
    passes(address);
    passes(&format!("pay to {address} please"));
    passes(&KEY[..63]);
    passes(&format!("0x{}", &KEY[..63]));
    passes(&format!("{KEY}a"));
    passes(&format!("0x{KEY}a"));
    passes(&format!("{KEY}{KEY}")); // a 128-hex signature-like run
    passes(&format!("0x{KEY}{KEY}1b"));
    passes(&format!("abc{KEY}")); // inside a longer alphanumeric token
    passes(&format!("0x0{KEY}")); // 65 hex after 0x
}

#[test]
fn output_hash_passes_only_by_type() {
    // Hash-typed fields never reach the guard; as free text the same shape is refused.
    let hash = crate::domain::keccak256_hex(b"hello");
    assert!(crate::domain::OutputHash::parse(&hash).is_ok());
    assert_eq!(refused(&hash, &hash).kind, SecretKind::PrivateKey);
}

const MNEMONIC: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";

#[test]
fn mnemonics() {
    let mut numbered = String::new();
    for (i, word) in MNEMONIC.split(' ').enumerate() {
        writeln!(numbered, "{}. {word}", i + 1).unwrap();
    }
    let valid = bip39::Mnemonic::from_entropy(&[7u8; 32])
        .unwrap()
        .to_string();
    for value in [
        MNEMONIC.to_owned(),
        MNEMONIC.to_uppercase(),
        MNEMONIC.replace(' ', ", "),
        MNEMONIC.replace(' ', "-"),
        numbered,
        format!("here is my seed: {MNEMONIC}. thanks"),
        valid.clone(),
    ] {
        assert_eq!(refused(&value, MNEMONIC).kind, SecretKind::Mnemonic);
    }
    assert_no_leak(&check_text(FIELD, &valid).unwrap_err(), &valid);
}

#[test]
fn eleven_words_pass_twelve_do_not() {
    let words: Vec<&str> = MNEMONIC.split(' ').collect();
    passes(&words[..11].join(" "));
    // A non-wordlist word breaks the run.
    passes(&format!(
        "{} the {}",
        words[..6].join(" "),
        words[6..].join(" ")
    ));
    assert_eq!(
        check_text(FIELD, &words.join(" ")).unwrap_err().kind,
        SecretKind::Mnemonic
    );
}

#[test]
fn every_wordlist_word_is_found_in_any_case() {
    for word in bip39::Language::English.word_list() {
        assert!(mnemonic::is_wordlist_word(word), "{word}");
        assert!(mnemonic::is_wordlist_word(&word.to_uppercase()), "{word}");
    }
    for word in ["the", "and", "of", "llama", "gpu", "café", "abandons", ""] {
        assert!(!mnemonic::is_wordlist_word(word), "{word}");
    }
}

#[test]
fn prose_passes() {
    passes("Please summarize the attached report and list three key risks.");
    // Six wordlist words in a row.
    passes("Smart people always remember simple ideas.");
    passes(
        "The worker runs an open model on a spare GPU and returns the output with its hash. \
         Rewards are paid to the public wallet address that the operator gives during setup; \
         nothing else about the wallet is ever needed, and the token stays in worker.env. \
         If the machine goes offline, pending tasks are released after the lease expires, so \
         another worker can pick them up without any action from you.",
    );
    passes(
        "Write a short story about a brave young girl who finds a magic door in the garden \
         behind her house, and what happens when she opens it on a cold winter morning.",
    );
    passes("task-0123456789abcdef0123456789abcdef");
    passes("a risk-averse strategy; desk-2024-inventory-spreadsheet-final-v2");
    passes("use sk-fine-tuned-summaries-model-for-news or llama3.1:8b or qwen2.5:7b-instruct");
    passes("https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/resolve/main/config.json");
    passes("https://github.com/example/basis/pull/42#issuecomment-1234567890");
    passes("gpu-box-01");
    passes("see the ASIAPACIFICREGIONSALES2024 sheet; AKIA is a prefix; AKIAIOSFODNN7EXAMPLEabc");
    passes(
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    );
    passes("decrypt the ciphertext, then check the kdf and mac fields of the crypto section");
    passes("");
}

#[test]
fn pem_private_keys() {
    for label in [
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "PRIVATE KEY",
        "PGP PRIVATE KEY BLOCK",
    ] {
        let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
        let pem = format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
        assert_eq!(
            refused(&pem, body).kind,
            SecretKind::PemPrivateKey,
            "{label}"
        );
        let inline = format!("cat key.pem: -----BEGIN {label}-----\\n{body}");
        assert_eq!(refused(&inline, body).kind, SecretKind::PemPrivateKey);
    }
}

pub(super) fn keystore() -> Value {
    json!({
        "address": "008aeeda4d805471df9b2a5b0f38a0c3bcba786b",
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": "83dbcc02d8ccb40e466191a123791e0e"},
            "ciphertext": "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
            "kdf": "scrypt",
            "kdfparams": {
                "dklen": 32, "n": 262_144, "p": 8, "r": 1,
                "salt": "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19"
            },
            "mac": "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097"
        },
        "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
        "version": 3
    })
}

#[test]
fn keystore_in_text_and_as_value() {
    let ks = keystore();
    let ciphertext = ks["crypto"]["ciphertext"].as_str().unwrap().to_owned();
    let compact = ks.to_string();
    let pretty = serde_json::to_string_pretty(&ks).unwrap();
    let mut capital = ks.clone();
    let crypto = capital.as_object_mut().unwrap().remove("crypto").unwrap();
    capital["Crypto"] = crypto.clone();
    let escaped = serde_json::to_string(&compact).unwrap(); // a JSON string holding the keystore
    let truncated = &pretty[..pretty.find("\"id\"").unwrap()];
    for text in [
        compact.clone(),
        pretty.clone(),
        format!("my wallet file: {compact} password in next message"),
        capital.to_string(),
        crypto.to_string(),
        escaped,
        truncated.to_owned(),
    ] {
        assert_eq!(
            refused(&text, &ciphertext).kind,
            SecretKind::Keystore,
            "{text}"
        );
    }
    for value in [&ks, &capital, &crypto] {
        let err = check_json("input", value).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.kind),
            ("input", SecretKind::Keystore)
        );
        assert_no_leak(&err, &ciphertext);
    }
    let nested = json!({"files": [{"name": "wallet.json", "content": ks}]});
    let err = check_json("args", &nested).unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.kind),
        ("args.files[0].content", SecretKind::Keystore)
    );
}

#[test]
fn json_paths_walk_arrays_objects_and_keys() {
    let value = json!({
        "model": "llama3.1:8b",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": format!("sign with {KEY}")}
        ]
    });
    let err = check_json("input", &value).unwrap_err();
    assert_eq!(err.field, "input.messages[1].content");
    assert_eq!(err.kind, SecretKind::PrivateKey);
    assert_no_leak(&err, KEY);

    let deep = json!([[1, {"a b": [null, true, MNEMONIC]}]]);
    let err = check_json("args", &deep).unwrap_err();
    assert_eq!(err.field, r#"args[0][1]["a b"][2]"#);
    assert_eq!(err.kind, SecretKind::Mnemonic);

    let mut object = serde_json::Map::new();
    object.insert(format!("0x{KEY}"), json!("value"));
    let err = check_json("env", &json!({"vars": object})).unwrap_err();
    assert_eq!(err.field, "env.vars[<key>]");
    assert_no_leak(&err, KEY);

    let clean = json!({"a": [1, 2.5, "0x52908400098527886E0F7030069857D2E4169EE7"], "b": null});
    assert_eq!(check_json("input", &clean), Ok(()));
}

#[test]
fn guard_text_helpers() {
    type Set = fn(&mut Params, String);
    struct Params {
        title: String,
        note: Option<String>,
        tags: Vec<String>,
        env: BTreeMap<String, String>,
        extra: Option<Value>,
    }
    impl Guarded for Params {
        fn check_secrets(&self) -> Result<(), SecretRefused> {
            self.title.guard("title")?;
            self.note.guard("note")?;
            self.tags.guard("tags")?;
            self.env.guard("env")?;
            self.extra.guard("extra")
        }
    }
    let clean = || Params {
        title: "hello".into(),
        note: None,
        tags: vec!["a".into(), "b".into()],
        env: BTreeMap::from([("RUST_LOG".into(), "info".into())]),
        extra: Some(json!({"k": [1]})),
    };
    assert_eq!(clean().check_secrets(), Ok(()));
    let key = format!("0x{KEY}");
    let cases: [(&str, Set); 6] = [
        ("title", |p, k| p.title = k),
        ("note", |p, k| p.note = Some(k)),
        ("tags[1]", |p, k| p.tags[1] = k),
        ("env.RUST_LOG", |p, k| {
            p.env.insert("RUST_LOG".into(), k);
        }),
        ("env[<key>]", |p, k| {
            p.env.insert(k, String::new());
        }),
        ("extra.k[1]", |p, k| p.extra = Some(json!({"k": [0, k]}))),
    ];
    for (field, set) in cases {
        let mut params = clean();
        set(&mut params, key.clone());
        let err = params.check_secrets().unwrap_err();
        assert_eq!(err.field, field);
        assert_no_leak(&err, &key);
    }
    let nested = vec![vec![String::new()], vec![String::new(), key.clone()]];
    assert_eq!(nested.guard("grid").unwrap_err().field, "grid[1][1]");
    let url = url::Url::parse(&format!("https://example.com/?key={KEY}")).unwrap();
    assert_eq!(
        url.guard("endpoint").unwrap_err().kind,
        SecretKind::PrivateKey
    );
}

#[test]
fn problem_conversion() {
    let err = check_text("wallet_note", &format!("0x{KEY}")).unwrap_err();
    let problem = Problem::from(err.clone());
    assert_eq!(problem.code, ErrorCode::SecretRefused);
    assert_eq!(problem.message, err.message());
    let fix = problem.fix.unwrap();
    assert!(
        fix.contains("`wallet_note`") && fix.contains(err.fix()),
        "{fix}"
    );
}

#[test]
fn display_names_field_kind_and_never_needed() {
    for &kind in SecretKind::ALL {
        let err = SecretRefused::new("notes", kind);
        let text = err.to_string();
        assert!(text.contains("`notes`"), "{text}");
        assert!(text.contains(kind.description()), "{text}");
        assert!(
            text.contains("not stored") && text.contains("never needs"),
            "{text}"
        );
        assert!(text.contains("PUBLIC wallet address"), "{text}");
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
    }
    let err = SecretRefused::new("notes", SecretKind::ApiKey).with_vendor("GitHub");
    assert!(err.to_string().contains("(GitHub format)"));
}

#[test]
fn leak_check_can_fail() {
    // The leak check itself must be able to fail: on an output that echoes part of the key.
    let echo = format!("refused `note`: {}…", &KEY[..12]);
    assert!(leak(&[echo], KEY, "note".len() + 1).is_some());
    assert!(leak(&[format!("0x{KEY}")], KEY, 100).is_some());
    assert!(leak(&["`note` was refused".to_owned()], KEY, 5).is_none());
}

#[test]
fn a_phrase_split_over_list_items_or_fields_is_refused_whole() {
    use crate::guard::{GuardText, check_joined};
    let items = vec![
        "legal-winner-thank-year-wave-sausage".to_owned(),
        "worth-useful-legal-winner-thank-yellow".to_owned(),
    ];
    for item in &items {
        assert!(item.guard("models").is_ok(), "half a phrase alone passes");
    }
    assert!(items.guard("models").is_err(), "the list whole is refused");
    let split = serde_json::json!({
        "worker_id": "legal-winner-thank-year-wave-sausage",
        "models": ["worth-useful-legal-winner-thank-yellow"],
    });
    let refused = check_joined("arguments", &split).unwrap_err();
    assert!(!format!("{refused:?}").contains("sausage"));
    // Plain lists and requests pass.
    assert!(
        vec!["llama3".to_owned(), "qwen2".to_owned()]
            .guard("models")
            .is_ok()
    );
    assert!(
        check_joined(
            "arguments",
            &serde_json::json!({"a": "box-1", "b": ["echo"]})
        )
        .is_ok()
    );
}

#[test]
fn phrases_in_every_wordlist_and_abbreviated_are_refused() {
    for language in bip39::Language::ALL {
        let words: Vec<&str> = language.word_list()[100..112].to_vec();
        for sep in [" ", "\u{3000}", "-"] {
            let phrase = words.join(sep);
            assert_eq!(
                check_text(FIELD, &phrase).map_err(|e| e.kind),
                Err(SecretKind::Mnemonic),
                "{language:?} joined by {sep:?}"
            );
        }
    }
    // Chinese without separators, one ideograph a word.
    let chinese: String = bip39::Language::SimplifiedChinese.word_list()[..12].concat();
    assert_eq!(
        check_text(FIELD, &chinese).unwrap_err().kind,
        SecretKind::Mnemonic
    );
    // English in its 4-letter form: "aban aban … abou".
    let abbreviated = "aban aban aban aban aban aban aban aban aban aban aban abou";
    assert_eq!(
        check_text(FIELD, abbreviated).unwrap_err().kind,
        SecretKind::Mnemonic
    );
    // Eleven words of one list pass; so do ordinary sentences in those languages.
    passes(&bip39::Language::Spanish.word_list()[100..111].join(" "));
    passes("Por favor resume el informe adjunto y enumera tres riesgos clave para el equipo.");
    passes("Veuillez résumer le rapport ci-joint et lister trois risques majeurs pour l'équipe.");
}

#[test]
fn wallet_and_token_formats_beyond_hex_are_refused_not_echoed() {
    let cases = [
        "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi",
        "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "4c08 83a6 9102 937d 6231 471b 5dbb 6204 fe51 2961 7082 792a e468 d01a 3f36 2318",
    ];
    for secret in cases {
        let refused = check_text(FIELD, secret).unwrap_err();
        let shown = format!("{refused} {refused:?} {}", refused.fix());
        assert!(!shown.contains(&secret[8..24]), "echoed: {shown}");
    }
}
