//! Finished gateway jobs and their receipts in the store: [`JobRecord`] and the [`JobStore`]
//! trait. A job is written once, when it ends, together with its receipt (if it completed) and
//! its worker's counter, in one transaction; writing the same `job_id` again changes nothing
//! and reports what was first recorded, so a result re-sent after a reconnect is idempotent.

use std::fmt;

use futures::future::BoxFuture;

use super::{KeySha256, StoreError};
use crate::domain::{
    Amount, ErrorCode, HashedReceipt, JobId, ReceiptHash, ReceiptId, Usage, WorkerId,
};
use crate::wire::Credit;

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The worker answered: the receipt says what and for whom (`jobs_completed` + 1).
    Completed(Box<HashedReceipt>),
    /// The worker failed it, lost it or missed its deadline (`jobs_failed` + 1).
    Failed(ErrorCode),
    /// The client went away and the worker stopped it: nobody's failure, no counter moves.
    Cancelled,
}

/// A job's prompt and completion tokens each count at most this much towards what its worker
/// served (the leaderboard's `tokens_served`): a worker's own report cannot swamp the ranking
/// or overflow a sum.
pub const MAX_COUNTED_TOKENS: u64 = 1 << 20;

impl JobOutcome {
    /// The tokens a completed job served, as its receipt credits them (as the worker
    /// reported them, for a receipt without metering), each count capped at
    /// [`MAX_COUNTED_TOKENS`]; none for simulated (echo) work, which serves no one.
    pub fn served(&self) -> Option<Usage> {
        match self {
            Self::Completed(receipt) if !receipt.receipt.simulated => {
                let r = &receipt.receipt;
                let u = r.metering.map_or(r.usage, |m| m.credited);
                Some(Usage {
                    prompt_tokens: u.prompt_tokens.min(MAX_COUNTED_TOKENS),
                    completion_tokens: u.completion_tokens.min(MAX_COUNTED_TOKENS),
                })
            }
            _ => None,
        }
    }

    /// What a completed job bills its client key: the tokens it was credited (as the worker
    /// reported them, for a receipt without metering) and the amount it was charged (the
    /// gross, before the protocol fee).
    pub fn billed(&self) -> Option<(Usage, Amount)> {
        let Self::Completed(receipt) = self else {
            return None;
        };
        let r = &receipt.receipt;
        Some(match &r.metering {
            Some(m) => (m.credited, m.gross),
            None => (r.usage, Amount::ZERO),
        })
    }

    /// The credit a completed job that pays (a gross above 0) writes with its receipt: its
    /// worker is owed the receipt's `reward`, net of the fee (docs/SETTLEMENT.md, "Metered
    /// inference"). `None` for a job that pays nothing: no credit row is written for it. A
    /// paying receipt without the job's id or the worker's wallet is refused.
    pub fn credit(&self, created_at: u64) -> Result<Option<Credit>, StoreError> {
        let Self::Completed(receipt) = self else {
            return Ok(None);
        };
        let r = &receipt.receipt;
        let Some(m) = r.metering.as_ref().filter(|m| !m.gross.is_zero()) else {
            return Ok(None);
        };
        let (Some(job_id), Some(wallet)) = (r.job_id.clone(), r.wallet) else {
            return Err(StoreError::Corrupt {
                what: "job credit",
                reason: "a paying receipt names no job or no wallet".into(),
            });
        };
        Ok(Some(Credit {
            submission_id: None,
            task_id: None,
            job_id: Some(job_id),
            worker_id: r.worker_id.clone(),
            wallet,
            gross: m.gross,
            fee: m.fee,
            net: r.reward,
            asset: r.asset.clone(),
            asset_decimals: None,
            unpaid: None,
            status: super::rows::PENDING.to_owned(),
            created_at,
            receipt_id: r.receipt_id.clone(),
            receipt_hash: receipt.receipt_hash,
            batch_id: None,
        }))
    }

    pub fn status(&self) -> JobStatus {
        match self {
            Self::Completed(_) => JobStatus::Completed,
            Self::Failed(_) => JobStatus::Failed,
            Self::Cancelled => JobStatus::Cancelled,
        }
    }
}

/// A job's stored status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Completed, Self::Failed, Self::Cancelled]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finished job, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub job_id: JobId,
    pub worker_id: WorkerId,
    pub model: String,
    pub outcome: JobOutcome,
    /// Unix seconds.
    pub started_at: u64,
    pub finished_at: u64,
    /// The client key the request came with (none with `--open`): a completed job adds its
    /// tokens to that key's usage of the UTC day it finished, in the same transaction.
    pub client_key: Option<KeySha256>,
    /// For a job that failed or was cancelled after streaming part of its answer to the
    /// client: what that part used (a lower bound: the chunks sent, as completion tokens). It
    /// counts against the client key like a completed job's usage.
    pub partial_usage: Option<Usage>,
    /// A completed job's time to first token, milliseconds, as the orchestrator measured
    /// (the leaderboard's p50).
    pub ttft_ms: Option<u64>,
}

/// A listed receipt: its position `(issued_at, receipt_id)` (the next page's cursor) and its
/// JSON as sealed.
pub type ListedReceipt = ((u64, ReceiptId), String);

/// A page of receipts ([`JobStore::receipts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptQuery {
    /// Unix seconds.
    pub since: u64,
    pub worker: Option<WorkerId>,
    /// Resume after this `(issued_at, receipt_id)` (exclusive).
    pub after: Option<(u64, ReceiptId)>,
    pub limit: usize,
}

/// What [`JobStore::record_job`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Written now.
    New,
    /// The job was already recorded (with this status); nothing changed.
    Already(JobStatus),
}

/// Stored jobs and receipts.
pub trait JobStore {
    /// Writes a finished job (its receipt and its worker's counter with it), once per `job_id`.
    fn record_job(&self, job: JobRecord) -> BoxFuture<'_, Result<Recorded, StoreError>>;

    /// The status a job was recorded with, if it was.
    fn job_status(&self, id: JobId) -> BoxFuture<'_, Result<Option<JobStatus>, StoreError>>;

    /// Receipts as sealed, in `(issued_at, receipt_id)` order: issued at or after `since`,
    /// of `worker` when given, after the `after` position, at most `limit`. Each comes with
    /// its position, the cursor of the next page.
    fn receipts(
        &self,
        query: ReceiptQuery,
    ) -> BoxFuture<'_, Result<Vec<ListedReceipt>, StoreError>>;

    /// A receipt's JSON exactly as sealed, by id.
    fn receipt(&self, id: ReceiptId) -> BoxFuture<'_, Result<Option<String>, StoreError>>;

    /// A receipt's JSON exactly as sealed, by its hash.
    fn receipt_by_hash(
        &self,
        hash: ReceiptHash,
    ) -> BoxFuture<'_, Result<Option<String>, StoreError>>;
}
