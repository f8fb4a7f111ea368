//! 32-byte digests shown as `0x` + 64 lowercase hex: `OutputHash` (keccak256 of raw output
//! bytes), `ReceiptHash` (keccak256 of a canonical receipt) and `TokenSha256` (the verifier the
//! orchestrator stores instead of a worker token).
//!
//! These are hash types: the secrets guard exempts them by type, never by field name.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Why a string is not a digest of the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("{kind} must be 0x followed by 64 hex characters")]
    Malformed { kind: &'static str },
}

/// keccak256 of `bytes` as `0x` + 64 lowercase hex.
pub fn keccak256_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(alloy_primitives::keccak256(bytes)))
}

fn parse_digest(s: &str, kind: &'static str) -> Result<[u8; 32], HashError> {
    let body = s.strip_prefix("0x").ok_or(HashError::Malformed { kind })?;
    let mut out = [0u8; 32];
    if body.len() != 64 {
        return Err(HashError::Malformed { kind });
    }
    hex::decode_to_slice(body, &mut out).map_err(|_| HashError::Malformed { kind })?;
    Ok(out)
}

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $desc:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name([u8; 32]);

        impl $name {
            pub const PATTERN: &'static str = "^0x[0-9a-fA-F]{64}$";

            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// Parses `0x` + 64 hex (either case; shown lowercase).
            pub fn parse(s: &str) -> Result<Self, HashError> {
                parse_digest(s, $kind).map(Self)
            }

            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "0x{}", hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(0x{})", stringify!($name), hex::encode(self.0))
            }
        }

        impl FromStr for $name {
            type Err = HashError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Cow::<str>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": Self::PATTERN, "description": $desc })
            }
        }
    };
}

digest_type!(
    /// keccak256 of the raw output bytes of a task or job.
    OutputHash, "output_hash", "keccak256 of the raw output bytes: 0x + 64 hex."
);
digest_type!(
    /// keccak256 of the RFC 8785 canonical JSON of a receipt without its hash.
    ReceiptHash, "receipt_hash", "keccak256(JCS(receipt without receipt_hash)): 0x + 64 hex."
);
digest_type!(
    /// sha256 of a worker token: what registration sends and the orchestrator stores.
    TokenSha256, "token_sha256", "sha256 of the worker token (never the token itself): 0x + 64 hex."
);

impl OutputHash {
    /// keccak256 of the raw bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self(alloy_primitives::keccak256(bytes).0)
    }
}

impl ReceiptHash {
    pub(crate) fn keccak(bytes: &[u8]) -> Self {
        Self(alloy_primitives::keccak256(bytes).0)
    }
}

impl TokenSha256 {
    /// The sha256 of a credential's bytes: a legacy token's text, or a device public key's 32
    /// bytes (what registration sends as `token_sha256` with a `public_key`).
    pub fn sha256(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Constant-time equality: the orchestrator compares stored verifiers with this.
    pub fn ct_eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keccak256_vectors() {
        // Ethereum's keccak256 (not NIST SHA3-256).
        assert_eq!(
            OutputHash::of(b"").to_string(),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(
            OutputHash::of(b"hello").to_string(),
            "0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8"
        );
        assert_eq!(
            keccak256_hex(b"The quick brown fox jumps over the lazy dog"),
            "0x4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15"
        );
    }

    #[test]
    fn parse_is_strict_and_display_lowercase() {
        let h = OutputHash::of(b"x");
        let upper = format!("0x{}", h.to_string()[2..].to_ascii_uppercase());
        assert_eq!(OutputHash::parse(&upper).unwrap(), h);
        assert!(OutputHash::parse(&h.to_string()[2..]).is_err());
        assert!(OutputHash::parse("0x1234").is_err());
        assert!(OutputHash::parse(&format!("0x{}", "z".repeat(64))).is_err());
    }

    #[test]
    fn sha256_vector() {
        assert_eq!(
            TokenSha256::sha256(b"abc").to_string(),
            "0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
