//! Merkle trees of payouts, compatible with OpenZeppelin's `StandardMerkleTree` and
//! `MerkleProof.verify` (docs/SETTLEMENT.md, "The Merkle tree"): a leaf is
//! `keccak256(keccak256(abi.encode(address, uint256)))`, leaves are sorted by hash, inner
//! nodes hash their two children in byte order, and the tree is laid out as OpenZeppelin's
//! (a complete binary tree in one array, leaves at the end in reverse), so roots and proofs
//! are the same bytes as `@openzeppelin/merkle-tree` makes.

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolValue as _;

/// Why a tree cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("a Merkle tree needs at least one leaf")]
    Empty,
}

/// The leaf of `(account, amount)`: the double keccak of its ABI encoding.
pub fn leaf_hash(account: Address, amount: U256) -> B256 {
    let encoded = (account, amount).abi_encode();
    keccak256(keccak256(encoded))
}

/// OpenZeppelin's commutative pair hash: the two nodes in byte order, concatenated, hashed.
fn hash_pair(a: &B256, b: &B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut bytes = [0_u8; 64];
    bytes[..32].copy_from_slice(lo.as_slice());
    bytes[32..].copy_from_slice(hi.as_slice());
    keccak256(bytes)
}

/// A built tree: its nodes, and where each input leaf sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutTree {
    /// OpenZeppelin's layout: node `i` has children `2i + 1` and `2i + 2`; the root is 0.
    nodes: Vec<B256>,
    /// For input `k`, its node index.
    positions: Vec<usize>,
}

impl PayoutTree {
    /// Builds the tree of `leaves` (already hashed with [`leaf_hash`]), in input order.
    pub fn new(leaves: &[B256]) -> Result<Self, MerkleError> {
        if leaves.is_empty() {
            return Err(MerkleError::Empty);
        }
        // Sorted by hash, as StandardMerkleTree does by default; ties keep input order.
        let mut order: Vec<usize> = (0..leaves.len()).collect();
        order.sort_by(|&a, &b| leaves[a].cmp(&leaves[b]).then(a.cmp(&b)));
        let len = 2 * leaves.len() - 1;
        let mut nodes = vec![B256::ZERO; len];
        let mut positions = vec![0; leaves.len()];
        for (sorted, &input) in order.iter().enumerate() {
            let at = len - 1 - sorted;
            nodes[at] = leaves[input];
            positions[input] = at;
        }
        for i in (0..len - leaves.len()).rev() {
            nodes[i] = hash_pair(&nodes[2 * i + 1], &nodes[2 * i + 2]);
        }
        Ok(Self { nodes, positions })
    }

    pub fn root(&self) -> B256 {
        self.nodes[0]
    }

    /// The proof of input leaf `k` (siblings from the leaf up); `None` past the last leaf.
    pub fn proof(&self, k: usize) -> Option<Vec<B256>> {
        let at = *self.positions.get(k)?;
        Some(proof_nodes(at).into_iter().map(|i| self.nodes[i]).collect())
    }

    /// Every node, in OpenZeppelin's layout (the root first).
    pub fn nodes(&self) -> &[B256] {
        &self.nodes
    }

    /// The node index of input leaf `k`.
    pub fn node_of(&self, k: usize) -> Option<usize> {
        self.positions.get(k).copied()
    }
}

/// The indices of the nodes a proof of the leaf at node `at` is made of: its sibling, then
/// each ancestor's sibling, up to (not including) the root. A stored tree answers a proof
/// with these lookups alone.
pub fn proof_nodes(mut at: usize) -> Vec<usize> {
    let mut out = Vec::new();
    while at > 0 {
        out.push(if at % 2 == 1 { at + 1 } else { at - 1 });
        at = (at - 1) / 2;
    }
    out
}

/// `MerkleProof.verify`: folds `proof` into `leaf` with the pair hash and compares to `root`.
pub fn verify_proof(root: &B256, leaf: &B256, proof: &[B256]) -> bool {
    proof
        .iter()
        .fold(*leaf, |node, sibling| hash_pair(&node, sibling))
        == *root
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use super::*;

    /// The vectors `@openzeppelin/merkle-tree` made (tests/data/settlement/README.md).
    fn vectors() -> serde_json::Value {
        let text = include_str!("../../tests/data/settlement/merkle_vectors.json");
        serde_json::from_str(text).unwrap()
    }

    fn b256(v: &serde_json::Value) -> B256 {
        B256::from_str(v.as_str().unwrap()).unwrap()
    }

    #[test]
    fn roots_and_proofs_match_openzeppelin() {
        for (name, case) in vectors().as_object().unwrap() {
            let entries = case["leaves"].as_array().unwrap();
            let leaves: Vec<B256> = entries
                .iter()
                .map(|e| {
                    let account = Address::from_str(e["address"].as_str().unwrap()).unwrap();
                    let amount = U256::from_str(e["amount"].as_str().unwrap()).unwrap();
                    leaf_hash(account, amount)
                })
                .collect();
            let tree = PayoutTree::new(&leaves).unwrap();
            let root = b256(&case["root"]);
            assert_eq!(tree.root(), root, "{name}: root");
            for (k, e) in entries.iter().enumerate() {
                let expected: Vec<B256> = e["proof"].as_array().unwrap().iter().map(b256).collect();
                let proof = tree.proof(k).unwrap();
                assert_eq!(proof, expected, "{name}: proof of leaf {k}");
                assert!(verify_proof(&root, &leaves[k], &proof), "{name}: leaf {k}");
            }
            assert!(tree.proof(entries.len()).is_none());
        }
    }

    #[test]
    fn a_changed_amount_or_proof_fails() {
        let a = Address::from_str("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
        let b = Address::from_str("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359").unwrap();
        let leaves = [leaf_hash(a, U256::from(10)), leaf_hash(b, U256::from(20))];
        let tree = PayoutTree::new(&leaves).unwrap();
        let proof = tree.proof(0).unwrap();
        assert!(verify_proof(&tree.root(), &leaves[0], &proof));
        assert!(!verify_proof(
            &tree.root(),
            &leaf_hash(a, U256::from(11)),
            &proof
        ));
        assert!(!verify_proof(&tree.root(), &leaves[0], &[B256::ZERO]));
        assert_eq!(PayoutTree::new(&[]), Err(MerkleError::Empty));
    }
}
