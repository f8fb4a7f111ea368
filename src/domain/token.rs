//! `WorkerToken`: the one secret (docs/SECURITY.md, "Identity: worker id, wallet, device key"). 32
//! random bytes as 64 lowercase hex, generated on the worker's host, written only into the 0600
//! env file. Debug and Display redact it, it has no
//! `Serialize`, it is zeroized on drop and compared in constant time.

use std::borrow::Cow;
use std::fmt;

use rand::RngCore;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

use super::hash::TokenSha256;

/// Length of a token's text form.
pub const TOKEN_HEX_LEN: usize = 64;

/// Why a string is not a worker token. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a worker token is 64 lowercase hex characters (the value was not shown)")]
    Malformed,
}

/// The worker's bearer token. Only the env-file writer and the HTTP/WebSocket clients ever
/// call [`WorkerToken::expose_secret`].
pub struct WorkerToken(SecretString);

impl WorkerToken {
    /// 32 bytes from the thread's CSPRNG (ChaCha, seeded from the OS), hex encoded.
    pub fn generate() -> Self {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let text = hex::encode(raw);
        raw.zeroize();
        Self(SecretString::from(text))
    }

    pub fn parse(s: &str) -> Result<Self, TokenError> {
        let ok = s.len() == TOKEN_HEX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if ok {
            Ok(Self(SecretString::from(s.to_owned())))
        } else {
            Err(TokenError::Malformed)
        }
    }

    /// The secret text. Callers: the env-file writer, and `Authorization` headers.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The verifier registration sends and the orchestrator stores.
    pub fn sha256(&self) -> TokenSha256 {
        TokenSha256::sha256(self.expose_secret().as_bytes())
    }

    /// First 8 hex of the sha256: safe to show, enough to tell tokens apart.
    pub fn fingerprint(&self) -> TokenFingerprint {
        TokenFingerprint::of(&self.sha256())
    }

    /// Does this token hash to `verifier`? Constant time.
    pub fn matches(&self, verifier: &TokenSha256) -> bool {
        self.sha256().ct_eq(verifier)
    }

    /// Constant-time equality of two tokens.
    pub fn ct_eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(
            self.expose_secret().as_bytes(),
            other.expose_secret().as_bytes(),
        )
        .into()
    }
}

impl Clone for WorkerToken {
    fn clone(&self) -> Self {
        Self(SecretString::from(self.expose_secret().to_owned()))
    }
}

impl fmt::Debug for WorkerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkerToken([REDACTED])")
    }
}

impl fmt::Display for WorkerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// The first 8 hex characters of a token's sha256.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenFingerprint(String);

impl TokenFingerprint {
    pub fn of(verifier: &TokenSha256) -> Self {
        Self(hex::encode(&verifier.as_bytes()[..4]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenFingerprint({})", self.0)
    }
}

impl Serialize for TokenFingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TokenFingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        if s.len() == 8
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.into_owned()))
        } else {
            Err(serde::de::Error::custom(
                "a token fingerprint is 8 lowercase hex characters",
            ))
        }
    }
}

impl JsonSchema for TokenFingerprint {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "TokenFingerprint".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9a-f]{8}$",
            "description": "First 8 hex of sha256(token): identifies the token without revealing it."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_64_hex_and_distinct() {
        let a = WorkerToken::generate();
        let b = WorkerToken::generate();
        assert_eq!(a.expose_secret().len(), TOKEN_HEX_LEN);
        assert!(WorkerToken::parse(a.expose_secret()).is_ok());
        assert!(!a.ct_eq(&b));
        assert!(a.ct_eq(&a.clone()));
    }

    #[test]
    fn formatting_never_reveals_the_token() {
        let t = WorkerToken::generate();
        let secret = t.expose_secret().to_owned();
        for shown in [format!("{t}"), format!("{t:?}"), format!("{t:#?}")] {
            assert!(!shown.contains(&secret));
            assert!(shown.contains("[REDACTED]"));
        }
    }

    #[test]
    fn verifier_and_fingerprint() {
        let t = WorkerToken::parse(&"ab".repeat(32)).unwrap();
        let v = t.sha256();
        assert!(t.matches(&v));
        assert!(!WorkerToken::generate().matches(&v));
        assert_eq!(t.fingerprint().as_str(), &v.to_string()[2..10]);
    }

    #[test]
    fn malformed_tokens_refused_without_echo() {
        for bad in ["", "xyz", &"AB".repeat(32), &"ab".repeat(33)] {
            let e = WorkerToken::parse(bad).unwrap_err();
            if !bad.is_empty() {
                assert!(!e.to_string().contains(bad));
            }
        }
    }
}
