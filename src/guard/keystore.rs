//! Encrypted JSON keystores (Web3 Secret Storage v3 and alike): an object whose `crypto` (or
//! `Crypto`) member holds `ciphertext`, `kdf` and `mac`. The bare `crypto` object, pasted on
//! its own, is refused too: with the password it is the key.

use serde_json::{Map, Value};

/// The members that make an object the encrypted part of a keystore.
const CRYPTO_FIELDS: [&str; 3] = ["ciphertext", "kdf", "mac"];

fn has_crypto_fields(object: &Map<String, Value>) -> bool {
    CRYPTO_FIELDS.iter().all(|key| object.contains_key(*key))
}

/// Whether `object` is a keystore or the `crypto` object of one.
pub(super) fn is_keystore_object(object: &Map<String, Value>) -> bool {
    has_crypto_fields(object)
        || ["crypto", "Crypto"].iter().any(|key| {
            object
                .get(*key)
                .and_then(Value::as_object)
                .is_some_and(has_crypto_fields)
        })
}

/// Whether `text` contains keystore JSON.
///
/// Rather than parsing, this looks for `ciphertext`, `kdf` and `mac` used as JSON object keys
/// (`"name"` then optional whitespace and `:`, the quotes possibly backslash-escaped). That is
/// linear, allocates nothing, and also catches a keystore that is truncated or escaped inside
/// another JSON string, which a parser would reject. The cheap pre-check on `ciphertext` keeps
/// the common case to one substring search.
pub(super) fn has_keystore_text(text: &str) -> bool {
    text.contains("ciphertext") && CRYPTO_FIELDS.iter().all(|key| has_json_key(text, key))
}

/// Whether `key` occurs as a JSON object key: `"key":` or `\"key\":`, spaces allowed before `:`.
fn has_json_key(text: &str, key: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(key).any(|(start, _)| {
        if start == 0 || bytes[start - 1] != b'"' {
            return false;
        }
        let mut rest = &bytes[start + key.len()..];
        if let [b'\\', tail @ ..] = rest {
            rest = tail;
        }
        let [b'"', tail @ ..] = rest else {
            return false;
        };
        tail.iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b':')
    })
}
