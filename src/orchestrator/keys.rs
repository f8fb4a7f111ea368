//! `basis orchestrator keys create`: a fresh API key, printed once; only its sha256 is stored.
//! [`create_in_database`] is the whole operation the CLI calls (the label guarded, the database
//! named by the flags or orchestrator.toml opened, the key made); [`create`] makes one in an
//! open store.

use secrecy::SecretString;

use super::config::{ConfigError, OrchestratorConfig, Overrides};
use super::state::unix_now;
use super::store::{KeyStore, StoreError};
use crate::guard::SecretRefused;

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
) -> Result<SecretString, StoreError> {
    use secrecy::ExposeSecret;
    let key = generate(role);
    store
        .insert_key(role, KeySha256::of(key.expose_secret()), label, unix_now())
        .await?;
    Ok(key)
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
}

/// `basis orchestrator keys create`: guards the label, opens the database `overrides` name
/// (`--db`, else orchestrator.toml's `db`, else the default in the state directory), and
/// creates a `role` key there.
pub async fn create_in_database(
    overrides: &Overrides,
    role: KeyRole,
    label: Option<String>,
) -> Result<CreatedKey, CreateKeyError> {
    if let Some(l) = &label {
        crate::guard::check_text("label", l)?;
    }
    let database = OrchestratorConfig::load_database(overrides)?;
    let store = super::server::open_store(&database).await?;
    let key = create(&*store, role, label).await?;
    Ok(CreatedKey {
        key,
        database: database.shown(),
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

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
        let made = create_in_database(&overrides, KeyRole::Client, Some("ops team".into()))
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
        let refused = create_in_database(&overrides, KeyRole::Admin, Some(secret_label)).await;
        assert!(matches!(refused, Err(CreateKeyError::Label(_))));
    }
}
