//! Byte scanners for the fixed-shape secrets: 64-hex private keys, PEM private-key headers and
//! known API-key formats. Each is one linear pass over the bytes and allocates nothing.

use super::Finding;
use super::free_text::{Rule as HexRule, WalletChecks};

/// Whether `b` can be part of a word; every other byte (ASCII punctuation, whitespace and all
/// non-ASCII bytes) is a boundary.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// A token of exactly 64 hex characters, optionally prefixed by `0x`/`0X`, between boundaries.
///
/// Tokens are maximal runs of ASCII letters and digits, so a 64-hex run inside a longer hex or
/// alphanumeric run (a 65-hex run, a 130-character signature, `abc` + 64 hex) is not a key, and
/// a 40-hex address is too short. `_`, `-`, `:` and the like are boundaries.
/// Under [`HexRule::FreeText`] a token is refused only where the rule says (see `free_text`).
/// An error when the rule's wallet checks are spent.
pub(super) fn has_hex_key(
    text: &str,
    rule: HexRule<'_>,
    checks: &WalletChecks,
) -> Result<bool, Finding> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !is_word_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_word_byte(bytes[i]) {
            i += 1;
        }
        let token = &bytes[start..i];
        let body = match token {
            [b'0', b'x' | b'X', rest @ ..] if rest.len() == 64 => rest,
            _ => token,
        };
        if body.len() == 64
            && body.iter().all(u8::is_ascii_hexdigit)
            && rule.refuses_hex(text, start, body, checks)?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A PEM header `-----BEGIN <label>-----` whose label (on one line) contains `PRIVATE KEY`:
/// RSA, EC, DSA, OPENSSH, ENCRYPTED, PKCS#8 and PGP private key blocks.
pub(super) fn has_pem_private_key(text: &str) -> bool {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &[u8] = b"-----";
    const MAX_LABEL: usize = 64;
    let bytes = text.as_bytes();
    let mut from = 0;
    // `from` only ever moves past ASCII bytes, so it stays on a char boundary.
    while let Some(pos) = text.get(from..).and_then(|rest| rest.find(BEGIN)) {
        let label_start = from + pos + BEGIN.len();
        let window = &bytes[label_start..bytes.len().min(label_start + MAX_LABEL + DASHES.len())];
        if let Some(end) = find(window, DASHES) {
            let label = &window[..end];
            if !label.contains(&b'\n') && find(label, b"PRIVATE KEY").is_some() {
                return true;
            }
        }
        from = label_start;
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Which bytes may follow an API-key prefix.
#[derive(Clone, Copy)]
enum Class {
    /// `[A-Za-z0-9]`
    Alnum,
    /// `[A-Za-z0-9_]`
    AlnumUnderscore,
    /// `[A-Za-z0-9_-]`
    Token,
    /// `[A-Z0-9]`
    UpperDigit,
}

impl Class {
    fn contains(self, b: u8) -> bool {
        match self {
            Self::Alnum => b.is_ascii_alphanumeric(),
            Self::AlnumUnderscore => b.is_ascii_alphanumeric() || b == b'_',
            Self::Token => b.is_ascii_alphanumeric() || b == b'_' || b == b'-',
            Self::UpperDigit => b.is_ascii_uppercase() || b.is_ascii_digit(),
        }
    }
}

/// One key format: `prefix` at a word start, then at least `min` bytes of `class` (exactly
/// `min`, followed by a boundary, when `exact`).
struct Rule {
    prefix: &'static [u8],
    vendor: &'static str,
    min: usize,
    class: Class,
    exact: bool,
}

const fn rule(prefix: &'static str, vendor: &'static str, min: usize, class: Class) -> Rule {
    Rule {
        prefix: prefix.as_bytes(),
        vendor,
        min,
        class,
        exact: false,
    }
}

const fn exact(prefix: &'static str, vendor: &'static str, len: usize, class: Class) -> Rule {
    Rule {
        exact: true,
        ..rule(prefix, vendor, len, class)
    }
}

/// The formats, most specific first (`sk-ant-` before `sk-`).
const RULES: &[Rule] = &[
    rule("sk-ant-", "Anthropic", 20, Class::Token),
    rule("sk-", "OpenAI", 20, Class::Token),
    rule("sk_live_", "Stripe", 20, Class::Alnum),
    rule("sk_test_", "Stripe", 20, Class::Alnum),
    rule("rk_live_", "Stripe", 20, Class::Alnum),
    rule("rk_test_", "Stripe", 20, Class::Alnum),
    rule("ghp_", "GitHub", 36, Class::Alnum),
    rule("gho_", "GitHub", 36, Class::Alnum),
    rule("ghu_", "GitHub", 36, Class::Alnum),
    rule("ghs_", "GitHub", 36, Class::Alnum),
    rule("ghr_", "GitHub", 36, Class::Alnum),
    rule("github_pat_", "GitHub", 22, Class::AlnumUnderscore),
    rule("glpat-", "GitLab", 20, Class::Token),
    exact("AKIA", "AWS", 16, Class::UpperDigit),
    exact("ASIA", "AWS", 16, Class::UpperDigit),
    rule("AIza", "Google", 35, Class::Token),
    rule("hf_", "Hugging Face", 30, Class::Alnum),
    rule("xoxb-", "Slack", 20, Class::Token),
    rule("xoxp-", "Slack", 20, Class::Token),
    // basis's own orchestrator keys (`basis_<role>_` + 64 hex): in free text the 64-hex body
    // alone would pass as a hash.
    exact("basis_admin_", "basis", 64, Class::Alnum),
    exact("basis_client_", "basis", 64, Class::Alnum),
    exact("basis_evaluator_", "basis", 64, Class::Alnum),
];

/// The first bytes of the prefixes in [`RULES`]: a cheap filter before trying them (a test
/// checks that the two agree).
pub(super) const FIRST_BYTES: &[u8] = b"sgrAhxb";

/// Whether a key body has a digit or an uppercase letter. Real keys are random strings (the
/// chance that 20 random base64url characters have neither is below 1e-7); this keeps
/// hyphenated or `snake_case` names such as `sk-fine-tuned-summaries-model` from matching.
fn looks_random(body: &[u8]) -> bool {
    body.iter()
        .any(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// The vendor whose key format starts at the beginning of `rest`, if any.
fn key_at(rest: &[u8]) -> Option<&'static str> {
    let first = *rest.first()?;
    if !FIRST_BYTES.contains(&first) {
        return None;
    }
    RULES
        .iter()
        .filter(|rule| rule.prefix[0] == first)
        .find(|rule| {
            let Some(after) = rest.strip_prefix(rule.prefix) else {
                return false;
            };
            let len = after
                .iter()
                .take_while(|&&b| rule.class.contains(b))
                .count();
            let long_enough = if rule.exact {
                len == rule.min && after.get(len).is_none_or(|&b| !is_word_byte(b))
            } else {
                len >= rule.min
            };
            long_enough && looks_random(&after[..len])
        })
        .map(|rule| rule.vendor)
}

/// The vendor of the first known API-key format found in `text`, if any.
///
/// A prefix only counts at a word start (the previous byte is not an ASCII letter or digit), so
/// `task-…`, `risk-averse` or `desk-2` never match `sk-`.
pub(super) fn find_api_key(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !is_word_byte(bytes[start]) {
            start += 1;
            continue;
        }
        if let Some(vendor) = key_at(&bytes[start..]) {
            return Some(vendor);
        }
        // Skip the rest of the word: a prefix only starts at a word start.
        while start < bytes.len() && is_word_byte(bytes[start]) {
            start += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_match_the_rules() {
        let mut firsts: Vec<u8> = RULES.iter().map(|rule| rule.prefix[0]).collect();
        firsts.sort_unstable();
        firsts.dedup();
        let mut declared = FIRST_BYTES.to_vec();
        declared.sort_unstable();
        assert_eq!(firsts, declared);
    }
}
