//! API keys: `basis orchestrator keys create` makes a fresh key, printed once (only its sha256
//! is stored; [`create_in_database`] is the whole operation the CLI calls, [`create`] makes one
//! in an open store); [`find`] resolves the id an operator gives (`key:` + hex, a prefix of
//! the sha256) to one stored key, for the admin routes that revoke and limit keys.

use secrecy::SecretString;

use super::config::{ConfigError, OrchestratorConfig, Overrides};
use super::state::unix_now;
use super::store::{KeyEntry, KeyStore, StoreError};
use crate::guard::SecretRefused;
use crate::wire::{KEY_ID_HEX, KeyLimits};

pub use super::store::{KeyRole, KeySha256};

/// A new key: `basis_<role>_` + 64 hex (256 bits from the OS-seeded CSPRNG). The 64-hex body
/// makes the secrets guard refuse it wherever it is pasted by mistake.
pub fn generate(role: KeyRole) -> SecretString {
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let key = format!("basis_{role}_{}", hex::encode(raw));
    zeroize::Zeroize::zeroize(&mut raw);
    SecretString::from(key)
}

/// Generates a key, stores its hash with `role`, and returns the key (shown once).
pub async fn create(
    store: &dyn KeyStore,
    role: KeyRole,
    label: Option<String>,
    limits: KeyLimits,
) -> Result<SecretString, StoreError> {
    use secrecy::ExposeSecret;
    let key = generate(role);
    store
        .insert_key(
            role,
            KeySha256::of(key.expose_secret()),
            label,
            limits,
            unix_now(),
        )
        .await?;
    Ok(key)
}

/// Why an id named no single key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FindKeyError {
    #[error(
        "`{0}` is not a key id: give `key:` and at least {KEY_ID_HEX} hex digits of the key's \
         sha256 (as `keys list` shows)"
    )]
    Malformed(String),
    #[error("no key has the id `{0}`")]
    NotFound(String),
    #[error("{count} keys start with `{id}`: give more hex digits of the sha256")]
    Ambiguous { id: String, count: usize },
}

/// The hex digits an id stands for: `key:HEX`, `0xHEX` or `HEX`, at least [`KEY_ID_HEX`] of
/// them, lower-cased.
fn id_hex(id: &str) -> Result<String, FindKeyError> {
    let t = id.trim();
    let hex = t
        .strip_prefix("key:")
        .or_else(|| t.strip_prefix("0x"))
        .unwrap_or(t)
        .to_ascii_lowercase();
    let ok = (KEY_ID_HEX..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(hex)
    } else {
        Err(FindKeyError::Malformed(id.chars().take(80).collect()))
    }
}

/// The one stored key `id` names (revoked ones included), with its usage on `day`.
pub async fn find(
    store: &(dyn KeyStore + Sync),
    id: &str,
    day: u64,
) -> Result<Result<KeyEntry, FindKeyError>, StoreError> {
    let hex = match id_hex(id) {
        Ok(h) => h,
        Err(e) => return Ok(Err(e)),
    };
    let mut found: Vec<KeyEntry> = store
        .keys(day)
        .await?
        .into_iter()
        .filter(|k| hex::encode(k.sha256.0).starts_with(&hex))
        .collect();
    Ok(match found.len() {
        0 => Err(FindKeyError::NotFound(id.trim().to_owned())),
        1 => Ok(found.remove(0)),
        count => Err(FindKeyError::Ambiguous {
            id: id.trim().to_owned(),
            count,
        }),
    })
}

/// A key made by [`create_in_database`].
#[derive(Debug)]
pub struct CreatedKey {
    /// The key itself: shown once, never stored.
    pub key: SecretString,
    /// The database that now holds its sha256, as shown in messages.
    pub database: String,
}

/// Why [`create_in_database`] made no key.
#[derive(Debug, thiserror::Error)]
pub enum CreateKeyError {
    /// The label holds something the secrets guard refuses.
    #[error(transparent)]
    Label(#[from] SecretRefused),
    /// orchestrator.toml (or the flags) could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Quotas were given for a key that is not a client key.
    #[error("quotas apply to client keys only (the gateway's callers), not to {0} keys")]
    LimitsNotForRole(KeyRole),
}

/// `basis orchestrator keys create`: guards the label, opens the database `overrides` name
/// (`--db`, else orchestrator.toml's `db`, else the default in the state directory), and
/// creates a `role` key there.
pub async fn create_in_database(
    overrides: &Overrides,
    role: KeyRole,
    label: Option<String>,
    limits: KeyLimits,
) -> Result<CreatedKey, CreateKeyError> {
    if let Some(l) = &label {
        crate::guard::check_text("label", l)?;
    }
    if role != KeyRole::Client && !limits.is_unlimited() {
        return Err(CreateKeyError::LimitsNotForRole(role));
    }
    let database = OrchestratorConfig::load_database(overrides)?;
    let store = super::server::open_store(&database).await?;
    let key = create(&*store, role, label, limits).await?;
    Ok(CreatedKey {
        key,
        database: database.shown(),
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn made_id(made: &CreatedKey) -> String {
        KeyEntry {
            sha256: KeySha256::of(made.key.expose_secret()),
            role: KeyRole::Client,
            label: None,
            created_at: 0,
            revoked_at: None,
            limits: KeyLimits::default(),
            usage: crate::wire::KeyUsage::default(),
        }
        .to_wire()
        .id
    }

    #[test]
    fn keys_are_fresh_prefixed_and_refused_by_the_guard() {
        let a = generate(KeyRole::Admin);
        let b = generate(KeyRole::Admin);
        assert!(a.expose_secret().starts_with("basis_admin_"));
        assert_eq!(a.expose_secret().len(), "basis_admin_".len() + 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(crate::guard::check_text("x", a.expose_secret()).is_err());
    }

    #[tokio::test]
    async fn create_in_database_stores_only_the_hash_and_guards_the_label() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state/orchestrator.db");
        let overrides = Overrides {
            db: Some(db.clone()),
            ..Overrides::default()
        };
        let limits = KeyLimits {
            requests_per_minute: Some(5),
            tokens_per_day: None,
        };
        let made = create_in_database(&overrides, KeyRole::Client, Some("ops team".into()), limits)
            .await
            .unwrap();
        assert_eq!(made.database, db.display().to_string());
        let store = crate::orchestrator::store::SqliteStore::open(&db).unwrap();
        let role = store
            .key_role(KeySha256::of(made.key.expose_secret()))
            .await
            .unwrap();
        assert_eq!(role, Some(KeyRole::Client));
        let raw = made.key.expose_secret().as_bytes();
        for file in std::fs::read_dir(dir.path().join("state")).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(!bytes.windows(raw.len()).any(|w| w == raw));
        }

        let secret_label = format!("0x{}", "ab".repeat(32));
        let refused = create_in_database(
            &overrides,
            KeyRole::Admin,
            Some(secret_label),
            KeyLimits::default(),
        )
        .await;
        assert!(matches!(refused, Err(CreateKeyError::Label(_))));
        let refused = create_in_database(&overrides, KeyRole::Admin, None, limits).await;
        assert!(matches!(
            refused,
            Err(CreateKeyError::LimitsNotForRole(KeyRole::Admin))
        ));

        // Found by its id, by a longer prefix, and not by a short or unknown one.
        let day = crate::orchestrator::store::utc_day(unix_now());
        let entry = find(&store, &made_id(&made), day).await.unwrap().unwrap();
        assert_eq!(entry.limits, limits);
        assert_eq!(entry.label.as_deref(), Some("ops team"));
        let long = format!("0x{}", &hex::encode(entry.sha256.0)[..20]);
        assert_eq!(find(&store, &long, day).await.unwrap().unwrap(), entry);
        assert!(matches!(
            find(&store, "key:12", day).await.unwrap(),
            Err(FindKeyError::Malformed(_))
        ));
        assert!(matches!(
            find(&store, "key:0000000000", day).await.unwrap(),
            Err(FindKeyError::NotFound(_))
        ));
    }
}
