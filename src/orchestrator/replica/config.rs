//! `[replica]` in orchestrator.toml: who this replica is among the replicas on one database,
//! where the others reach it, and the secret they sign their calls with.
//!
//! ```toml
//! [replica]
//! id = "orch-a"                          # or BASIS_REPLICA_ID; unique per replica
//! internal_url = "http://10.0.0.5:8787"  # or BASIS_REPLICA_URL; default: the bound address
//! secret_file = "/etc/basis/replica.secret"  # or the secret itself in BASIS_REPLICA_SECRET
//! ```
//!
//! Every replica of a deployment holds the same secret (at least 32 characters, e.g.
//! `openssl rand -hex 32`); it never travels: calls carry an HMAC over it (see `sign`).

use std::path::PathBuf;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq as _;
use url::Url;

use crate::domain::ReplicaId;

pub const ENV_REPLICA_ID: &str = "BASIS_REPLICA_ID";
pub const ENV_REPLICA_URL: &str = "BASIS_REPLICA_URL";
pub const ENV_REPLICA_SECRET: &str = "BASIS_REPLICA_SECRET";
/// The shortest secret accepted, in characters.
pub const MIN_SECRET_LEN: usize = 32;

/// `[replica]` as written; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplica {
    id: Option<String>,
    internal_url: Option<String>,
    secret_file: Option<PathBuf>,
}

/// The shared replica secret. `Debug` never shows it; equal when the bytes are (compared in
/// constant time).
#[derive(Clone)]
pub struct ReplicaSecret(SecretString);

impl ReplicaSecret {
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}

impl std::fmt::Debug for ReplicaSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplicaSecret(***)")
    }
}

impl PartialEq for ReplicaSecret {
    fn eq(&self, other: &Self) -> bool {
        self.expose().ct_eq(other.expose()).into()
    }
}

impl Eq for ReplicaSecret {}

/// A validated `[replica]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    pub id: ReplicaId,
    /// Where the other replicas reach this one; `None`: the address it binds, which must then
    /// be a specific one (not 0.0.0.0).
    pub internal_url: Option<Url>,
    pub secret: ReplicaSecret,
}

impl ReplicaConfig {
    /// Resolves `[replica]` with the environment (which wins). `None` when no replica id is
    /// configured (a lone orchestrator). `shared_database`: whether the store is PostgreSQL;
    /// replicas need one. Errors say what to set and never contain the secret.
    pub fn resolve(
        raw: &RawReplica,
        env: impl Fn(&str) -> Option<String>,
        shared_database: bool,
    ) -> Result<Option<Self>, String> {
        let nonempty = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let Some(id) = nonempty(env(ENV_REPLICA_ID)).or_else(|| nonempty(raw.id.clone())) else {
            if nonempty(env(ENV_REPLICA_SECRET)).is_some()
                || raw.internal_url.is_some()
                || raw.secret_file.is_some()
            {
                return Err(format!(
                    "[replica] needs an id: set id in [replica] or {ENV_REPLICA_ID}"
                ));
            }
            return Ok(None);
        };
        let id = ReplicaId::parse(&id).map_err(|e| e.to_string())?;
        if !shared_database {
            return Err(
                "replicas need a shared PostgreSQL database: set database_url (an SQLite file \
                 belongs to one orchestrator), or remove [replica]"
                    .into(),
            );
        }
        let internal_url = nonempty(env(ENV_REPLICA_URL))
            .or_else(|| nonempty(raw.internal_url.clone()))
            .map(|u| parse_url(&u))
            .transpose()?;
        let secret = match (nonempty(env(ENV_REPLICA_SECRET)), &raw.secret_file) {
            (Some(secret), _) => secret,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .map_err(|e| {
                    format!("cannot read [replica] secret_file {}: {e}", path.display())
                })?,
            (None, None) => {
                return Err(format!(
                    "replica {id} has no secret: set {ENV_REPLICA_SECRET} or [replica] \
                     secret_file (the same on every replica; e.g. `openssl rand -hex 32`)"
                ));
            }
        };
        if secret.chars().count() < MIN_SECRET_LEN {
            return Err(format!(
                "the replica secret must be at least {MIN_SECRET_LEN} characters (e.g. \
                 `openssl rand -hex 32`)"
            ));
        }
        Ok(Some(Self {
            id,
            internal_url,
            secret: ReplicaSecret(SecretString::from(secret)),
        }))
    }
}

fn parse_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("[replica] internal_url is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("[replica] internal_url must be an http:// or https:// URL with a host".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn no_id_is_no_replica_and_a_full_one_resolves() {
        let raw = RawReplica::default();
        assert_eq!(ReplicaConfig::resolve(&raw, env(&[]), true), Ok(None));
        let c = ReplicaConfig::resolve(
            &raw,
            env(&[
                (ENV_REPLICA_ID, "orch-a"),
                (ENV_REPLICA_SECRET, SECRET),
                (ENV_REPLICA_URL, "http://10.0.0.5:8787"),
            ]),
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.id.as_str(), "orch-a");
        assert_eq!(c.internal_url.unwrap().as_str(), "http://10.0.0.5:8787/");
        assert!(!format!("{:?}", c.secret).contains(SECRET));
    }

    #[test]
    fn what_is_missing_or_wrong_is_named_without_the_secret() {
        let raw = RawReplica::default();
        let err = |vars: &[(&str, &str)], shared| {
            ReplicaConfig::resolve(&raw, env(vars), shared).unwrap_err()
        };
        assert!(err(&[(ENV_REPLICA_SECRET, SECRET)], true).contains(ENV_REPLICA_ID));
        assert!(err(&[(ENV_REPLICA_ID, "a1")], true).contains(ENV_REPLICA_SECRET));
        assert!(
            err(
                &[(ENV_REPLICA_ID, "a1"), (ENV_REPLICA_SECRET, SECRET)],
                false
            )
            .contains("PostgreSQL")
        );
        let short = err(
            &[(ENV_REPLICA_ID, "a1"), (ENV_REPLICA_SECRET, "short-secret")],
            true,
        );
        assert!(
            short.contains("32") && !short.contains("short-secret"),
            "{short}"
        );
        assert!(
            err(
                &[(ENV_REPLICA_ID, "Orch A"), (ENV_REPLICA_SECRET, SECRET)],
                true
            )
            .contains("replica id")
        );
        let url = err(
            &[
                (ENV_REPLICA_ID, "a1"),
                (ENV_REPLICA_SECRET, SECRET),
                (ENV_REPLICA_URL, "ftp://x"),
            ],
            true,
        );
        assert!(url.contains("internal_url"), "{url}");
    }
}
