//! `Redactor`: what keeps secrets out of the worker log, `status` and `logs` (docs/SECURITY.md,
//! "Identity: worker id, wallet, device key"). Line by line: the env file's device keys (their
//! text and their base64url body) and legacy token are replaced wherever they appear; then any word the secrets guard ([`crate::guard::redact_line`]) flags (a 64-hex key,
//! an API key, …) is replaced; if the line is still flagged (a seed phrase, a PEM block header
//! spans words), the whole line is withheld.
//!
//! A 64-hex job id or hash in a log line is redacted too: the guard cannot tell it from a key,
//! and a lost hash in a log costs less than a leaked key.

use std::borrow::Cow;
use std::path::Path;

use zeroize::Zeroizing;

use crate::config::WorkerEnv;
use crate::domain::{DEVICE_KEY_PREFIX, WorkerToken};
pub use crate::guard::REDACTED;
use crate::guard::redact_line;

/// Redacts lines of text. Its `Debug` never shows the token (`WorkerToken` redacts itself) or
/// a key's text.
#[derive(Clone, Default)]
pub struct Redactor {
    token: Option<WorkerToken>,
    /// The device keys' text forms, then their base64url bodies (what follows `basis_dk_`), so
    /// a whole key goes as one word.
    keys: Vec<Zeroizing<String>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("token", &self.token)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Redactor {
    /// Redacts the guard's findings and, when given, this token.
    pub fn new(token: Option<WorkerToken>) -> Self {
        Self {
            token,
            keys: Vec::new(),
        }
    }

    /// A redactor for the device keys and token in the env file at `path`; an unreadable file
    /// gives one that redacts the guard's findings only (which include every device key's
    /// text and every 64-hex token).
    pub fn from_env_file(path: &Path) -> Self {
        let Ok(env) = WorkerEnv::read(path) else {
            return Self::default();
        };
        let keys = [&env.device_key, &env.device_key_next]
            .into_iter()
            .flatten()
            .flat_map(|k| {
                let text = k.expose_secret();
                let body = Zeroizing::new(text[DEVICE_KEY_PREFIX.len()..].to_owned());
                [text, body]
            })
            .collect();
        Self {
            token: env.token,
            keys,
        }
    }

    /// The line with secrets replaced by [`REDACTED`], or a notice in place of the whole line.
    pub fn redact<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(line);
        let token = self.token.as_ref().map(WorkerToken::expose_secret);
        let bodies = self.keys.iter().map(|k| k.as_str());
        for secret in token.into_iter().chain(bodies) {
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
    fn the_env_files_device_key_is_replaced_even_without_its_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.env");
        let mut env = WorkerEnv::default();
        env.ensure_device_key();
        let allowed = crate::config::AllowedDirs::new(dir.path(), dir.path(), []);
        env.write(&path, &allowed).unwrap();
        let text = env.device_key.as_ref().unwrap().expose_secret();
        let body = &text[DEVICE_KEY_PREFIX.len()..];
        let r = Redactor::from_env_file(&path);
        assert_eq!(r.redact(&format!("key {} ok", *text)), "key [REDACTED] ok");
        let line = format!("seed={body}!");
        assert!(!r.redact(&line).contains(body));
        assert!(!format!("{r:?}").contains(body));
        // Without the file, the guard still finds the prefixed form.
        let line = format!("key {}", *text);
        let out = Redactor::default().redact(&line);
        assert!(!out.contains(body), "{out}");
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
