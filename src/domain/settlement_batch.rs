//! The EIP-712 message of a settlement batch (docs/SETTLEMENT.md, "The typed data"): what
//! an operator's own wallet signs to approve paying a batch, as a typed-data document
//! (`eth_signTypedData_v4`) and its digest, computed with alloy's `sol!` struct hashing.
//! basis never signs it.

use std::borrow::Cow;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{Eip712Domain, SolStruct as _, sol};
use serde_json::{Value, json};

sol! {
    /// One settlement batch: its number, the Merkle root of its payouts, their total, the
    /// token paid and the period it covers (unix seconds).
    #[derive(Debug, PartialEq, Eq)]
    struct SettlementBatch {
        uint256 batchId;
        bytes32 root;
        uint256 total;
        address token;
        uint64 periodStart;
        uint64 periodEnd;
    }
}

/// The EIP-712 domain, from the operator's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDomain {
    pub name: String,
    pub version: String,
    pub chain_id: u64,
    pub verifying_contract: Address,
}

impl BatchDomain {
    fn eip712(&self) -> Eip712Domain {
        Eip712Domain::new(
            Some(Cow::Owned(self.name.clone())),
            Some(Cow::Owned(self.version.clone())),
            Some(U256::from(self.chain_id)),
            Some(self.verifying_contract),
            None,
        )
    }

    /// The domain separator.
    pub fn separator(&self) -> B256 {
        self.eip712().separator()
    }
}

/// The digest a wallet signs: `keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(batch))`.
pub fn signing_hash(domain: &BatchDomain, batch: &SettlementBatch) -> B256 {
    batch.eip712_signing_hash(&domain.eip712())
}

/// `hashStruct(batch)`.
pub fn struct_hash(batch: &SettlementBatch) -> B256 {
    batch.eip712_hash_struct()
}

/// The typed-data document (`eth_signTypedData_v4`); integers as decimal strings.
pub fn typed_data(domain: &BatchDomain, batch: &SettlementBatch) -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "SettlementBatch": [
                {"name": "batchId", "type": "uint256"},
                {"name": "root", "type": "bytes32"},
                {"name": "total", "type": "uint256"},
                {"name": "token", "type": "address"},
                {"name": "periodStart", "type": "uint64"},
                {"name": "periodEnd", "type": "uint64"}
            ]
        },
        "primaryType": "SettlementBatch",
        "domain": {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": domain.verifying_contract.to_checksum(None),
        },
        "message": {
            "batchId": batch.batchId.to_string(),
            "root": batch.root.to_string(),
            "total": batch.total.to_string(),
            "token": batch.token.to_checksum(None),
            "periodStart": batch.periodStart.to_string(),
            "periodEnd": batch.periodEnd.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use super::*;

    /// The vector viem's `hashTypedData` made (tests/data/settlement/README.md).
    #[test]
    fn the_digest_matches_a_known_vector() {
        let v: Value = serde_json::from_str(include_str!(
            "../../tests/data/settlement/eip712_vector.json"
        ))
        .unwrap();
        let s = |k: &str| v["message"][k].as_str().unwrap().to_owned();
        let domain = BatchDomain {
            name: v["domain"]["name"].as_str().unwrap().into(),
            version: v["domain"]["version"].as_str().unwrap().into(),
            chain_id: v["domain"]["chainId"].as_u64().unwrap(),
            verifying_contract: Address::from_str(
                v["domain"]["verifyingContract"].as_str().unwrap(),
            )
            .unwrap(),
        };
        let batch = SettlementBatch {
            batchId: U256::from_str(&s("batchId")).unwrap(),
            root: B256::from_str(&s("root")).unwrap(),
            total: U256::from_str(&s("total")).unwrap(),
            token: Address::from_str(&s("token")).unwrap(),
            periodStart: s("periodStart").parse().unwrap(),
            periodEnd: s("periodEnd").parse().unwrap(),
        };
        let hex = |h: B256| h.to_string();
        assert_eq!(hex(domain.separator()), v["domainSeparator"]);
        assert_eq!(hex(struct_hash(&batch)), v["structHash"]);
        assert_eq!(hex(signing_hash(&domain, &batch)), v["digest"]);
        let doc = typed_data(&domain, &batch);
        assert_eq!(doc["message"]["total"], "975001");
        assert_eq!(doc["domain"]["chainId"], 8453);
    }
}
