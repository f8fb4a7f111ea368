//! The free-text rule for 64-hex values: where a hash belongs (a task output, a description,
//! an evaluation reason), a bare 64-hex value is most often a transaction hash or a digest, so
//! it passes unless something says it is a key.
//!
//! Under [`Rule::FreeText`] a 64-hex value (whole, `0x`-prefixed or split in groups) is refused
//! only when
//! - it is **labelled** as a key or secret: one of the four words before it on its line names
//!   one (`private key:`, `PRIVATE_KEY=`, `"secret": "…"`, `seed`, `token`, `pk`, …) and no
//!   word nearer to it says what else it is (`hash`, `digest`, `tx`, `root`, `public key`, …);
//! - it is one of the **host's own secrets** held in memory (the worker token, the evaluator
//!   key), in any case; or, at the orchestrator, its sha256 is the submitting worker's token
//!   verifier;
//! - it is the **private key of a known wallet**: its secp256k1 public key hashes to the
//!   worker's reward address (alloy's `Address::from_private_key`).
//!
//! Everything else the guard refuses (mnemonics, keystores, PEM, extended keys, WIF, API
//! keys, …) stays refused under every rule. [`Rule::Strict`], for ids, model names, URLs,
//! paths and wallet fields, refuses every 64-hex value.

use std::cell::Cell;

use alloy_primitives::Address;
use k256::ecdsa::SigningKey;
use subtle::ConstantTimeEq as _;

use super::{Finding, SecretKind};
use crate::domain::{TokenSha256, WalletAddress};

/// How many 64-hex values one check derives a wallet address from (about 0.1 ms each): past
/// this, the text is refused as uninspectable rather than let through unchecked or let burn a
/// core.
pub const MAX_WALLET_CHECKS: usize = 4096;

/// What is left of [`MAX_WALLET_CHECKS`] for one check.
pub(super) type WalletChecks = Cell<usize>;

/// A fresh allowance for one check.
pub(super) fn wallet_checks() -> WalletChecks {
    Cell::new(MAX_WALLET_CHECKS)
}

/// What a free-text check knows about the host's own secrets, to tell a private key from a
/// hash of the same shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostSecrets<'a> {
    /// Secrets held in memory (the worker token, the evaluator key): refused anywhere, in
    /// any case; a 64-hex value that is one of them, or the 64-hex body ending one
    /// (`basis_evaluator_` + 64 hex), is refused as a hash-shaped value too.
    pub known: &'a [&'a [u8]],
    /// Wallets whose private key is refused: a 64-hex value whose secp256k1 address is one
    /// of these.
    pub wallets: &'a [WalletAddress],
    /// Token verifiers (what the orchestrator stores): a 64-hex value whose sha256 is one of
    /// these is that worker's token.
    pub token_hashes: &'a [TokenSha256],
}

impl HostSecrets<'_> {
    /// Knows nothing about the host: only labels decide.
    pub const NONE: HostSecrets<'static> = HostSecrets {
        known: &[],
        wallets: &[],
        token_hashes: &[],
    };

    /// Whether the 64 hex digits `digits` are one of these secrets; an error once `checks`
    /// is spent.
    fn owns(&self, digits: &[u8], checks: &WalletChecks) -> Result<bool, Finding> {
        let lower = digits.to_ascii_lowercase();
        let ends_secret = |secret: &&[u8]| {
            secret.len() >= 64
                && bool::from(
                    secret[secret.len() - 64..]
                        .to_ascii_lowercase()
                        .ct_eq(&lower),
                )
        };
        if self.known.iter().any(ends_secret) {
            return Ok(true);
        }
        if !self.token_hashes.is_empty() {
            let verifier = TokenSha256::sha256(&lower);
            if self.token_hashes.contains(&verifier) {
                return Ok(true);
            }
        }
        if !self.wallets.is_empty() {
            let left = checks.get().checked_sub(1).ok_or(Finding {
                kind: SecretKind::Uninspectable,
                vendor: Some("more 64-hex values than basis checks against the wallet"),
            })?;
            checks.set(left);
            let mut key = [0u8; 32];
            if hex::decode_to_slice(&lower, &mut key).is_ok() {
                // Not every 32 bytes is a scalar (zero, or at least the group order): those
                // are no wallet's key.
                if let Ok(signing) = SigningKey::from_slice(&key) {
                    let address = Address::from_private_key(&signing);
                    return Ok(self.wallets.iter().any(|w| w.address() == address));
                }
            }
        }
        Ok(false)
    }
}

/// Which 64-hex rule a field is checked by.
#[derive(Debug, Clone, Copy)]
pub enum Rule<'a> {
    /// Ids, names, URLs, paths, wallet fields: every 64-hex value is refused.
    Strict,
    /// Outputs, descriptions, reasons: see the module doc.
    FreeText(&'a HostSecrets<'a>),
}

impl Rule<'_> {
    /// Free text, knowing nothing about the host.
    pub const FREE_TEXT: Rule<'static> = Rule::FreeText(&HostSecrets::NONE);

    /// Whether the 64 hex digits `digits`, found in `text` starting at byte `at` (the `0x`
    /// included), are refused; an error (uninspectable) once `checks` is spent.
    pub(super) fn refuses_hex(
        self,
        text: &str,
        at: usize,
        digits: &[u8],
        checks: &WalletChecks,
    ) -> Result<bool, Finding> {
        match self {
            Rule::Strict => Ok(true),
            Rule::FreeText(host) => Ok(labelled(text, at) || host.owns(digits, checks)?),
        }
    }
}

/// Words that name a key or a secret.
const SECRET_WORDS: &[&str] = &[
    "private",
    "priv",
    "privkey",
    "privatekey",
    "secret",
    "secrets",
    "seed",
    "key",
    "keys",
    "sk",
    "pk",
    "token",
    "password",
    "passwd",
    "pass",
    "passphrase",
    "mnemonic",
    "credential",
    "credentials",
    "apikey",
    "bearer",
    "auth",
    "signing",
    "signer",
    "wallet",
];

/// Words that say a value is something other than a key; nearer than a secret word, they win.
const HASH_WORDS: &[&str] = &[
    "hash",
    "hashes",
    "txhash",
    "tx",
    "txid",
    "transaction",
    "digest",
    "root",
    "merkle",
    "commit",
    "sha",
    "sha256",
    "sha3",
    "keccak",
    "keccak256",
    "blake2",
    "blake3",
    "checksum",
    "block",
    "blockhash",
    "id",
    "receipt",
    "output",
    "address",
    "pubkey",
    "publickey",
];

/// How far back on its line a label is looked for, bytes.
const LABEL_WINDOW: usize = 48;
/// How many words back.
const LABEL_WORDS: usize = 4;

/// Whether the words before byte `at` of `text` label the value there as a key or secret.
fn labelled(text: &str, at: usize) -> bool {
    let line = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let mut from = at.saturating_sub(LABEL_WINDOW).max(line);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let words = words(&text[from..at]);
    let mut nearest_first = words.iter().rev().take(LABEL_WORDS).peekable();
    while let Some(word) = nearest_first.next() {
        if HASH_WORDS.contains(&word.as_str()) {
            return false;
        }
        if word == "key"
            && nearest_first
                .peek()
                .is_some_and(|w| *w == "public" || *w == "pub")
        {
            return false;
        }
        if SECRET_WORDS.contains(&word.as_str()) {
            return true;
        }
    }
    false
}

/// The words of `s`, lowercase: runs of ASCII letters and digits, also split where a
/// lowercase letter meets a capital (`privateKey` is `private key`).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && prev_lower && !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = c.is_ascii_lowercase();
            word.push(c.to_ascii_lowercase());
        } else {
            prev_lower = false;
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

    fn free(text: &str) -> bool {
        let at = text
            .find(HEX)
            .map(|i| if text[..i].ends_with("0x") { i - 2 } else { i });
        at.is_some_and(|at| {
            Rule::FREE_TEXT.refuses_hex(text, at, HEX.as_bytes(), &wallet_checks()) == Ok(true)
        })
    }

    #[test]
    fn labels_refuse_and_hash_words_let_through() {
        for labelled in [
            format!("private key: {HEX}"),
            format!("PRIVATE_KEY={HEX}"),
            format!("{{\"privateKey\": \"0x{HEX}\"}}"),
            format!("my secret is {HEX}"),
            format!("seed 0x{HEX}"),
            format!("sk: {HEX}"),
            format!("wallet key = {HEX}"),
            format!("token {HEX}"),
        ] {
            assert!(free(&labelled), "{labelled}");
        }
        for plain in [
            HEX.to_owned(),
            format!("tx hash: 0x{HEX}"),
            format!("{{\"txHash\": \"0x{HEX}\"}}"),
            format!("the sha256 of the file is {HEX}"),
            format!("merkle root {HEX}"),
            format!("public key: {HEX}"),
            format!("key hash: {HEX}"),
            format!("private key on the line above\n{HEX}"),
            format!("a private key is never here, and this is long enough: {HEX}"),
        ] {
            assert!(!free(&plain), "{plain}");
        }
    }

    /// Whether `host` refuses the bare value `v`.
    fn hex(host: &HostSecrets<'_>, text: &str, digits: &[u8]) -> bool {
        Rule::FreeText(host).refuses_hex(text, 0, digits, &wallet_checks()) == Ok(true)
    }

    #[test]
    fn the_hosts_own_secrets_are_refused_unlabelled() {
        // The address of the well-known key HEX (it appears in web3 docs).
        let wallet = WalletAddress::parse("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")
            .expect("a valid address");
        let wallets = [wallet];
        let host = HostSecrets {
            wallets: &wallets,
            ..HostSecrets::NONE
        };
        assert!(hex(&host, HEX, HEX.as_bytes()));
        let upper = HEX.to_ascii_uppercase();
        assert!(hex(&host, &upper, upper.as_bytes()));
        let other = "1c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        assert!(!hex(&host, other, other.as_bytes()));

        let known: [&[u8]; 1] = [HEX.as_bytes()];
        let host = HostSecrets {
            known: &known,
            ..HostSecrets::NONE
        };
        assert!(hex(&host, &upper, upper.as_bytes()));
        assert!(!hex(&host, other, other.as_bytes()));

        let hashes = [TokenSha256::sha256(HEX.as_bytes())];
        let host = HostSecrets {
            token_hashes: &hashes,
            ..HostSecrets::NONE
        };
        assert!(hex(&host, HEX, HEX.as_bytes()));
        assert!(!hex(&host, other, other.as_bytes()));
        // Not a scalar: no wallet's key, and no panic.
        let zero = "0".repeat(64);
        let order = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
        let host = HostSecrets {
            wallets: &wallets,
            ..HostSecrets::NONE
        };
        for v in [zero.as_str(), order] {
            assert!(!hex(&host, v, v.as_bytes()));
        }
    }

    #[test]
    fn wallet_checks_are_bounded() {
        let wallet = WalletAddress::parse("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")
            .expect("a valid address");
        let wallets = [wallet];
        let host = HostSecrets {
            wallets: &wallets,
            ..HostSecrets::NONE
        };
        let checks = Cell::new(2);
        let other = "1c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        let rule = Rule::FreeText(&host);
        assert_eq!(
            rule.refuses_hex(other, 0, other.as_bytes(), &checks),
            Ok(false)
        );
        assert_eq!(
            rule.refuses_hex(other, 0, other.as_bytes(), &checks),
            Ok(false)
        );
        let spent = rule.refuses_hex(other, 0, other.as_bytes(), &checks);
        assert_eq!(spent.map_err(|f| f.kind), Err(SecretKind::Uninspectable));
    }

    #[test]
    fn strict_refuses_every_64_hex() {
        assert_eq!(
            Rule::Strict.refuses_hex(HEX, 0, HEX.as_bytes(), &wallet_checks()),
            Ok(true)
        );
    }

    #[test]
    fn words_split_camel_case_and_punctuation() {
        assert_eq!(words("\"privateKey\": "), ["private", "key"]);
        assert_eq!(words("ETH_PRIVATE_KEY="), ["eth", "private", "key"]);
        assert_eq!(words("txHash"), ["tx", "hash"]);
    }
}
