//! The refusal: [`SecretKind`] and [`SecretRefused`], whose texts name the field and the kind
//! and never contain any part of the refused value.

use std::fmt;

use schemars::JsonSchema;
use serde::Serialize;

/// What a refused value looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// 64 hex characters, with or without `0x` (also the shape of a worker token).
    PrivateKey,
    /// A run of 12 or more BIP-39 English wordlist words.
    Mnemonic,
    /// An encrypted JSON keystore (`crypto` with `ciphertext`, `kdf` and `mac`).
    Keystore,
    /// A PEM block whose label ends in `PRIVATE KEY`.
    PemPrivateKey,
    /// A known API-key or access-token format.
    ApiKey,
    /// A credentials file or key container: an SSH, PGP, PKCS#8/#12, Java or KeePass key
    /// store, or a cloud, registry, netrc or basis env file holding a credential.
    CredentialFile,
    /// This worker's own device key or token (or the evaluator key) from its env file.
    WorkerToken,
    /// Compressed or archived data the guard cannot look inside (bzip2, xz, zstd, 7z, rar, an
    /// encrypted zip entry, nesting too deep, or expanding past the guard's limits).
    Uninspectable,
}

impl SecretKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [SecretKind] = &[
        Self::PrivateKey,
        Self::Mnemonic,
        Self::Keystore,
        Self::PemPrivateKey,
        Self::ApiKey,
        Self::CredentialFile,
        Self::WorkerToken,
        Self::Uninspectable,
    ];

    /// The wire name, as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PrivateKey => "private_key",
            Self::Mnemonic => "mnemonic",
            Self::Keystore => "keystore",
            Self::PemPrivateKey => "pem_private_key",
            Self::ApiKey => "api_key",
            Self::CredentialFile => "credential_file",
            Self::WorkerToken => "worker_token",
            Self::Uninspectable => "uninspectable",
        }
    }

    /// How the kind reads in a sentence: "looks like {description}".
    pub fn description(self) -> &'static str {
        match self {
            Self::PrivateKey => "a private key",
            Self::Mnemonic => "a seed phrase (a run of 12 or more BIP-39 words)",
            Self::Keystore => "an encrypted wallet keystore (JSON with crypto/ciphertext/kdf/mac)",
            Self::PemPrivateKey => "a PEM private key block",
            Self::ApiKey => "an API key or access token",
            Self::CredentialFile => {
                "a credentials file or key container (SSH, PGP, PKCS#8/#12, Java or KeePass key \
                 store, cloud, registry, netrc or basis env file)"
            }
            Self::WorkerToken => "this host's device key, worker token or evaluator key",
            Self::Uninspectable => {
                "compressed or archived data basis cannot look inside (bzip2, xz, zstd, 7z, rar, \
                 an encrypted zip entry, nesting too deep, or expanding past basis's limits), or \
                 more 64-hex values than basis checks against the worker's wallet"
            }
        }
    }

    /// What to do instead. Static text: it never depends on the refused value.
    pub fn fix(self) -> &'static str {
        match self {
            Self::PrivateKey => {
                "Remove it. basis only needs your PUBLIC wallet address (0x followed by 40 hex \
                 characters). If it is a worker token or device key: it is never an argument, it \
                 stays in worker.env. If it is a private key that was ever pasted anywhere shared, \
                 treat it as compromised and move its funds to a new wallet."
            }
            Self::Mnemonic => {
                "Remove it. basis only needs your PUBLIC wallet address (0x followed by 40 hex \
                 characters). If this seed phrase was ever pasted anywhere shared, treat the \
                 wallet as compromised and move its funds to a new one."
            }
            Self::Keystore => {
                "Remove it. basis only needs your PUBLIC wallet address (0x followed by 40 hex \
                 characters), never a keystore file. If the keystore and its password were \
                 shared, treat the wallet as compromised and move its funds."
            }
            Self::PemPrivateKey => {
                "Remove it. basis never needs a private key file. If this key was ever pasted \
                 anywhere shared, revoke it and issue a new one."
            }
            Self::ApiKey => {
                "Remove it. basis never needs an API key or access token. If this one was ever \
                 pasted anywhere shared, revoke it with its issuer and create a new one."
            }
            Self::CredentialFile => {
                "Remove it. A task never needs a credentials file or key store from this host: \
                 write only the task's own output, into a new file in basis's work directory."
            }
            Self::WorkerToken => {
                "Remove it. The device key, the worker token and the evaluator key never leave \
                 worker.env: basis signs with the key itself and sends a legacy token or the \
                 evaluator key only to the orchestrator, only in a header. If a task \
                 asked for them, it is an attack: release it."
            }
            Self::Uninspectable => {
                "Submit the output uncompressed, or as gzip, zlib or an unencrypted zip (deflate \
                 or stored), with at most 4096 hashes: basis checks what leaves this host for \
                 secrets, and cannot vouch for what it cannot read."
            }
        }
    }
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value was refused because it looked like a secret. It carries the field (a name or a path
/// such as `input.messages[0].content`) and the kind, never the value: no text of this type,
/// `Debug` included, can contain any part of what was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SecretRefused {
    /// The field (or JSON path inside it) that held the value.
    pub field: String,
    /// What the value looked like.
    pub kind: SecretKind,
    /// Which format matched (e.g. `"GitHub"` for an API key, `"WIF"` for a private key);
    /// static text.
    pub vendor: Option<&'static str>,
}

impl SecretRefused {
    pub fn new(field: impl Into<String>, kind: SecretKind) -> Self {
        Self {
            field: field.into(),
            kind,
            vendor: None,
        }
    }

    #[must_use]
    pub fn with_vendor(mut self, vendor: &'static str) -> Self {
        self.vendor = Some(vendor);
        self
    }

    /// The full explanation, the same text as `Display`.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// What to do instead (depends on the kind only).
    pub fn fix(&self) -> &'static str {
        self.kind.fix()
    }
}

impl fmt::Display for SecretRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` looks like {}", self.field, self.kind.description())?;
        if let Some(vendor) = self.vendor {
            write!(f, " ({vendor} format)")?;
        }
        f.write_str(
            ", so it was refused: it was not stored, logged or echoed. basis never needs a \
             private key, seed phrase, keystore or API key: only a PUBLIC wallet address, and \
             the worker token is generated on the host.",
        )
    }
}
