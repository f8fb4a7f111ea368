//! API keys: roles, the stored form (sha256 only) and the [`KeyStore`] trait.

use std::fmt;
use std::str::FromStr;

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::StoreError;
use crate::wire::{ApiKey, KEY_ID_HEX, KeyLimits, KeyUsage};

/// What a key lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// Operator: re-register any worker id, resolve disputes.
    Admin,
    /// Gateway and task-posting clients.
    Client,
    /// Evaluates submissions.
    Evaluator,
}

impl KeyRole {
    pub const ALL: [Self; 3] = [Self::Admin, Self::Client, Self::Evaluator];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Client => "client",
            Self::Evaluator => "evaluator",
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key role must be one of: admin, client, evaluator")]
pub struct UnknownKeyRole;

impl FromStr for KeyRole {
    type Err = UnknownKeyRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownKeyRole)
    }
}

/// sha256 of a key's text: the only form the orchestrator keeps. Debug shows a prefix only.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySha256(pub [u8; 32]);

impl KeySha256 {
    pub fn of(key: &str) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }

    /// Parses `0x` + 64 hex (as written in orchestrator.toml).
    pub fn parse(s: &str) -> Option<Self> {
        let body = s.strip_prefix("0x").unwrap_or(s);
        let mut out = [0u8; 32];
        (body.len() == 64 && hex::decode_to_slice(body, &mut out).is_ok()).then_some(Self(out))
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]).into()
    }
}

impl fmt::Display for KeySha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for KeySha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySha256(0x{}…)", hex::encode(&self.0[..4]))
    }
}

/// A UTC day, as days since 1970-01-01: what `tokens_per_day` and `key_usage` count by.
pub fn utc_day(unix_s: u64) -> u64 {
    unix_s / 86_400
}

/// A stored key, for the operator's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    pub sha256: KeySha256,
    pub role: KeyRole,
    pub label: Option<String>,
    pub created_at: u64,
    pub revoked_at: Option<u64>,
    pub limits: KeyLimits,
    /// Its usage on the day asked for.
    pub usage: KeyUsage,
}

impl KeyEntry {
    /// As `GET /api/keys` shows it.
    pub fn to_wire(&self) -> ApiKey {
        let hex = hex::encode(self.sha256.0);
        ApiKey {
            id: format!("key:{}", &hex[..KEY_ID_HEX]),
            sha256: format!("0x{hex}"),
            role: self.role.as_str().to_owned(),
            label: self.label.clone(),
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            limits: self.limits,
            usage_today: self.usage,
        }
    }
}

/// What the gateway needs to know of a (not revoked) key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGrant {
    pub role: KeyRole,
    pub limits: KeyLimits,
    /// Its usage on the day asked for, as recorded so far (every replica's jobs).
    pub usage: KeyUsage,
}

/// Stored API keys.
pub trait KeyStore {
    /// Stores a new key's hash with its role and quotas.
    fn insert_key(
        &self,
        role: KeyRole,
        sha256: KeySha256,
        label: Option<String>,
        limits: KeyLimits,
        now: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The role of the (not revoked) key with this hash, if any.
    fn key_role(&self, sha256: KeySha256) -> BoxFuture<'_, Result<Option<KeyRole>, StoreError>>;

    /// The role, quotas and usage on `day` of the (not revoked) key with this hash, if any.
    fn key_grant(
        &self,
        sha256: KeySha256,
        day: u64,
    ) -> BoxFuture<'_, Result<Option<KeyGrant>, StoreError>>;

    /// Every key, revoked ones included, oldest first, with its usage on `day`.
    fn keys(&self, day: u64) -> BoxFuture<'_, Result<Vec<KeyEntry>, StoreError>>;

    /// The key's usage on each day from `from_day` to `to_day` it was used, oldest first.
    fn key_usage(
        &self,
        sha256: KeySha256,
        from_day: u64,
        to_day: u64,
    ) -> BoxFuture<'_, Result<Vec<(u64, KeyUsage)>, StoreError>>;

    /// Revokes the key at `now`; revoking it again keeps the first time. False: no such key.
    fn revoke_key(&self, sha256: KeySha256, now: u64) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Replaces the key's quotas. False: no such key.
    fn set_key_limits(
        &self,
        sha256: KeySha256,
        limits: KeyLimits,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_parse_and_display_round_trip() {
        let h = KeySha256::of("abc");
        assert_eq!(
            h.to_string(),
            "0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(KeySha256::parse(&h.to_string()), Some(h));
        assert!(KeySha256::parse("0x12").is_none());
        assert!(h.ct_eq(&KeySha256::of("abc")));
        assert!(!h.ct_eq(&KeySha256::of("abd")));
        for r in KeyRole::ALL {
            assert_eq!(r.as_str().parse::<KeyRole>(), Ok(r));
        }
    }
}
