//! The secrets guard (docs/SECURITY.md, "The secrets guard"): refuses private keys, mnemonics,
//! keystores, PEM keys and API keys in any free-text field, without echoing them.
//!
//! Every front calls it on every free-text argument and API field before anything else sees
//! the value: [`check_text`] for a string, [`check_json`] for a JSON value (every string and
//! object key, recursively), or a param struct's [`Guarded::check_secrets`], written with
//! [`GuardText::guard`] on each field. An output (a file, a bytes output) goes through
//! [`check_output`] on its raw bytes, which also looks inside what they encode: see `payload`.
//!
//! ```
//! use basis::guard::{GuardText, Guarded, SecretRefused};
//!
//! struct Params { description: String, tags: Vec<String>, note: Option<String> }
//!
//! impl Guarded for Params {
//!     fn check_secrets(&self) -> Result<(), SecretRefused> {
//!         self.description.guard("description")?;
//!         self.tags.guard("tags")?;
//!         self.note.guard("note")
//!     }
//! }
//! ```
//!
//! What is refused ([`SecretKind`]):
//! - `PrivateKey`: a token of exactly 64 hex characters, with or without `0x`, between
//!   boundaries (anything but an ASCII letter or digit). A 40-hex address, a 63- or 65-hex run
//!   and a 64-hex run inside a longer one pass. A worker token is 64 hex too, and is refused.
//!   In free text where a hash belongs (outputs, descriptions, reasons: [`check_free_text`],
//!   [`GuardText::guard_free_text`], [`check_output`]) a 64-hex value passes unless labelled
//!   as a key, one of the host's own secrets, or the key of the worker's wallet: see [`Rule`].
//! - `Mnemonic`: 12 or more consecutive BIP-39 English words, any case, any separators,
//!   checksum-valid or not (digit-only tokens such as list numbers are skipped).
//! - `Keystore`: JSON with `ciphertext`, `kdf` and `mac` in a `crypto`/`Crypto` object (or the
//!   bare crypto object), as a value or inside text, even truncated or string-escaped.
//!   A basis device key (`basis_dk_` + 43 base64url) is a `PrivateKey` too, anywhere.
//! - `PemPrivateKey`: a `-----BEGIN … PRIVATE KEY-----` header (RSA, EC, OPENSSH, ENCRYPTED,
//!   PKCS#8, PGP).
//! - `ApiKey`: Anthropic `sk-ant-`, `OpenAI` `sk-`/`sk-proj-`, Stripe `sk_live_`/`rk_live_`,
//!   GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_`/`github_pat_`, GitLab `glpat-`, AWS
//!   `AKIA`/`ASIA`, Google `AIza`, Hugging Face `hf_`, Slack `xoxb-`/`xoxp-`; only at a word
//!   start (so `task-…` ids or `risk-averse` never match `sk-`) and only when the body has a
//!   digit or a capital (so `sk-fine-tuned-summaries` does not either).
//! - `CredentialFile`, `WorkerToken`, `Uninspectable`: only [`check_bytes`] reports these (a
//!   key container or credentials file, the host's own token, data it cannot look inside).
//!
//! Hashes are exempt by type, not by field name: an [`OutputHash`], [`ReceiptHash`] or
//! [`TokenSha256`] is `0x` + 64 hex, the same shape as a private key, but param structs hold
//! them as those types, parsed strictly, and never pass them here. A hash inside a string
//! checked strictly, or an untyped JSON value, is refused like any 64-hex token; inside free
//! text it passes (see above).
//!
//! The error never contains the value: see [`SecretRefused`].
//!
//! [`OutputHash`]: crate::domain::OutputHash
//! [`ReceiptHash`]: crate::domain::ReceiptHash
//! [`TokenSha256`]: crate::domain::TokenSha256

mod containers;
mod credentials;
mod decode;
mod device_key;
mod error;
mod families;
mod free_text;
mod json;
mod keystore;
mod mnemonic;
mod patterns;
mod payload;
mod redact;
mod text;

#[cfg(test)]
mod payload_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use device_key::device_key_forms;
pub use error::{SecretKind, SecretRefused};
pub use free_text::{HostSecrets, MAX_WALLET_CHECKS, Rule};
pub use payload::{
    MAX_DECODED_BYTES, MAX_DEPTH, MAX_RATIO, RATIO_FLOOR, check_bytes, check_output,
};
pub use redact::{REDACTED, redact_line};
pub use text::{GuardText, Guarded};

use serde_json::Value;

use crate::domain::{ErrorCode, Problem};

/// What a scan found; turned into a [`SecretRefused`] once the field is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Finding {
    kind: SecretKind,
    vendor: Option<&'static str>,
}

impl Finding {
    const fn of(kind: SecretKind) -> Self {
        Self { kind, vendor: None }
    }

    fn refuse(self, field: impl Into<String>) -> SecretRefused {
        SecretRefused {
            field: field.into(),
            kind: self.kind,
            vendor: self.vendor,
        }
    }
}

/// Scans one string; the most specific kind wins (a keystore holds 64-hex fields, it is
/// reported as a keystore).
/// `checks` bounds the wallet derivations of [`Rule::FreeText`] over a whole check.
fn scan(text: &str, rule: Rule<'_>, checks: &free_text::WalletChecks) -> Option<Finding> {
    if keystore::has_keystore_text(text) {
        return Some(Finding::of(SecretKind::Keystore));
    }
    if patterns::has_pem_private_key(text) {
        return Some(Finding::of(SecretKind::PemPrivateKey));
    }
    if let Some(vendor) = patterns::find_api_key(text) {
        return Some(Finding {
            kind: SecretKind::ApiKey,
            vendor: Some(vendor),
        });
    }
    match patterns::has_hex_key(text, rule, checks) {
        Ok(true) => return Some(Finding::of(SecretKind::PrivateKey)),
        Err(spent) => return Some(spent),
        Ok(false) => {}
    }
    if let Some(finding) = families::find(text, rule, checks) {
        return Some(finding);
    }
    if mnemonic::has_mnemonic(text) {
        return Some(Finding::of(SecretKind::Mnemonic));
    }
    None
}

/// Refuses `value` if it looks like a secret; `field` names it in the error. Every 64-hex
/// value is refused: for ids, names, URLs, paths and wallet fields ([`Rule::Strict`]).
pub fn check_text(field: &str, value: &str) -> Result<(), SecretRefused> {
    check_text_with(field, value, Rule::Strict)
}

/// [`check_text`] for free text where a hash belongs (an output, a description, a reason):
/// a 64-hex value passes unless labelled as a key or secret, or it is one of `host`'s
/// secrets (see [`Rule::FreeText`]).
pub fn check_free_text(
    field: &str,
    value: &str,
    host: &HostSecrets<'_>,
) -> Result<(), SecretRefused> {
    check_text_with(field, value, Rule::FreeText(host))
}

/// [`check_text`] under `rule`.
pub fn check_text_with(field: &str, value: &str, rule: Rule<'_>) -> Result<(), SecretRefused> {
    match scan(value, rule, &free_text::wallet_checks()) {
        Some(finding) => Err(finding.refuse(field)),
        None => Ok(()),
    }
}

/// Refuses `value` if any string or object key in it looks like a secret, or any object in it
/// is a keystore. The error's field is the path from `field`, e.g. `input.messages[0].content`;
/// a refused object key shows as `[<key>]`.
pub fn check_json(field: &str, value: &Value) -> Result<(), SecretRefused> {
    json::walk(value, &json::Path::Root(field))
}

/// Refuses a request whose strings, each fine alone, make a secret together: every string
/// in `value` that passes [`check_text`] on its own, joined in document order, checked
/// strictly; then likewise under the free-text rule (so a phrase split between an output
/// holding a transaction hash and another field is seen too). Strings that fail alone are
/// left to the field-by-field check, whose messages are more precise (a key in a wallet field
/// has its own). So a seed phrase split between `worker_id` and `models`, or over list items,
/// is refused as a whole.
pub fn check_joined(field: &str, value: &Value) -> Result<(), SecretRefused> {
    fn collect<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::String(s) => out.push(s),
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            Value::Object(map) => map.values().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut strings = Vec::new();
    collect(value, &mut strings);
    if strings.len() < 2 {
        return Ok(());
    }
    for rule in [Rule::Strict, Rule::FREE_TEXT] {
        let passing: Vec<&str> = strings
            .iter()
            .copied()
            .filter(|s| check_text_with("", s, rule).is_ok())
            .collect();
        if passing.len() > 1 {
            check_text_with(field, &passing.join(" "), rule)?;
        }
    }
    Ok(())
}

impl From<SecretRefused> for Problem {
    fn from(refused: SecretRefused) -> Self {
        let fix = format!("In `{}`: {}", refused.field, refused.fix());
        Problem::new(ErrorCode::SecretRefused, refused.message()).with_fix(fix)
    }
}
