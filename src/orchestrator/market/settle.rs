//! Settlement arithmetic and documents (docs/TASK_MARKET.md, "Settlement"; docs/RECEIPTS.md, "Task
//! settlement receipts"), pure: the fee split of a credit (`fee = gross * bps / 10000` rounded
//! down, `net = gross - fee`), the sealed `task_settlement` receipt, and the evaluation the
//! evaluator-timeout policy stands in with. The store calls these inside the transaction that
//! records the outcome.

use crate::domain::{
    Amount, CanonicalError, Evaluation, HashedReceipt, MAX_SAFE_INTEGER, OutputHash,
    RECEIPT_VERSION_UNMETERED, Receipt, ReceiptHash, ReceiptId, ReceiptKind, SubmissionId, TaskId,
    Usage, WalletAddress, WorkerId,
};
use crate::wire::{EvaluatorTimeoutPolicy, Unpaid};

/// The reason recorded when the timeout policy completes a submission.
pub const AUTO_COMPLETED: &str = "no evaluation before the deadline; auto-completed by policy";
/// The reason recorded when the timeout policy rejects a submission.
pub const AUTO_REJECTED: &str = "no evaluation before the deadline; rejected by policy";

/// The market rules settlement needs (from `[tasks]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlePolicy {
    pub protocol_fee_bps: u16,
    pub max_tokens_per_s: u64,
    pub dispute_window_s: u64,
    pub evaluator_timeout_policy: EvaluatorTimeoutPolicy,
}

/// A credit's amounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub gross: Amount,
    pub fee: Amount,
    pub net: Amount,
}

/// The split of `reward` at `bps`; all zero when not payable.
pub fn split(reward: Amount, bps: u16, unpaid: Option<Unpaid>) -> Split {
    if unpaid.is_some() {
        return Split {
            gross: Amount::ZERO,
            fee: Amount::ZERO,
            net: Amount::ZERO,
        };
    }
    let fee = reward.basis_points(bps.min(10_000));
    Split {
        gross: reward,
        fee,
        // fee ≤ gross because bps ≤ 10000; saturate rather than panic all the same.
        net: reward.checked_sub(fee).unwrap_or(Amount::ZERO),
    }
}

/// The evaluation the timeout policy records for a submission of a task with `threshold`.
pub fn timeout_evaluation(policy: EvaluatorTimeoutPolicy, threshold: u8) -> Evaluation {
    match policy {
        EvaluatorTimeoutPolicy::AutoComplete => Evaluation {
            score: threshold,
            passed: true,
            reasons: vec![AUTO_COMPLETED.to_owned()],
            metric: None,
        },
        EvaluatorTimeoutPolicy::Reject => Evaluation {
            score: 0,
            passed: false,
            reasons: vec![AUTO_REJECTED.to_owned()],
            metric: None,
        },
    }
}

/// What a settlement receipt records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFacts {
    pub issued_at: u64,
    pub worker_id: WorkerId,
    pub wallet: WalletAddress,
    pub model: Option<String>,
    pub task_id: TaskId,
    pub submission_id: SubmissionId,
    pub output_hash: OutputHash,
    pub usage: Option<Usage>,
    /// Claim to submit, measured by the orchestrator.
    pub duration_ms: u64,
    pub simulated: bool,
    /// What the worker is owed (net; 0 on rejection or when not payable).
    pub reward: Amount,
    pub asset: String,
    pub attestation_hash: ReceiptHash,
}

/// Seals a `task_settlement` receipt. Integers are clamped below 2^53 so it always
/// canonicalises (usage is bounded at submit already).
pub fn receipt(f: ReceiptFacts) -> Result<HashedReceipt, CanonicalError> {
    let safe = |v: u64| v.min(MAX_SAFE_INTEGER);
    let usage = f.usage.unwrap_or_default();
    Receipt {
        receipt_version: RECEIPT_VERSION_UNMETERED,
        receipt_id: ReceiptId::generate(),
        kind: ReceiptKind::TaskSettlement,
        issued_at: safe(f.issued_at),
        worker_id: f.worker_id,
        wallet: Some(f.wallet),
        model: f.model,
        job_id: None,
        task_id: Some(f.task_id),
        submission_id: Some(f.submission_id),
        output_hash: f.output_hash,
        usage: Usage {
            prompt_tokens: safe(usage.prompt_tokens),
            completion_tokens: safe(usage.completion_tokens),
        },
        duration_ms: safe(f.duration_ms),
        simulated: f.simulated,
        reward: f.reward,
        asset: f.asset,
        attestation_hash: Some(f.attestation_hash),
        metering: None,
    }
    .seal()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::verify_receipt_json;

    #[test]
    fn fee_is_rounded_down_and_net_is_the_rest() {
        let s = split(Amount::from_atomic(1_000_000), 250, None);
        assert_eq!(
            (s.gross.atomic(), s.fee.atomic(), s.net.atomic()),
            (1_000_000, 25_000, 975_000)
        );
        let s = split(Amount::from_atomic(399), 250, None);
        assert_eq!((s.fee.atomic(), s.net.atomic()), (9, 390));
        let s = split(Amount::from_atomic(u128::MAX), 10_000, None);
        assert_eq!(
            (s.fee, s.net),
            (Amount::from_atomic(u128::MAX), Amount::ZERO)
        );
        let s = split(Amount::from_atomic(1_000), 0, None);
        assert_eq!(s.net.atomic(), 1_000);
        let s = split(Amount::from_atomic(1_000), 250, Some(Unpaid::Simulated));
        assert!(s.gross.is_zero() && s.fee.is_zero() && s.net.is_zero());
    }

    #[test]
    fn timeout_evaluations_are_valid_and_decide_as_the_policy_says() {
        let pass = timeout_evaluation(EvaluatorTimeoutPolicy::AutoComplete, 70);
        pass.validate().unwrap();
        assert!(pass.passes(70));
        let reject = timeout_evaluation(EvaluatorTimeoutPolicy::Reject, 70);
        reject.validate().unwrap();
        assert!(!reject.passes(70));
    }

    #[test]
    fn the_receipt_verifies_from_its_json() {
        let eval = timeout_evaluation(EvaluatorTimeoutPolicy::AutoComplete, 70);
        let r = receipt(ReceiptFacts {
            issued_at: 1_790_000_000,
            worker_id: WorkerId::parse("gpu-1").unwrap(),
            wallet: WalletAddress::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap(),
            model: Some("llama3.2:1b".into()),
            task_id: TaskId::generate(),
            submission_id: SubmissionId::generate(),
            output_hash: OutputHash::of(b"out"),
            usage: Some(Usage {
                prompt_tokens: 3,
                completion_tokens: u64::MAX,
            }),
            duration_ms: 1_234,
            simulated: false,
            reward: Amount::from_atomic(975_000),
            asset: "USDC".into(),
            attestation_hash: eval.attestation_hash().unwrap(),
        })
        .unwrap();
        assert_eq!(r.receipt.kind, ReceiptKind::TaskSettlement);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(verify_receipt_json(&json).unwrap(), r.receipt_hash);
        assert_eq!(json["reward"], "975000");
    }
}
