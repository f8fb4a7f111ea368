//! `Redactor`: what keeps secrets out of the worker log, `status` and `logs` (docs/SECURITY.md,
//! "Identity: worker id, wallet, token"). Line by line: the env file's token is replaced wherever
//! it appears; then any word the secrets guard ([`crate::guard::redact_line`]) flags (a 64-hex key,
//! an API key, …) is replaced; if the line is still flagged (a seed phrase, a PEM block header
//! spans words), the whole line is withheld.
//!
//! A 64-hex job id or hash in a log line is redacted too: the guard cannot tell it from a key,
//! and a lost hash in a log costs less than a leaked key.

use std::borrow::Cow;
use std::path::Path;

use crate::config::WorkerEnv;
use crate::domain::WorkerToken;
pub use crate::guard::REDACTED;
use crate::guard::redact_line;

/// Redacts lines of text. Its `Debug` never shows the token (`WorkerToken` redacts itself).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    token: Option<WorkerToken>,
}

impl Redactor {
    /// Redacts the guard's findings and, when given, this token.
    pub fn new(token: Option<WorkerToken>) -> Self {
        Self { token }
    }

    /// A redactor for the token in the env file at `path`; an unreadable file gives one that
    /// redacts the guard's findings only (which include every 64-hex token).
    pub fn from_env_file(path: &Path) -> Self {
        let token = WorkerEnv::read(path).ok().and_then(|env| env.token);
        Self { token }
    }

    /// The line with secrets replaced by [`REDACTED`], or a notice in place of the whole line.
    pub fn redact<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(line);
        if let Some(token) = &self.token {
            let secret = token.expose_secret();
            if text.contains(secret) {
                text = Cow::Owned(text.replace(secret, REDACTED));
            }
        }
        match redact_line(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(redacted) => Cow::Owned(redacted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

    #[test]
    fn plain_lines_pass_unchanged() {
        let r = Redactor::default();
        let line =
            "INFO job job-1 done in 12 ms (wallet 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed)";
        assert!(matches!(r.redact(line), Cow::Borrowed(_)));
    }

    #[test]
    fn the_token_and_key_like_words_are_replaced() {
        let token = WorkerToken::generate();
        let secret = token.expose_secret().to_owned();
        let r = Redactor::new(Some(token));
        let line = format!("connecting with Bearer {secret} now");
        let out = r.redact(&line);
        assert_eq!(out, "connecting with Bearer [REDACTED] now");
        // Glued to other text, the token is still found.
        let line = format!("token={secret};");
        let out = r.redact(&line);
        assert!(!out.contains(&secret), "{out}");
        let line = format!("key:\t{KEY}  tail");
        let out = r.redact(&line);
        assert_eq!(out, "key:\t[REDACTED]  tail");
        let out = r.redact("using sk-ant-api03-AbCdEf0123456789xyz for x");
        assert!(!out.contains("sk-ant"), "{out}");
        assert!(out.ends_with("for x"));
    }

    #[test]
    fn a_seed_phrase_withholds_the_line() {
        let phrase =
            "abandon ability able about above absent absorb abstract absurd abuse access accident";
        let line = format!("oops {phrase}");
        let out = Redactor::default().redact(&line);
        assert!(
            out.starts_with("[REDACTED: a line that looked like a seed phrase"),
            "{out}"
        );
        assert!(!out.contains("abandon"));
    }
}
