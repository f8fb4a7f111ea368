//! The settlement batch file (docs/SETTLEMENT.md, "The batch file"): one batch's payouts,
//! one leaf per wallet with its Merkle proof, the root, the total, and the EIP-712 document
//! the operator's wallet signs, with its digest. [`build`] writes one from payouts;
//! [`verify`] checks one offline: every proof against the root, the total against the leaves,
//! and the typed data against the batch and its digest.

use std::collections::HashSet;
use std::str::FromStr as _;

use alloy_primitives::{Address, B256, U256};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::merkle::{MerkleError, PayoutTree, leaf_hash, verify_proof};
use super::settlement_batch::{BatchDomain, SettlementBatch, signing_hash, typed_data};
use super::wallet::WalletAddress;

/// One wallet's payout in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchLeaf {
    pub wallet: WalletAddress,
    /// Atomic units, as a decimal string.
    pub amount: String,
    /// Sibling hashes from the leaf up (`MerkleProof.verify`).
    pub proof: Vec<String>,
}

/// A settlement batch as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchFile {
    pub batch_id: u64,
    /// Unix seconds: the credits it holds were made in `[period_start, period_end)`.
    pub period_start: u64,
    pub period_end: u64,
    /// The asset's name (e.g. `USDC`) and its token contract.
    pub asset: String,
    pub token: String,
    /// The sum of the leaves' amounts, atomic units.
    pub total: String,
    pub root: String,
    pub leaves: Vec<BatchLeaf>,
    /// The `eth_signTypedData_v4` document of the batch.
    pub typed_data: serde_json::Value,
    /// Its EIP-712 digest.
    pub digest: String,
}

/// What a batch file holds wrong. Names the leaf (1-based) where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchFileError {
    #[error("the batch has no leaves")]
    Empty,
    #[error("leaf {leaf}: the amount is not a non-negative integer below 2^256")]
    Amount { leaf: usize },
    #[error("leaf {leaf}: the proof does not lead to the root")]
    Proof { leaf: usize },
    #[error("leaf {leaf}: the wallet already has a leaf (one leaf per wallet)")]
    DuplicateWallet { leaf: usize },
    #[error("the total is not the sum of the leaves ({sum})")]
    Total { sum: String },
    #[error("{0} is not a 32-byte 0x hash")]
    Hash(&'static str),
    #[error("the token is not a 0x address")]
    Token,
    #[error("the typed data does not describe this batch (its {0} differs)")]
    TypedData(&'static str),
    #[error("the digest is not the EIP-712 digest of the typed data")]
    Digest,
}

impl From<MerkleError> for BatchFileError {
    fn from(_: MerkleError) -> Self {
        Self::Empty
    }
}

/// What a batch file is for, besides its payouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHeader {
    pub batch_id: u64,
    pub period_start: u64,
    pub period_end: u64,
    pub asset: String,
    pub token: Address,
    pub domain: BatchDomain,
}

fn hash(text: &str, what: &'static str) -> Result<B256, BatchFileError> {
    if text.len() != 66 || !text.starts_with("0x") {
        return Err(BatchFileError::Hash(what));
    }
    B256::from_str(text).map_err(|_| BatchFileError::Hash(what))
}

fn amount(text: &str, leaf: usize) -> Result<U256, BatchFileError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BatchFileError::Amount { leaf });
    }
    U256::from_str_radix(text, 10).map_err(|_| BatchFileError::Amount { leaf })
}

/// Builds the batch file of `payouts` (one per wallet, in the order given).
pub fn build(
    header: &BatchHeader,
    payouts: &[(WalletAddress, U256)],
) -> Result<BatchFile, BatchFileError> {
    let leaves: Vec<B256> = payouts
        .iter()
        .map(|(w, a)| leaf_hash(w.address(), *a))
        .collect();
    let tree = PayoutTree::new(&leaves)?;
    let total = payouts
        .iter()
        .try_fold(U256::ZERO, |sum, (_, a)| sum.checked_add(*a))
        .ok_or(BatchFileError::Total {
            sum: "more than 2^256".into(),
        })?;
    let batch = SettlementBatch {
        batchId: U256::from(header.batch_id),
        root: tree.root(),
        total,
        token: header.token,
        periodStart: header.period_start,
        periodEnd: header.period_end,
    };
    Ok(BatchFile {
        batch_id: header.batch_id,
        period_start: header.period_start,
        period_end: header.period_end,
        asset: header.asset.clone(),
        token: header.token.to_checksum(None),
        total: total.to_string(),
        root: tree.root().to_string(),
        leaves: payouts
            .iter()
            .enumerate()
            .map(|(k, (wallet, a))| BatchLeaf {
                wallet: *wallet,
                amount: a.to_string(),
                proof: tree
                    .proof(k)
                    .unwrap_or_default()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            })
            .collect(),
        typed_data: typed_data(&header.domain, &batch),
        digest: signing_hash(&header.domain, &batch).to_string(),
    })
}

/// What a verified batch file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    pub leaves: usize,
    pub total: U256,
    pub root: B256,
    pub digest: B256,
}

/// Checks `file` offline: each leaf's proof against the root (and one leaf per wallet), the
/// total against the leaves, the typed data's message against the batch, and the digest
/// against the typed data.
pub fn verify(file: &BatchFile) -> Result<BatchSummary, BatchFileError> {
    if file.leaves.is_empty() {
        return Err(BatchFileError::Empty);
    }
    let root = hash(&file.root, "root")?;
    let mut wallets = HashSet::new();
    let mut sum = U256::ZERO;
    for (i, leaf) in file.leaves.iter().enumerate() {
        let n = i + 1;
        if !wallets.insert(leaf.wallet) {
            return Err(BatchFileError::DuplicateWallet { leaf: n });
        }
        let a = amount(&leaf.amount, n)?;
        sum = sum.checked_add(a).ok_or(BatchFileError::Total {
            sum: "more than 2^256".into(),
        })?;
        let proof = leaf
            .proof
            .iter()
            .map(|p| hash(p, "a proof step"))
            .collect::<Result<Vec<_>, _>>()?;
        if !verify_proof(&root, &leaf_hash(leaf.wallet.address(), a), &proof) {
            return Err(BatchFileError::Proof { leaf: n });
        }
    }
    if amount(&file.total, 0).ok() != Some(sum) {
        return Err(BatchFileError::Total {
            sum: sum.to_string(),
        });
    }
    let token = Address::from_str(&file.token).map_err(|_| BatchFileError::Token)?;
    let d = &file.typed_data["domain"];
    let domain = BatchDomain {
        name: d["name"].as_str().unwrap_or_default().to_owned(),
        version: d["version"].as_str().unwrap_or_default().to_owned(),
        chain_id: d["chainId"]
            .as_u64()
            .ok_or(BatchFileError::TypedData("chainId"))?,
        verifying_contract: d["verifyingContract"]
            .as_str()
            .and_then(|a| Address::from_str(a).ok())
            .ok_or(BatchFileError::TypedData("verifyingContract"))?,
    };
    let batch = SettlementBatch {
        batchId: U256::from(file.batch_id),
        root,
        total: sum,
        token,
        periodStart: file.period_start,
        periodEnd: file.period_end,
    };
    // The document must say exactly what the batch says: rebuilt from the batch, it is equal.
    let expected = typed_data(&domain, &batch);
    for (field, what) in [
        ("batchId", "batchId"),
        ("root", "root"),
        ("total", "total"),
        ("token", "token"),
        ("periodStart", "periodStart"),
        ("periodEnd", "periodEnd"),
    ] {
        let given = file.typed_data["message"][field]
            .as_str()
            .map(str::to_lowercase);
        let wanted = expected["message"][field].as_str().map(str::to_lowercase);
        if given != wanted {
            return Err(BatchFileError::TypedData(what));
        }
    }
    if file.typed_data["types"] != expected["types"]
        || file.typed_data["primaryType"] != expected["primaryType"]
    {
        return Err(BatchFileError::TypedData("types"));
    }
    let digest = signing_hash(&domain, &batch);
    if hash(&file.digest, "digest")? != digest {
        return Err(BatchFileError::Digest);
    }
    Ok(BatchSummary {
        leaves: file.leaves.len(),
        total: sum,
        root,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BatchHeader {
        BatchHeader {
            batch_id: 7,
            period_start: 1_796_200_000,
            period_end: 1_796_286_400,
            asset: "USDC".into(),
            token: Address::from_str("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913").unwrap(),
            domain: BatchDomain {
                name: "basis settlement".into(),
                version: "1".into(),
                chain_id: 8453,
                verifying_contract: Address::from_str("0x8004BAa17C55a88189AE136b182e5fdA19dE9b63")
                    .unwrap(),
            },
        }
    }

    fn payouts() -> Vec<(WalletAddress, U256)> {
        [
            ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", 975_000_u64),
            ("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", 1),
            ("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", 42),
        ]
        .into_iter()
        .map(|(w, a)| (WalletAddress::parse(w).unwrap(), U256::from(a)))
        .collect()
    }

    #[test]
    fn a_built_file_verifies_and_matches_the_reference_vectors() {
        let file = build(&header(), &payouts()[..2]).unwrap();
        // The same two payouts and batch as the OpenZeppelin and viem vectors.
        let vectors: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/data/settlement/eip712_vector.json"
        ))
        .unwrap();
        assert_eq!(file.root, vectors["message"]["root"]);
        assert_eq!(file.digest, vectors["digest"]);
        let summary = verify(&file).unwrap();
        assert_eq!((summary.leaves, summary.total), (2, U256::from(975_001)));
    }

    #[test]
    fn every_tampering_is_caught_and_named() {
        let good = build(&header(), &payouts()).unwrap();
        let check = |f: &dyn Fn(&mut BatchFile), err: BatchFileError| {
            let mut file = good.clone();
            f(&mut file);
            assert_eq!(verify(&file), Err(err));
        };
        check(
            &|f| f.leaves[1].amount = "2".into(),
            BatchFileError::Proof { leaf: 2 },
        );
        check(
            &|f| {
                f.leaves[2].proof.pop();
            },
            BatchFileError::Proof { leaf: 3 },
        );
        check(
            &|f| f.leaves[0].amount = "-1".into(),
            BatchFileError::Amount { leaf: 1 },
        );
        check(
            &|f| f.total = "975044".into(),
            BatchFileError::Total {
                sum: "975043".into(),
            },
        );
        check(
            &|f| f.typed_data["message"]["total"] = "1".into(),
            BatchFileError::TypedData("total"),
        );
        check(
            &|f| f.typed_data["domain"]["chainId"] = 1.into(),
            BatchFileError::Digest,
        );
        check(
            &|f| {
                let extra = f.leaves[0].clone();
                f.leaves.push(extra);
            },
            BatchFileError::DuplicateWallet { leaf: 4 },
        );
        check(&|f| f.leaves.clear(), BatchFileError::Empty);
    }
}
