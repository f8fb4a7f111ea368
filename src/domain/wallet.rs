//! `WalletAddress`: a public EVM reward address, parsed strictly and always shown in its EIP-55
//! checksummed form (docs/SECURITY.md, "Identity: worker id, wallet, device key").

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use alloy_primitives::Address;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which rule a wallet string broke. No variant carries the input: a wallet field is where
/// people paste private keys by mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    #[error(
        "this looks like a PRIVATE KEY (64 hex characters), not a wallet address; it was not stored or echoed. \
         basis never needs a private key: give the PUBLIC address (0x followed by 40 hex characters), \
         and if this key was pasted anywhere shared, move the funds to a new wallet"
    )]
    LooksLikePrivateKey,
    #[error("a wallet address starts with 0x")]
    MissingPrefix,
    #[error("a wallet address is 0x followed by 40 hex characters (got {len} after 0x)")]
    WrongLength { len: usize },
    #[error("a wallet address holds only hex characters 0-9 and a-f after 0x")]
    NotHex,
    #[error(
        "the mixed-case address does not match its EIP-55 checksum, so it may contain a typo; \
         copy the address again from your wallet (its checksummed form would be {checksummed}, \
         but check it against the source rather than trusting this)"
    )]
    BadChecksum { checksummed: String },
    #[error(
        "the zero address cannot receive rewards; give the public address of a wallet you control"
    )]
    ZeroAddress,
}

impl WalletError {
    /// A stable, machine-readable code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::LooksLikePrivateKey => "PRIVATE_KEY_REFUSED",
            Self::MissingPrefix | Self::WrongLength { .. } | Self::NotHex => "INVALID_WALLET",
            Self::BadChecksum { .. } => "WALLET_CHECKSUM_MISMATCH",
            Self::ZeroAddress => "ZERO_WALLET",
        }
    }
}

/// A non-zero EVM address whose text form was either all one case or correctly checksummed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalletAddress(Address);

impl WalletAddress {
    pub const PATTERN: &'static str = "^0x[0-9a-fA-F]{40}$";

    /// Parses strictly: mixed case must match EIP-55; all-lower or all-upper hex is accepted
    /// and normalised; the zero address is refused; 64 hex gets the private-key message.
    pub fn parse(s: &str) -> Result<Self, WalletError> {
        let body = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        let all_hex = !body.is_empty() && body.bytes().all(|b| b.is_ascii_hexdigit());
        if all_hex && body.len() == 64 {
            return Err(WalletError::LooksLikePrivateKey);
        }
        if body.len() == s.len() {
            return Err(WalletError::MissingPrefix);
        }
        if !all_hex {
            return Err(WalletError::NotHex);
        }
        if body.len() != 40 {
            return Err(WalletError::WrongLength { len: body.len() });
        }
        let mut raw = [0u8; 20];
        hex::decode_to_slice(body, &mut raw).map_err(|_| WalletError::NotHex)?;
        let address = Address::from(raw);
        let has_lower = body.bytes().any(|b| b.is_ascii_lowercase());
        let has_upper = body.bytes().any(|b| b.is_ascii_uppercase());
        if has_lower && has_upper {
            let checksummed = address.to_checksum(None);
            if checksummed[2..] != *body {
                return Err(WalletError::BadChecksum { checksummed });
            }
        }
        if address.is_zero() {
            return Err(WalletError::ZeroAddress);
        }
        Ok(Self(address))
    }

    /// The EIP-55 checksummed text form.
    pub fn checksummed(&self) -> String {
        self.0.to_checksum(None)
    }

    pub fn address(&self) -> Address {
        self.0
    }
}

impl fmt::Display for WalletAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.checksummed())
    }
}

impl fmt::Debug for WalletAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WalletAddress({})", self.checksummed())
    }
}

impl FromStr for WalletAddress {
    type Err = WalletError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// alloy's own serde writes lowercase; ours always writes the checksummed form.
impl Serialize for WalletAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.checksummed())
    }
}

impl<'de> Deserialize<'de> for WalletAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for WalletAddress {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "WalletAddress".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": Self::PATTERN,
            "description": "PUBLIC EVM address (0x + 40 hex), EIP-55 checksummed or all one case. Never a private key."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The four test vectors from EIP-55 itself.
    const EIP55: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_vectors_parse_and_round_trip() {
        for v in EIP55 {
            let w = WalletAddress::parse(v).unwrap();
            assert_eq!(w.checksummed(), v);
            assert_eq!(serde_json::to_string(&w).unwrap(), format!("\"{v}\""));
        }
    }

    #[test]
    fn single_case_is_normalised() {
        for v in EIP55 {
            let lower = format!("0x{}", v[2..].to_ascii_lowercase());
            let upper = format!("0x{}", v[2..].to_ascii_uppercase());
            assert_eq!(WalletAddress::parse(&lower).unwrap().checksummed(), v);
            assert_eq!(WalletAddress::parse(&upper).unwrap().checksummed(), v);
        }
    }

    #[test]
    fn one_letter_case_flip_is_refused() {
        for v in EIP55 {
            let mut chars: Vec<char> = v.chars().collect();
            let i = chars
                .iter()
                .enumerate()
                .skip(2)
                .find(|(_, c)| c.is_ascii_alphabetic())
                .map(|(i, _)| i)
                .unwrap();
            chars[i] = if chars[i].is_ascii_uppercase() {
                chars[i].to_ascii_lowercase()
            } else {
                chars[i].to_ascii_uppercase()
            };
            let flipped: String = chars.into_iter().collect();
            let err = WalletAddress::parse(&flipped).unwrap_err();
            assert_eq!(err.code(), "WALLET_CHECKSUM_MISMATCH");
            assert!(err.to_string().contains(v), "suggests the checksummed form");
        }
    }

    #[test]
    fn zero_and_malformed_are_refused() {
        let zero = format!("0x{}", "0".repeat(40));
        assert_eq!(WalletAddress::parse(&zero), Err(WalletError::ZeroAddress));
        assert_eq!(
            WalletAddress::parse(&"ab".repeat(20)),
            Err(WalletError::MissingPrefix)
        );
        assert_eq!(
            WalletAddress::parse("0x1234"),
            Err(WalletError::WrongLength { len: 4 })
        );
        assert_eq!(
            WalletAddress::parse(&format!("0x{}", "g".repeat(40))),
            Err(WalletError::NotHex)
        );
    }

    #[test]
    fn private_key_in_wallet_field_gets_its_own_message_without_echo() {
        let key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        for input in [key.to_owned(), format!("0x{key}")] {
            let err = WalletAddress::parse(&input).unwrap_err();
            assert_eq!(err, WalletError::LooksLikePrivateKey);
            let msg = err.to_string();
            assert!(msg.contains("PRIVATE KEY"));
            assert!(!msg.contains(key));
            assert!(!format!("{err:?}").contains(key));
        }
    }
}
