//! `[settlement]` in orchestrator.toml: the token batches pay in and the EIP-712 domain the
//! operator's wallet signs them under (docs/SETTLEMENT.md, "Configuration"). Without it
//! credits accrue but no batch can be closed.

use serde::Deserialize;

use crate::domain::{BatchDomain, WalletAddress};

pub const DEFAULT_DOMAIN_NAME: &str = "basis settlement";
pub const DEFAULT_DOMAIN_VERSION: &str = "1";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettlement {
    token: Option<String>,
    chain_id: Option<u64>,
    verifying_contract: Option<String>,
    domain_name: Option<String>,
    domain_version: Option<String>,
}

/// The resolved `[settlement]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementConfig {
    /// The ERC-20 contract of the asset.
    pub token: WalletAddress,
    /// The EIP-712 domain: the chain, the contract that checks the signature (the
    /// distributor, or the Safe that pays), and the domain's name and version.
    pub domain: BatchDomain,
}

fn address(key: &str, text: &str) -> Result<WalletAddress, String> {
    WalletAddress::parse(text.trim())
        .map_err(|e| format!("[settlement] {key}: {e} (a 0x address of 40 hex digits)"))
}

impl SettlementConfig {
    /// `None` when the table is absent; an error naming the key when it is partial or bad.
    pub fn resolve(raw: &RawSettlement) -> Result<Option<Self>, String> {
        let named = [
            ("token", raw.token.is_some()),
            ("chain_id", raw.chain_id.is_some()),
            ("verifying_contract", raw.verifying_contract.is_some()),
        ];
        if named.iter().all(|(_, set)| !set) {
            if raw.domain_name.is_some() || raw.domain_version.is_some() {
                return Err(
                    "[settlement] domain_name and domain_version need token, chain_id \
                            and verifying_contract"
                        .into(),
                );
            }
            return Ok(None);
        }
        if let Some((key, _)) = named.iter().find(|(_, set)| !set) {
            return Err(format!(
                "[settlement] {key} is missing: token, chain_id and verifying_contract go together"
            ));
        }
        let token = address("token", raw.token.as_deref().unwrap_or_default())?;
        let verifying_contract = address(
            "verifying_contract",
            raw.verifying_contract.as_deref().unwrap_or_default(),
        )?;
        let chain_id = raw.chain_id.unwrap_or_default();
        if chain_id == 0 {
            return Err(
                "[settlement] chain_id must be a chain's id (1 for Ethereum, 8453 for \
                        Base, …), not 0"
                    .into(),
            );
        }
        let text = |key: &str, v: &Option<String>, default: &str| -> Result<String, String> {
            match v {
                Some(s) if s.trim().is_empty() || s.len() > 100 => {
                    Err(format!("[settlement] {key} must be 1 to 100 characters"))
                }
                Some(s) => Ok(s.clone()),
                None => Ok(default.to_owned()),
            }
        };
        Ok(Some(Self {
            token,
            domain: BatchDomain {
                name: text("domain_name", &raw.domain_name, DEFAULT_DOMAIN_NAME)?,
                version: text(
                    "domain_version",
                    &raw.domain_version,
                    DEFAULT_DOMAIN_VERSION,
                )?,
                chain_id,
                verifying_contract: verifying_contract.address(),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Option<SettlementConfig>, String> {
        let raw: RawSettlement = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        SettlementConfig::resolve(&raw)
    }

    #[test]
    fn absent_is_none_and_whole_is_resolved_with_default_domain_names() {
        assert_eq!(parse("").unwrap(), None);
        let c = parse(
            "token = \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\"\nchain_id = 8453\n\
             verifying_contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.domain.chain_id, 8453);
        assert_eq!(c.domain.name, DEFAULT_DOMAIN_NAME);
        assert_eq!(
            c.token.checksummed(),
            "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
        );
    }

    #[test]
    fn a_partial_or_bad_table_names_its_key() {
        let e = parse("token = \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\"").unwrap_err();
        assert!(e.contains("chain_id is missing"), "{e}");
        let e = parse(
            "token = \"0x12\"\nchain_id = 1\n\
             verifying_contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"",
        )
        .unwrap_err();
        assert!(e.starts_with("[settlement] token:"), "{e}");
        let e = parse(
            "token = \"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913\"\nchain_id = 0\n\
             verifying_contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"",
        )
        .unwrap_err();
        assert!(e.contains("chain_id"), "{e}");
        assert!(parse("chain_id = -1").unwrap_err().contains("chain_id"));
        assert!(parse("chain_id = 1.5").unwrap_err().contains("chain_id"));
    }
}
