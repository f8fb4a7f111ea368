//! ERC-8004 Identity Registry names (docs/DISCOVERY.md, "ERC-8004 registration files"):
//! `eip155:<chain id>:<registry address>`, the form registration files use in
//! `registrations[].agentRegistry`. Parsed strictly; shown with the address checksummed.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::Address;

/// Why a registry name is refused. Never repeats the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentRegistryError {
    #[error(
        "an agent registry is eip155:<chain id>:<registry address>, e.g. \
         eip155:8453:0x8004A169FB4a3325136EB29fA0ceB6D2e539a432"
    )]
    Malformed,
    #[error("the chain id must be a positive integer below 2^53")]
    ChainId,
    #[error("the registry address must be 0x followed by 40 hex digits")]
    Address,
}

/// An Identity Registry on one EVM chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentRegistry {
    pub chain_id: u64,
    pub address: Address,
}

impl AgentRegistry {
    /// The registry at `address` on `chain_id`.
    pub fn new(chain_id: u64, address: &str) -> Result<Self, AgentRegistryError> {
        if chain_id == 0 || chain_id > (1 << 53) - 1 {
            return Err(AgentRegistryError::ChainId);
        }
        let hex = address
            .strip_prefix("0x")
            .filter(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(AgentRegistryError::Address)?;
        let address = Address::from_str(hex).map_err(|_| AgentRegistryError::Address)?;
        Ok(Self { chain_id, address })
    }

    pub fn parse(text: &str) -> Result<Self, AgentRegistryError> {
        let mut parts = text.split(':');
        let (Some("eip155"), Some(chain), Some(address), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AgentRegistryError::Malformed);
        };
        if chain.is_empty() || !chain.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AgentRegistryError::ChainId);
        }
        let chain_id = chain.parse().map_err(|_| AgentRegistryError::ChainId)?;
        Self::new(chain_id, address)
    }
}

impl fmt::Display for AgentRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "eip155:{}:{}",
            self.chain_id,
            self.address.to_checksum(None)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checksums() {
        let r =
            AgentRegistry::parse("eip155:8453:0x8004a169fb4a3325136eb29fa0ceb6d2e539a432").unwrap();
        assert_eq!(r.chain_id, 8453);
        assert_eq!(
            r.to_string(),
            "eip155:8453:0x8004A169FB4a3325136EB29fA0ceB6D2e539a432"
        );
        assert_eq!(AgentRegistry::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn refuses_what_is_not_one() {
        for (bad, err) in [
            ("eip155:1", AgentRegistryError::Malformed),
            (
                "cosmos:1:0x8004a169fb4a3325136eb29fa0ceb6d2e539a432",
                AgentRegistryError::Malformed,
            ),
            (
                "eip155:0:0x8004a169fb4a3325136eb29fa0ceb6d2e539a432",
                AgentRegistryError::ChainId,
            ),
            (
                "eip155:-1:0x8004a169fb4a3325136eb29fa0ceb6d2e539a432",
                AgentRegistryError::ChainId,
            ),
            ("eip155:1:0x8004", AgentRegistryError::Address),
            (
                "eip155:1:8004a169fb4a3325136eb29fa0ceb6d2e539a432",
                AgentRegistryError::Address,
            ),
            (
                "eip155:1:0x8004a169fb4a3325136eb29fa0ceb6d2e539a432:x",
                AgentRegistryError::Malformed,
            ),
        ] {
            assert_eq!(AgentRegistry::parse(bad), Err(err), "{bad}");
        }
    }
}
