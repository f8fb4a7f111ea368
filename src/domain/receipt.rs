//! Receipts (docs/RECEIPTS.md): the versioned record of a finished gateway job or an evaluated
//! submission, sealed with `receipt_hash = keccak256(JCS(receipt without receipt_hash))` and
//! verifiable offline from its JSON alone.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::amount::Amount;
use super::canonical::{CanonicalError, canonical_hash};
use super::hash::{HashError, OutputHash, ReceiptHash};
use super::ids::{JobId, ReceiptId, SubmissionId, TaskId, WorkerId};
use super::metering::{Metering, Usage};
use super::wallet::WalletAddress;

/// The newest receipt format this build writes and reads: version 2 added `metering` to
/// gateway job receipts. Readers accept every version up to it.
pub const RECEIPT_VERSION: u32 = 2;
/// The format of a receipt without `metering` (task settlements), unchanged since version 1,
/// so that older verifiers still accept them.
pub const RECEIPT_VERSION_UNMETERED: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("receipt is not a JSON object with a receipt_hash field")]
    NotAReceipt,
    #[error(transparent)]
    BadHash(#[from] HashError),
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    #[error("receipt_hash does not match: recomputed {computed}, the receipt says {claimed}")]
    Mismatch {
        claimed: ReceiptHash,
        computed: ReceiptHash,
    },
    #[error("receipt version {0} is newer than this build understands ({RECEIPT_VERSION})")]
    UnknownVersion(u64),
}

/// What the receipt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// A chat completion served through the gateway.
    GatewayJob,
    /// An evaluated task submission.
    TaskSettlement,
}

impl ReceiptKind {
    /// The kind as it is written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GatewayJob => "gateway_job",
            Self::TaskSettlement => "task_settlement",
        }
    }
}

/// A receipt before sealing. Integers are small (< 2^53); amounts are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Receipt {
    pub receipt_version: u32,
    pub receipt_id: ReceiptId,
    pub kind: ReceiptKind,
    /// Unix seconds.
    pub issued_at: u64,
    pub worker_id: WorkerId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<WalletAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<SubmissionId>,
    pub output_hash: OutputHash,
    pub usage: Usage,
    pub duration_ms: u64,
    /// True when the work ran on the echo simulator (and so pays nothing).
    pub simulated: bool,
    pub reward: Amount,
    pub asset: String,
    /// keccak256(JCS(evaluation)) for task settlements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_hash: Option<ReceiptHash>,
    /// For gateway jobs (version 2 on): the counts and amounts `reward` was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metering: Option<Metering>,
}

/// A receipt with its hash: what is stored, served and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HashedReceipt {
    #[serde(flatten)]
    pub receipt: Receipt,
    pub receipt_hash: ReceiptHash,
}

impl Receipt {
    pub fn seal(self) -> Result<HashedReceipt, CanonicalError> {
        let receipt_hash = canonical_hash(&self)?;
        Ok(HashedReceipt {
            receipt: self,
            receipt_hash,
        })
    }
}

impl HashedReceipt {
    /// Recomputes the hash from the receipt's own fields.
    pub fn verify(&self) -> Result<(), ReceiptError> {
        let computed = canonical_hash(&self.receipt)?;
        if computed == self.receipt_hash {
            Ok(())
        } else {
            Err(ReceiptError::Mismatch {
                claimed: self.receipt_hash,
                computed,
            })
        }
    }
}

/// Verifies a receipt from its JSON alone, whatever fields it carries: drop `receipt_hash`,
/// canonicalise the rest, keccak256, compare. Returns the verified hash.
pub fn verify_receipt_json(value: &Value) -> Result<ReceiptHash, ReceiptError> {
    let Value::Object(map) = value else {
        return Err(ReceiptError::NotAReceipt);
    };
    let claimed = map
        .get("receipt_hash")
        .and_then(Value::as_str)
        .ok_or(ReceiptError::NotAReceipt)?;
    let claimed = ReceiptHash::parse(claimed)?;
    if let Some(v) = map.get("receipt_version").and_then(Value::as_u64)
        && v > u64::from(RECEIPT_VERSION)
    {
        return Err(ReceiptError::UnknownVersion(v));
    }
    let mut body = map.clone();
    body.remove("receipt_hash");
    let computed = canonical_hash(&body)?;
    if computed == claimed {
        Ok(computed)
    } else {
        Err(ReceiptError::Mismatch { claimed, computed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_json_names() {
        for kind in [ReceiptKind::GatewayJob, ReceiptKind::TaskSettlement] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    fn sample() -> Receipt {
        Receipt {
            receipt_version: RECEIPT_VERSION,
            receipt_id: ReceiptId::parse("rcpt-0123456789abcdef0123456789abcdef").unwrap(),
            kind: ReceiptKind::GatewayJob,
            issued_at: 1_790_000_000,
            worker_id: WorkerId::parse("gpu-1").unwrap(),
            wallet: Some(
                WalletAddress::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap(),
            ),
            model: Some("echo".into()),
            job_id: Some(JobId::parse("job-0123456789abcdef0123456789abcdef").unwrap()),
            task_id: None,
            submission_id: None,
            output_hash: OutputHash::of(b"hello"),
            usage: Usage {
                prompt_tokens: 3,
                completion_tokens: 5,
            },
            duration_ms: 12,
            simulated: true,
            reward: Amount::ZERO,
            asset: "USDC".into(),
            attestation_hash: None,
            metering: None,
        }
    }

    #[test]
    fn sealed_receipt_verifies_typed_and_from_json() {
        let sealed = sample().seal().unwrap();
        sealed.verify().unwrap();
        let json = serde_json::to_value(&sealed).unwrap();
        assert_eq!(verify_receipt_json(&json).unwrap(), sealed.receipt_hash);
        let back: HashedReceipt = serde_json::from_value(json).unwrap();
        assert_eq!(back, sealed);
    }

    #[test]
    fn reordered_keys_hash_the_same() {
        let sealed = sample().seal().unwrap();
        let text = serde_json::to_string(&sealed).unwrap();
        let mut map: Vec<(String, Value)> =
            serde_json::from_str::<serde_json::Map<String, Value>>(&text)
                .unwrap()
                .into_iter()
                .collect();
        map.reverse();
        let reversed = format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), v))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_ne!(reversed, text);
        let value: Value = serde_json::from_str(&reversed).unwrap();
        assert_eq!(verify_receipt_json(&value).unwrap(), sealed.receipt_hash);
    }

    #[test]
    fn tampering_is_detected() {
        let sealed = sample().seal().unwrap();
        let mut json = serde_json::to_value(&sealed).unwrap();
        json["reward"] = Value::String("1000".into());
        assert!(matches!(
            verify_receipt_json(&json),
            Err(ReceiptError::Mismatch { .. })
        ));
        let mut typed = sealed.clone();
        typed.receipt.usage.completion_tokens += 1;
        assert!(typed.verify().is_err());
    }
}
