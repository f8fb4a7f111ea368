//! Property tests: random keys, mnemonics and API keys in random prose are refused with the
//! right kind and never echoed; near misses (other hex lengths, short word runs) pass.

use proptest::prelude::*;
use proptest::sample::select;

use super::tests::{FIELD, assert_no_leak};
use super::*;

/// Filler prose: a mix of wordlist words (`wallet`, `please`, `spare`) and others (`the`).
const PROSE: &str = "please use the wallet for this job and run it on my spare GPU tonight \
                     thanks here is value llama3.1:8b (see below)";

/// Characters that separate a secret from the prose around it.
const SEPARATORS: &[&str] = &[" ", "\n", "=", ": ", "\"", "(", "'", ", ", "\t", "`", "<"];

fn prose() -> impl Strategy<Value = String> {
    let words: Vec<&str> = PROSE.split_whitespace().collect();
    prop::collection::vec(select(words), 0..10).prop_map(|words| words.join(" "))
}

/// `secret` with random prose and separators on both sides.
fn embedded(secret: impl Strategy<Value = String>) -> impl Strategy<Value = (String, String)> {
    (
        prose(),
        select(SEPARATORS),
        secret,
        select(SEPARATORS),
        prose(),
    )
        .prop_map(|(before, open, secret, close, after)| {
            (format!("{before}{open}{secret}{close}{after}"), secret)
        })
}

/// Refuses `value`; neither the value nor any piece of `secret` shows in any output.
fn refused_in_prose(value: &str, secret: &str) -> SecretRefused {
    let err = check_text(FIELD, value).expect_err("should be refused");
    assert_eq!(err.field, FIELD);
    assert_no_leak(&err, secret);
    let problem = crate::domain::Problem::from(err.clone());
    for output in [err.to_string(), format!("{err:?}"), format!("{problem:?}")] {
        assert!(!output.contains(value));
    }
    err
}

fn private_key() -> impl Strategy<Value = String> {
    (
        any::<[u8; 32]>(),
        select(&["", "0x", "0X"][..]),
        any::<bool>(),
    )
        .prop_map(|(bytes, prefix, upper)| {
            let hex = hex::encode(bytes);
            format!("{prefix}{}", if upper { hex.to_uppercase() } else { hex })
        })
}

fn mnemonic() -> impl Strategy<Value = String> {
    const GAPS: &[&str] = &[" ", "  ", "\n", ", ", "-", "\t", " | ", ". ", ";"];
    select(&[12usize, 15, 18, 24][..])
        .prop_flat_map(|n| prop::collection::vec((0..2048usize, 0..3u8, select(GAPS)), n))
        .prop_map(|words| {
            let list = bip39::Language::English.word_list();
            let mut out = String::new();
            for (i, (index, case, gap)) in words.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(gap);
                }
                let word = list[index];
                match case {
                    0 => out.push_str(word),
                    1 => out.push_str(&word.to_uppercase()),
                    _ => {
                        out.push_str(&word[..1].to_uppercase());
                        out.push_str(&word[1..]);
                    }
                }
            }
            out
        })
}

fn api_key() -> impl Strategy<Value = (String, &'static str)> {
    let formats: [(&'static str, &'static str); 16] = [
        ("sk-ant-api03-[A-Za-z0-9_-]{93}AA", "Anthropic"),
        ("sk-[A-Za-z0-9]{48}", "OpenAI"),
        ("sk-proj-[A-Za-z0-9_-]{100,156}", "OpenAI"),
        ("ghp_[A-Za-z0-9]{36}", "GitHub"),
        ("gh[ousr]_[A-Za-z0-9]{36}", "GitHub"),
        ("github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}", "GitHub"),
        ("AKIA[A-Z2-7]{16}", "AWS"),
        ("ASIA[A-Z0-9]{16}", "AWS"),
        ("hf_[A-Za-z0-9]{34}", "Hugging Face"),
        ("hf_[A-Za-z0-9]{30,40}", "Hugging Face"),
        ("xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24}", "Slack"),
        (
            "xoxp-[0-9]{10,13}-[0-9]{10,13}-[0-9]{10,13}-[a-f0-9]{32}",
            "Slack",
        ),
        ("glpat-[A-Za-z0-9_-]{20}", "GitLab"),
        ("sk_live_[A-Za-z0-9]{24,99}", "Stripe"),
        ("rk_test_[A-Za-z0-9]{24}", "Stripe"),
        ("AIza[A-Za-z0-9_-]{35}", "Google"),
    ];
    select(formats.to_vec()).prop_flat_map(|(pattern, vendor)| {
        proptest::string::string_regex(pattern)
            .expect("the patterns above are valid regexes")
            .prop_map(move |key| (key, vendor))
    })
}

proptest! {
    #[test]
    fn random_private_keys_are_refused((value, key) in embedded(private_key())) {
        prop_assert_eq!(refused_in_prose(&value, &key).kind, SecretKind::PrivateKey);
    }

    #[test]
    fn random_mnemonics_are_refused((value, words) in embedded(mnemonic())) {
        prop_assert_eq!(refused_in_prose(&value, &words).kind, SecretKind::Mnemonic);
    }

    #[test]
    fn random_api_keys_are_refused(
        (before, open, (key, vendor), close, after) in
            (prose(), select(SEPARATORS), api_key(), select(SEPARATORS), prose())
    ) {
        let value = format!("{before}{open}{key}{close}{after}");
        let err = refused_in_prose(&value, &key);
        prop_assert_eq!(err.kind, SecretKind::ApiKey);
        prop_assert_eq!(err.vendor, Some(vendor));
    }

    #[test]
    fn random_keys_in_json_report_the_path((value, key) in embedded(private_key()), i in 0..5usize) {
        let mut items = vec![serde_json::Value::Null; 5];
        items[i] = serde_json::json!({ "text": value });
        let err = check_json("input", &serde_json::json!({ "items": items })).unwrap_err();
        prop_assert_eq!(&err.field, &format!("input.items[{i}].text"));
        assert_no_leak(&err, &key);
    }

    #[test]
    fn hex_runs_of_other_lengths_pass(
        len in (1..200usize).prop_filter("64 is a key", |&n| n != 64),
        prefix in select(&["", "0x"][..]),
        before in prose(),
        after in prose(),
    ) {
        let run = "0123456789abcdefABCDEF".chars().cycle().skip(len % 7).take(len);
        let value = format!("{before} {prefix}{} {after}", run.collect::<String>());
        prop_assert_eq!(check_text(FIELD, &value), Ok(()));
    }

    #[test]
    fn random_addresses_pass(bytes in any::<[u8; 20]>(), before in prose()) {
        let value = format!("{before} 0x{}", hex::encode(bytes));
        prop_assert_eq!(check_text(FIELD, &value), Ok(()));
    }

    #[test]
    fn eleven_wordlist_words_pass(words in mnemonic()) {
        // Any 11 consecutive words of a mnemonic, with its separators, are not enough.
        let kept: Vec<&str> = words
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(11)
            .collect();
        prop_assert_eq!(check_text(FIELD, &kept.join(" ")), Ok(()));
        prop_assert_eq!(check_text(FIELD, &format!("{} the {}", kept.join(" "), kept.join(" "))), Ok(()));
    }
}
