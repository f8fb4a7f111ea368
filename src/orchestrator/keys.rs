//! `basis orchestrator keys create`: a fresh API key, printed once; only its sha256 is stored.

use secrecy::SecretString;

use super::state::unix_now;
use super::store::{KeyRole, KeySha256, KeyStore, StoreError};

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
}
