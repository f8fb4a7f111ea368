//! Key and token formats beyond 64 hex: basis device keys (`device_key`), BIP-32 extended private keys (`xprv`, `tprv`, `zprv`,
//! …), WIF private keys, Solana keypairs (base58, and the JSON byte array of `solana-keygen`),
//! JWTs, AWS secret access keys (where labelled), and 64-hex keys written in groups split by
//! spaces, dashes or colons. Each check is exact enough to let the public values that share an
//! alphabet through: an `xpub`, a bitcoin address, a Solana signature or public key, a UUID.

use sha2::{Digest, Sha256};

use super::free_text::{Rule, WalletChecks};
use super::{Finding, SecretKind};

/// The first format `text` holds, if any.
pub(super) fn find(text: &str, rule: Rule<'_>, checks: &WalletChecks) -> Option<Finding> {
    let key = |vendor| Finding {
        kind: SecretKind::PrivateKey,
        vendor: Some(vendor),
    };
    let token = |vendor| Finding {
        kind: SecretKind::ApiKey,
        vendor: Some(vendor),
    };
    if super::device_key::has_device_key(text) {
        return Some(key("basis device key"));
    }
    for word in base58_words(text) {
        if is_extended_private_key(word) {
            return Some(key("BIP-32 extended private key"));
        }
        if is_wif(word) {
            return Some(key("WIF"));
        }
        if is_solana_keypair_base58(word) {
            return Some(key("Solana keypair"));
        }
    }
    if has_solana_keypair_array(text) {
        return Some(key("Solana keypair byte array"));
    }
    if has_jwt(text) {
        return Some(token("JWT"));
    }
    if has_labelled_aws_secret(text) {
        return Some(token("AWS secret access key"));
    }
    match has_split_hex_key(text, rule, checks) {
        Ok(true) => return Some(key("64 hex characters in groups")),
        Err(spent) => return Some(spent),
        Ok(false) => {}
    }
    None
}

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Maximal runs of base58 characters, 50 long or more (every format here is).
fn base58_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii() || !BASE58.contains(&(c as u8)))
        .filter(|w| w.len() >= 50)
}

/// Base58check: the payload if the last four bytes are its double-SHA-256 checksum.
fn base58check(word: &str) -> Option<Vec<u8>> {
    let mut bytes = bs58::decode(word).into_vec().ok()?;
    if bytes.len() < 5 {
        return None;
    }
    let sum = bytes.split_off(bytes.len() - 4);
    let digest = Sha256::digest(Sha256::digest(&bytes));
    (digest[..4] == sum[..]).then_some(bytes)
}

/// `xprv…`, `tprv…`, `yprv…`, `zprv…` (and the upper-case multisig forms): a 78-byte
/// base58check payload.
fn is_extended_private_key(word: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "xprv", "tprv", "yprv", "zprv", "uprv", "vprv", "Yprv", "Zprv", "Uprv", "Vprv",
    ];
    PREFIXES.iter().any(|p| word.starts_with(p))
        && base58check(word).is_some_and(|payload| payload.len() == 78)
}

/// Wallet import format: version 0x80 (mainnet) or 0xef (testnet), 32 key bytes, an optional
/// 0x01 compression flag, base58check.
fn is_wif(word: &str) -> bool {
    if !(51..=52).contains(&word.len()) {
        return false;
    }
    match base58check(word).as_deref() {
        Some([0x80 | 0xef, rest @ ..]) => rest.len() == 32 || (rest.len() == 33 && rest[32] == 1),
        _ => false,
    }
}

/// 64 bytes whose second half is the Ed25519 public key of the first: a Solana (or any
/// Ed25519) keypair. A signature or two concatenated public keys never are.
fn is_keypair(bytes: &[u8]) -> bool {
    let (Ok(seed), Ok(public)) = (
        <[u8; 32]>::try_from(&bytes[..bytes.len().min(32)]),
        <[u8; 32]>::try_from(&bytes[bytes.len().min(32)..]),
    ) else {
        return false;
    };
    ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes()
        == public
}

fn is_solana_keypair_base58(word: &str) -> bool {
    (85..=88).contains(&word.len())
        && bs58::decode(word)
            .into_vec()
            .is_ok_and(|bytes| bytes.len() == 64 && is_keypair(&bytes))
}

/// `[12, 255, …]`: a JSON array of exactly 64 byte values that is a keypair.
fn has_solana_keypair_array(text: &str) -> bool {
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            return false;
        };
        let inside = &after[..close];
        let bytes: Option<Vec<u8>> = inside.split(',').map(|n| n.trim().parse().ok()).collect();
        if let Some(bytes) = bytes
            && bytes.len() == 64
            && is_keypair(&bytes)
        {
            return true;
        }
        rest = after;
    }
    false
}

/// `eyJ….eyJ….sig`: three base64url segments whose first two are JSON objects.
fn has_jwt(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .any(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && parts[0].starts_with("eyJ")
                && parts[1].starts_with("eyJ")
                && parts.iter().all(|p| p.len() >= 8)
        })
}

/// A 40-character AWS secret access key after a label that names it
/// (`aws_secret_access_key = …`, `"SecretAccessKey": "…"`).
fn has_labelled_aws_secret(text: &str) -> bool {
    const LABELS: &[&str] = &[
        "secret_access_key",
        "secretaccesskey",
        "aws_secret",
        "secret-access-key",
    ];
    let lower = text.to_ascii_lowercase();
    LABELS.iter().any(|label| {
        lower.match_indices(label).any(|(at, _)| {
            // The rest of the identifier (`aws_secret` + `_access_key`), then at least one
            // separator, then the value.
            let tail = &text[at + label.len()..];
            let tail = tail
                .trim_start_matches(|c: char| c.is_ascii_alphabetic() || matches!(c, '_' | '-'));
            let value = tail.trim_start_matches(['"', '\'', ':', '=', ' ', '\t']);
            if value.len() == tail.len() {
                return false;
            }
            let word: String = value
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '+'))
                .collect();
            word.len() == 40
        })
    })
}

/// 64 hex digits in two or more groups joined by one separator (` `, `-` or `:`), the whole
/// between boundaries: `4c08 83a6 …`, `4c:08:83:…`; refused where `rule` says.
fn has_split_hex_key(text: &str, rule: Rule<'_>, checks: &WalletChecks) -> Result<bool, Finding> {
    let bytes = text.as_bytes();
    let boundary = |i: usize| i >= bytes.len() || !bytes[i].is_ascii_alphanumeric();
    let mut i = 0;
    while i < bytes.len() {
        // A sequence starts at a word that no hex group joins from the left (else it is the
        // tail of a longer sequence, already judged whole).
        let at_start =
            i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && !continues_hex_group(bytes, i - 1);
        if !(at_start && bytes[i].is_ascii_hexdigit()) {
            i += 1;
            continue;
        }
        let mut j = i;
        let (mut digits, mut groups, mut sep) = (0usize, 0usize, None);
        let mut key = Vec::with_capacity(64);
        loop {
            let start = j;
            while j < bytes.len() && bytes[j].is_ascii_hexdigit() {
                j += 1;
            }
            if j == start || !boundary(j) && !matches!(bytes[j], b' ' | b'-' | b':') {
                break;
            }
            digits += j - start;
            groups += 1;
            if digits <= 64 {
                key.extend_from_slice(&bytes[start..j]);
            }
            if digits == 64 && groups >= 2 && boundary(j) {
                let next_is_hex = j + 1 < bytes.len()
                    && Some(bytes[j]) == sep
                    && bytes[j + 1].is_ascii_hexdigit();
                if !next_is_hex && rule.refuses_hex(text, i, &key, checks)? {
                    return Ok(true);
                }
            }
            if digits > 64 || j >= bytes.len() {
                break;
            }
            match sep {
                None if matches!(bytes[j], b' ' | b'-' | b':') => sep = Some(bytes[j]),
                Some(s) if bytes[j] == s => {}
                _ => break,
            }
            j += 1;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
    }
    Ok(false)
}

/// Whether the separator at `sep` follows a word made only of hex digits.
fn continues_hex_group(bytes: &[u8], sep: usize) -> bool {
    if !matches!(bytes[sep], b' ' | b'-' | b':') {
        return false;
    }
    let word = bytes[..sep]
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_alphanumeric())
        .collect::<Vec<_>>();
    !word.is_empty() && word.iter().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::super::free_text::wallet_checks;
    use super::*;

    const HEX: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

    fn has_split_hex_key_strict(text: &str) -> bool {
        has_split_hex_key(text, Rule::Strict, &wallet_checks()) == Ok(true)
    }

    fn found(text: &str) -> Option<&'static str> {
        find(text, Rule::Strict, &wallet_checks()).and_then(|f| f.vendor)
    }

    #[test]
    fn extended_keys_and_wif_are_found_and_their_public_forms_pass() {
        // BIP-32 test vector 1, chain m.
        let xprv = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";
        let xpub = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";
        assert_eq!(
            found(&format!("my key {xprv}")),
            Some("BIP-32 extended private key")
        );
        assert_eq!(found(xpub), None);
        // The WIF of private key 1 (compressed), and of the 0x0c28…1d key (uncompressed).
        assert_eq!(
            found("KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn"),
            Some("WIF")
        );
        assert_eq!(
            found("5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ"),
            Some("WIF")
        );
        // A bitcoin address (base58check, 25 bytes) passes; a mistyped WIF (bad checksum) too.
        assert_eq!(found("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"), None);
        assert_eq!(
            found("KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWm"),
            None
        );
    }

    #[test]
    fn solana_keypairs_are_found_and_signatures_pass() {
        let signing = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let mut pair = [7u8; 32].to_vec();
        pair.extend_from_slice(&signing.verifying_key().to_bytes());
        let b58 = bs58::encode(&pair).into_string();
        assert_eq!(found(&b58), Some("Solana keypair"));
        let array = format!(
            "[{}]",
            pair.iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert_eq!(found(&array), Some("Solana keypair byte array"));
        // 64 bytes that are not a keypair (a signature's shape) pass, base58 or array.
        let other = [9u8; 64];
        assert_eq!(found(&bs58::encode(other).into_string()), None);
        let array = format!("[{}]", other.map(|b| b.to_string()).join(","));
        assert_eq!(found(&array), None);
    }

    #[test]
    fn jwts_and_labelled_aws_secrets_are_found() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        assert_eq!(found(&format!("Authorization: Bearer {jwt}")), Some("JWT"));
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        assert_eq!(
            found(&format!("aws_secret_access_key = {secret}")),
            Some("AWS secret access key")
        );
        assert_eq!(
            found(&format!("{{\"SecretAccessKey\": \"{secret}\"}}")),
            Some("AWS secret access key")
        );
        // The same 40 characters unlabelled (a path, a base64 digest) pass.
        assert_eq!(found(secret), None);
        assert_eq!(found("version 1.2.3 of the model"), None);
    }

    #[test]
    fn hex_keys_in_groups_are_found_and_uuids_and_short_runs_pass() {
        for sep in [" ", "-", ":"] {
            let grouped: Vec<&str> = (0..16).map(|i| &HEX[i * 4..i * 4 + 4]).collect();
            assert!(has_split_hex_key_strict(&grouped.join(sep)), "{sep}");
            let pairs: Vec<&str> = (0..32).map(|i| &HEX[i * 2..i * 2 + 2]).collect();
            assert!(
                has_split_hex_key_strict(&format!("key: {}.", pairs.join(sep))),
                "{sep}"
            );
        }
        assert!(!has_split_hex_key_strict(
            "123e4567-e89b-12d3-a456-426614174000"
        ));
        assert!(!has_split_hex_key_strict("dead beef cafe babe"));
        assert!(
            !has_split_hex_key_strict(HEX),
            "a whole 64-hex run is the plain scanner's"
        );
        // 64 digits then more groups: a longer value, not a key.
        let grouped: Vec<&str> = (0..16).map(|i| &HEX[i * 4..i * 4 + 4]).collect();
        assert!(!has_split_hex_key_strict(&format!(
            "{} abcd",
            grouped.join(" ")
        )));
    }
}
