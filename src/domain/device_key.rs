//! The worker's device key (docs/SECURITY.md, "Identity: worker id, wallet, device key"): an
//! Ed25519 key pair generated on the worker's host. [`DeviceKey`], the private half, lives only
//! in the 0600 env file; it redacts itself, has no `Serialize`, is zeroized on drop and never
//! leaves the host. [`DevicePublicKey`] is what the orchestrator stores, and
//! [`KeyFingerprint`] (`SHA256:` + base64 of its sha256, as OpenSSH shows keys) is what results,
//! logs and errors show.

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// How the private key's text form begins: `basis_dk_` + base64url (no padding) of the
/// 32-byte Ed25519 seed. The prefix lets the secrets guard recognise it anywhere.
pub const DEVICE_KEY_PREFIX: &str = "basis_dk_";
/// Length of the private key's text form.
pub const DEVICE_KEY_TEXT_LEN: usize = DEVICE_KEY_PREFIX.len() + 43;

/// Why a string is not a device key or a public key. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceKeyError {
    #[error(
        "a device key is `basis_dk_` followed by 43 base64url characters (the value was not shown)"
    )]
    Malformed,
    #[error("a public key is 43 base64url characters encoding an Ed25519 point")]
    MalformedPublic,
}

/// The private half. Only the env-file writer reads [`DeviceKey::expose_secret`]; everything
/// else signs through it.
pub struct DeviceKey {
    signing: SigningKey,
}

impl DeviceKey {
    /// 32 bytes from the thread's CSPRNG (ChaCha, seeded from the OS).
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(seed.as_mut());
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Parses the text form (`basis_dk_…`).
    pub fn parse(s: &str) -> Result<Self, DeviceKeyError> {
        let body = s
            .strip_prefix(DEVICE_KEY_PREFIX)
            .filter(|b| b.len() == 43)
            .ok_or(DeviceKeyError::Malformed)?;
        let mut bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| DeviceKeyError::Malformed)?,
        );
        let mut seed = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            bytes.zeroize();
            return Err(DeviceKeyError::Malformed);
        }
        seed.copy_from_slice(&bytes);
        Ok(Self {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// The text form, for the env-file writer only.
    pub fn expose_secret(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(self.signing.to_bytes());
        Zeroizing::new(format!(
            "{DEVICE_KEY_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(seed.as_ref())
        ))
    }

    /// The 32-byte seed, for the secrets guard's in-memory list only.
    pub fn seed_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    pub fn public(&self) -> DevicePublicKey {
        DevicePublicKey(self.signing.verifying_key())
    }

    pub fn fingerprint(&self) -> KeyFingerprint {
        self.public().fingerprint()
    }

    /// An Ed25519 signature over `message` (64 bytes).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

impl Clone for DeviceKey {
    fn clone(&self) -> Self {
        Self {
            signing: SigningKey::from_bytes(&self.signing.to_bytes()),
        }
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey([REDACTED] {})", self.fingerprint())
    }
}

impl fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// The public half: what registration sends and the orchestrator stores.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DevicePublicKey(VerifyingKey);

impl DevicePublicKey {
    /// Parses 43 base64url characters (the 32-byte compressed point).
    pub fn parse(s: &str) -> Result<Self, DeviceKeyError> {
        if s.len() != 43 {
            return Err(DeviceKeyError::MalformedPublic);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| DeviceKeyError::MalformedPublic)?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| DeviceKeyError::MalformedPublic)?;
        VerifyingKey::from_bytes(&array)
            .map(Self)
            .map_err(|_| DeviceKeyError::MalformedPublic)
    }

    /// The key from its 32 bytes (a compressed Edwards point).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, DeviceKeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| DeviceKeyError::MalformedPublic)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// `SHA256:` + base64 (no padding) of the sha256 of the 32 bytes.
    pub fn fingerprint(&self) -> KeyFingerprint {
        KeyFingerprint(format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(self.as_bytes()))
        ))
    }

    /// Whether `signature` (64 bytes) is this key's over `message`. Strict verification (no
    /// malleable or small-order signatures); `ed25519-dalek` compares in constant time.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        let signature = Signature::from_bytes(&bytes);
        self.0.verify_strict(message, &signature).is_ok()
    }
}

impl fmt::Display for DevicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.as_bytes()))
    }
}

impl fmt::Debug for DevicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevicePublicKey({self})")
    }
}

impl Serialize for DevicePublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DevicePublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for DevicePublicKey {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "DevicePublicKey".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[A-Za-z0-9_-]{43}$",
            "description": "The worker's Ed25519 public key: base64url (no padding) of its 32 bytes."
        })
    }
}

/// `SHA256:` + 43 base64 characters: identifies a device key without revealing anything.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyFingerprint(String);

impl KeyFingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFingerprint({})", self.0)
    }
}

impl Serialize for KeyFingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyFingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        let ok = s.strip_prefix("SHA256:").is_some_and(|b| {
            b.len() == 43
                && b.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
        });
        if ok {
            Ok(Self(s.into_owned()))
        } else {
            Err(serde::de::Error::custom(
                "a key fingerprint is SHA256: followed by 43 base64 characters",
            ))
        }
    }
}

impl JsonSchema for KeyFingerprint {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "KeyFingerprint".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^SHA256:[A-Za-z0-9+/]{43}$",
            "description": "SHA256: + base64 of sha256(public key), as OpenSSH shows keys: identifies the device key without revealing it."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_through_its_text_and_signs() {
        let key = DeviceKey::generate();
        let text = key.expose_secret();
        assert!(text.starts_with(DEVICE_KEY_PREFIX));
        assert_eq!(text.len(), DEVICE_KEY_TEXT_LEN);
        let again = DeviceKey::parse(&text).unwrap();
        assert_eq!(again.public(), key.public());
        let sig = key.sign(b"message");
        assert!(key.public().verify(b"message", &sig));
        assert!(!key.public().verify(b"messagE", &sig));
        assert!(!DeviceKey::generate().public().verify(b"message", &sig));
        assert!(!key.public().verify(b"message", &sig[..63]));
    }

    #[test]
    fn formatting_never_reveals_the_key() {
        let key = DeviceKey::generate();
        let secret = key.expose_secret();
        let body = &secret[DEVICE_KEY_PREFIX.len()..];
        for shown in [format!("{key}"), format!("{key:?}"), format!("{key:#?}")] {
            assert!(!shown.contains(body), "{shown}");
            assert!(shown.contains("[REDACTED]"));
        }
    }

    #[test]
    fn malformed_keys_are_refused_without_echo() {
        let good = DeviceKey::generate().expose_secret();
        let cut = &good[..good.len() - 1];
        for bad in [
            "",
            "basis_dk_",
            cut,
            &good.replace("basis_dk_", "basis_xx_"),
        ] {
            let e = DeviceKeyError::Malformed;
            assert_eq!(DeviceKey::parse(bad).unwrap_err(), e);
            assert!(!e.to_string().contains(&good[9..]));
        }
    }

    #[test]
    fn public_keys_and_fingerprints_parse_and_round_trip() {
        let key = DeviceKey::generate();
        let public = key.public();
        let text = public.to_string();
        assert_eq!(DevicePublicKey::parse(&text).unwrap(), public);
        let json = serde_json::to_string(&public).unwrap();
        assert_eq!(
            serde_json::from_str::<DevicePublicKey>(&json).unwrap(),
            public
        );
        assert!(DevicePublicKey::parse("short").is_err());
        let fp = key.fingerprint();
        assert!(fp.as_str().starts_with("SHA256:"));
        let back: KeyFingerprint =
            serde_json::from_str(&serde_json::to_string(&fp).unwrap()).unwrap();
        assert_eq!(back, fp);
        assert!(serde_json::from_str::<KeyFingerprint>("\"SHA256:x\"").is_err());
    }
}
