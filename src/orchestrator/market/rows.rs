//! The market's rows in their wire form: [`TaskRow::to_wire`], [`SubmissionRow::to_wire`] and
//! [`credit_with_decimals`], with the asset's decimals from the market's configuration (the
//! store keeps none).

use super::AssetUnits;
use crate::domain::TaskStatus;
use crate::orchestrator::store::{SubmissionRow, TaskRow, secs};
use crate::wire::{Credit, Submission, Task};

impl TaskRow {
    /// The wire form (times in seconds), with the asset's decimals when `units` knows them.
    pub fn to_wire(&self, units: &AssetUnits<'_>) -> Task {
        let claimed = self.status == TaskStatus::Claimed;
        Task {
            task_id: self.task_id.clone(),
            client: self.client.clone(),
            description: self.description.clone(),
            criteria: self.criteria.clone(),
            required_capabilities: self.required_capabilities.clone(),
            min_vram_mib: self.min_vram_mib,
            reward: self.reward,
            asset: self.asset.clone(),
            asset_decimals: units.decimals_of(&self.asset),
            deadline: secs(self.deadline_ms),
            output_format: self.output_format,
            claim_ttl_s: self.claim_ttl_s,
            evaluator: self.evaluator.clone(),
            pass_threshold: self.pass_threshold,
            input: self.input.clone(),
            status: self.status,
            attempts: self.attempts,
            created_at: secs(self.created_ms),
            claimed_by: self.claimed_by.clone(),
            claim_expiry: self.claim_expiry_ms.filter(|_| claimed).map(secs),
            submission_id: self.submission_id.clone(),
            family: self.family.clone(),
            metric: self.metric.clone(),
        }
    }
}

/// `credit` with its asset's decimals, when `units` knows them (the store keeps none).
pub fn credit_with_decimals(mut credit: Credit, units: &AssetUnits<'_>) -> Credit {
    credit.asset_decimals = units.decimals_of(&credit.asset);
    credit
}

impl SubmissionRow {
    /// The wire form (times in seconds), the credit with its asset's decimals when `units`
    /// knows them.
    pub fn to_wire(&self, units: &AssetUnits<'_>) -> Submission {
        Submission {
            submission_id: self.submission_id.clone(),
            task_id: self.task_id.clone(),
            worker_id: self.worker_id.clone(),
            status: self.status,
            output_format: self.output_format,
            output: self.output.clone(),
            output_hash: self.output_hash,
            usage: self.usage,
            duration_ms: self.duration_ms,
            submitted_at: secs(self.submitted_ms),
            evaluation_deadline: secs(self.evaluation_deadline_ms),
            evaluation: self.evaluation.clone(),
            attestation_hash: self.attestation_hash,
            evaluated_at: self.evaluated_ms.map(secs),
            auto_evaluated: self.auto_evaluated,
            dispute_deadline: self.dispute_deadline_ms.map(secs),
            dispute: self.dispute.clone(),
            credit: self.credit.clone().map(|c| credit_with_decimals(c, units)),
            receipt_id: self.receipt_id.clone(),
            receipt_hash: self.receipt_hash,
            metric: self.metric.clone(),
        }
    }
}
