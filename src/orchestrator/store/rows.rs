//! Decoding stored rows, once for every backend: a backend reads its driver's row through
//! [`Columns`] (text, integers, flags, bytes by column index) and these functions turn the
//! columns into [`WorkerRow`], [`TaskRow`], [`SubmissionRow`] and [`Credit`], so the two
//! backends cannot disagree on what a stored value means. The column lists ([`TASK_COLUMNS`]
//! and the others) are the order the decoders read; both schemas hold the same columns.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{KeyEntry, KeyRole, KeySha256, StoreError, SubmissionRow, TaskRow, WorkerRow, secs};
use crate::domain::{
    Amount, DevicePublicKey, JobId, MetricValue, OutputHash, ReceiptHash, ReceiptId, SubmissionId,
    TaskId, TaskStatus, TokenSha256, WalletAddress, WorkerId,
};
use crate::wire::{Credit, Dispute, HardwareSummary, KeyLimits, KeyUsage, RegisterRequest, Unpaid};

/// One result row, read by column index.
pub trait Columns {
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn flag(&self, i: usize) -> Result<bool, StoreError>;
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;
}

pub const WORKER_COLUMNS: &str = "worker_id, wallet, runtime, models, token_sha256, hardware, \
     version, multi_task, registered_at, updated_at, last_seen, connected_since, jobs_completed, \
     jobs_failed, rewards_pending, labels, public_key, revoked_at";

pub const TASK_COLUMNS: &str = "task_id, client, description, criteria, required_capabilities, \
     reward, asset, deadline_ms, output_format, claim_ttl_s, evaluator, pass_threshold, input, \
     status, attempts, created_ms, claimed_by, claimed_ms, claim_expiry_ms, submission_id, \
     client_key_sha256, min_vram_mib, family, metric";

/// The submission's columns, from `submissions s JOIN tasks t LEFT JOIN receipts r`.
pub const SUBMISSION_COLUMNS: &str = "s.submission_id, s.task_id, s.worker_id, t.status, \
     t.output_format, s.output, s.output_hash, s.usage, s.duration_ms, s.claimed_ms, \
     s.submitted_ms, s.evaluation_deadline_ms, s.evaluation, s.attestation_hash, \
     s.evaluated_ms, s.auto_evaluated, s.dispute_deadline_ms, s.dispute_reason, s.disputed_ms, \
     s.resolution, s.resolution_note, s.resolved_ms, s.receipt_id, r.receipt_hash, s.metric";

/// A credit's state, derived from the batch holding it (docs/SETTLEMENT.md, "Batches").
pub const PENDING: &str = "pending";
pub const BATCHED: &str = "batched";
pub const PAID: &str = "paid";

/// A credit's columns, from `store::settlement::CREDITS_WITH_BATCH` (`c` the credit, `b`
/// the batch holding it).
pub const CREDIT_COLUMNS: &str = "c.submission_id, c.task_id, c.worker_id, c.wallet, c.gross, \
     c.fee, c.net, c.asset, c.unpaid, c.created_ms, c.receipt_id, c.receipt_hash, b.batch_id, \
     b.tx_hash, c.job_id";

/// A key with its usage on one day, from `keys k LEFT JOIN key_usage u` (the day bound by the
/// caller), in the order [`key_entry`] reads.
pub const KEY_COLUMNS: &str = "k.key_sha256, k.role, k.label, k.created_at, k.revoked_at, \
     k.requests_per_minute, k.tokens_per_day, u.requests, u.prompt_tokens, u.completion_tokens, \
     u.amount";

/// A key, from [`KEY_COLUMNS`].
pub fn key_entry(row: &impl Columns) -> Result<KeyEntry, StoreError> {
    let count = |i, what| opt_ms(row, i, what).map(Option::unwrap_or_default);
    Ok(KeyEntry {
        sha256: KeySha256(hash32("key hash", &row.opt_bytes(0)?.unwrap_or_default())?),
        role: parse("key role", row.text(1)?.parse::<KeyRole>())?,
        label: row.opt_text(2)?,
        created_at: ms(row, 3, "key created")?,
        revoked_at: opt_ms(row, 4, "key revoked")?,
        limits: KeyLimits {
            requests_per_minute: row
                .opt_int(5)?
                .map(|v| parse("requests per minute", u32::try_from(v)))
                .transpose()?,
            tokens_per_day: opt_ms(row, 6, "tokens per day")?,
        },
        usage: KeyUsage {
            requests: count(7, "key requests")?,
            prompt_tokens: count(8, "key prompt tokens")?,
            completion_tokens: count(9, "key completion tokens")?,
            amount: row
                .opt_text(10)?
                .map(|a| parse("key usage amount", Amount::parse(&a)))
                .transpose()?
                .unwrap_or_default(),
        },
    })
}

/// A key's usage on each day, from `key_usage` (`?1` its sha256, `?2` and `?3` the first and
/// last day), oldest first, in the order [`day_usage`] reads.
pub const KEY_USAGE_DAYS: &str = "SELECT day, requests, prompt_tokens, completion_tokens, amount \
     FROM key_usage WHERE key_sha256 = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day";

/// One day of a key's usage, from [`KEY_USAGE_DAYS`].
pub fn day_usage(row: &impl Columns) -> Result<(u64, KeyUsage), StoreError> {
    Ok((
        ms(row, 0, "usage day")?,
        KeyUsage {
            requests: ms(row, 1, "key requests")?,
            prompt_tokens: ms(row, 2, "key prompt tokens")?,
            completion_tokens: ms(row, 3, "key completion tokens")?,
            amount: parse("key usage amount", Amount::parse(&row.text(4)?))?,
        },
    ))
}

/// A listed receipt from `issued_at, receipt_id, body`: its position and its JSON.
pub fn receipt_row(row: &impl Columns) -> Result<super::ListedReceipt, StoreError> {
    Ok((
        (
            ms(row, 0, "issued_at")?,
            parse("receipt id", ReceiptId::parse(&row.text(1)?))?,
        ),
        row.text(2)?,
    ))
}

/// The reward as a 40-digit, zero-padded decimal: text order is numeric order.
pub fn reward_key(a: Amount) -> String {
    format!("{:040}", a.atomic())
}

pub fn to_json<T: Serialize>(what: &'static str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| corrupt(what, e))
}

fn from_json<T: DeserializeOwned>(what: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

pub fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

fn parse<T, E: std::fmt::Display>(what: &'static str, r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| corrupt(what, e))
}

/// A stored integer that must not be negative.
pub fn unsigned(v: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(what, "negative integer"))
}

/// A `u64` (times, counters) as a signed 64-bit column, saturating.
pub fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn ms(row: &impl Columns, i: usize, what: &'static str) -> Result<u64, StoreError> {
    unsigned(row.int(i)?, what)
}

fn opt_ms(row: &impl Columns, i: usize, what: &'static str) -> Result<Option<u64>, StoreError> {
    row.opt_int(i)?.map(|v| unsigned(v, what)).transpose()
}

fn hash32(what: &'static str, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(bytes).map_err(|_| corrupt(what, "not 32 bytes"))
}

/// The registration fields as column values, in `WORKER_COLUMNS` order up to `multi_task`.
#[derive(Debug, Clone)]
pub struct RegColumns {
    pub worker_id: String,
    pub wallet: String,
    pub runtime: &'static str,
    pub models: String,
    pub token: [u8; 32],
    pub hardware: Option<String>,
    pub version: String,
    pub multi_task: bool,
    pub labels: String,
    pub public_key: Option<[u8; 32]>,
}

impl RegColumns {
    pub fn of(reg: &RegisterRequest) -> Result<Self, StoreError> {
        Ok(Self {
            worker_id: reg.worker_id.as_str().to_owned(),
            wallet: reg.wallet.checksummed(),
            runtime: reg.runtime.as_str(),
            models: to_json("models", &reg.models)?,
            token: *reg.token_sha256.as_bytes(),
            hardware: reg
                .hardware
                .as_ref()
                .map(|h| to_json("hardware", h))
                .transpose()?,
            version: reg.version.clone(),
            multi_task: reg.multi_task,
            labels: to_json("labels", &reg.labels)?,
            public_key: reg.public_key.map(|k| *k.as_bytes()),
        })
    }
}

/// A worker, from [`WORKER_COLUMNS`].
/// A [`super::ReplicaRoute`] from `replica_id, internal_url, models, count`.
pub fn replica_route(row: &impl Columns) -> Result<super::ReplicaRoute, StoreError> {
    Ok(super::ReplicaRoute {
        replica_id: parse("replica id", crate::domain::ReplicaId::parse(&row.text(0)?))?,
        internal_url: row.text(1)?,
        models: from_json("models", &row.text(2)?)?,
        workers: ms(row, 3, "worker count")?,
    })
}

pub fn worker(row: &impl Columns) -> Result<WorkerRow, StoreError> {
    let token = row
        .opt_bytes(4)?
        .ok_or_else(|| corrupt("token hash", "missing"))?;
    Ok(WorkerRow {
        worker_id: parse("worker id", WorkerId::parse(&row.text(0)?))?,
        wallet: parse("wallet", WalletAddress::parse(&row.text(1)?))?,
        runtime: row
            .text(2)?
            .parse()
            .map_err(|_| corrupt("runtime", "unknown runtime"))?,
        models: from_json("models", &row.text(3)?)?,
        token_sha256: TokenSha256::from_bytes(hash32("token hash", &token)?),
        hardware: row
            .opt_text(5)?
            .map(|h| from_json::<HardwareSummary>("hardware", &h))
            .transpose()?,
        version: row.text(6)?,
        multi_task: row.flag(7)?,
        registered_at: ms(row, 8, "registered_at")?,
        updated_at: ms(row, 9, "updated_at")?,
        last_seen: opt_ms(row, 10, "last_seen")?,
        connected_since: opt_ms(row, 11, "connected_since")?,
        jobs_completed: ms(row, 12, "jobs_completed")?,
        jobs_failed: ms(row, 13, "jobs_failed")?,
        rewards_pending: parse("rewards_pending", Amount::parse(&row.text(14)?))?,
        labels: from_json("labels", &row.text(15)?)?,
        public_key: row
            .opt_bytes(16)?
            .map(|k| {
                DevicePublicKey::from_bytes(&hash32("public key", &k)?)
                    .map_err(|_| corrupt("public key", "not an Ed25519 point"))
            })
            .transpose()?,
        revoked_at: opt_ms(row, 17, "revoked_at")?,
    })
}

/// A task, from [`TASK_COLUMNS`].
pub fn task(row: &impl Columns) -> Result<TaskRow, StoreError> {
    Ok(TaskRow {
        task_id: parse("task id", TaskId::parse(&row.text(0)?))?,
        client: row.text(1)?,
        description: row.text(2)?,
        criteria: from_json("criteria", &row.text(3)?)?,
        required_capabilities: from_json("capabilities", &row.text(4)?)?,
        reward: parse("reward", Amount::parse(&row.text(5)?))?,
        asset: row.text(6)?,
        deadline_ms: ms(row, 7, "deadline")?,
        output_format: parse("output format", row.text(8)?.parse())?,
        claim_ttl_s: ms(row, 9, "claim_ttl_s")?,
        evaluator: row.text(10)?,
        pass_threshold: parse("pass threshold", u8::try_from(row.int(11)?))?,
        input: row
            .opt_text(12)?
            .map(|s| from_json("input", &s))
            .transpose()?,
        status: parse("task status", row.text(13)?.parse())?,
        attempts: parse("attempts", u32::try_from(row.int(14)?))?,
        created_ms: ms(row, 15, "created")?,
        claimed_by: row
            .opt_text(16)?
            .map(|s| parse("worker id", WorkerId::parse(&s)))
            .transpose()?,
        claimed_ms: opt_ms(row, 17, "claimed")?,
        claim_expiry_ms: opt_ms(row, 18, "claim expiry")?,
        submission_id: row
            .opt_text(19)?
            .map(|s| parse("submission id", SubmissionId::parse(&s)))
            .transpose()?,
        client_key: row
            .opt_bytes(20)?
            .map(|k| hash32("client key hash", &k).map(KeySha256))
            .transpose()?,
        min_vram_mib: opt_ms(row, 21, "min_vram_mib")?,
        family: row.opt_text(22)?,
        metric: row
            .opt_text(23)?
            .map(|m| from_json("metric", &m))
            .transpose()?,
    })
}

/// A submission (without its credit), from [`SUBMISSION_COLUMNS`].
pub fn submission(row: &impl Columns) -> Result<SubmissionRow, StoreError> {
    let dispute = match row.opt_text(17)? {
        Some(reason) => Some(Dispute {
            reason,
            raised_at: opt_ms(row, 18, "disputed")?.map_or(0, secs),
            resolution: row
                .opt_text(19)?
                .map(|s| parse("resolution", s.parse::<TaskStatus>()))
                .transpose()?,
            resolution_note: row.opt_text(20)?,
            resolved_at: opt_ms(row, 21, "resolved")?.map(secs),
        }),
        None => None,
    };
    Ok(SubmissionRow {
        submission_id: parse("submission id", SubmissionId::parse(&row.text(0)?))?,
        task_id: parse("task id", TaskId::parse(&row.text(1)?))?,
        worker_id: parse("worker id", WorkerId::parse(&row.text(2)?))?,
        status: parse("task status", row.text(3)?.parse())?,
        output_format: parse("output format", row.text(4)?.parse())?,
        output: row.text(5)?,
        output_hash: parse("output hash", OutputHash::parse(&row.text(6)?))?,
        usage: row
            .opt_text(7)?
            .map(|u| from_json("usage", &u))
            .transpose()?,
        duration_ms: opt_ms(row, 8, "duration")?,
        claimed_ms: ms(row, 9, "claimed")?,
        submitted_ms: ms(row, 10, "submitted")?,
        evaluation_deadline_ms: ms(row, 11, "evaluation deadline")?,
        evaluation: row
            .opt_text(12)?
            .map(|e| from_json("evaluation", &e))
            .transpose()?,
        attestation_hash: row
            .opt_text(13)?
            .map(|h| parse("attestation hash", ReceiptHash::parse(&h)))
            .transpose()?,
        evaluated_ms: opt_ms(row, 14, "evaluated")?,
        auto_evaluated: row.flag(15)?,
        dispute_deadline_ms: opt_ms(row, 16, "dispute deadline")?,
        dispute,
        credit: None,
        receipt_id: row
            .opt_text(22)?
            .map(|r| parse("receipt id", ReceiptId::parse(&r)))
            .transpose()?,
        receipt_hash: row
            .opt_text(23)?
            .map(|h| parse("receipt hash", ReceiptHash::parse(&h)))
            .transpose()?,
        metric: row
            .opt_text(24)?
            .map(|m| parse("metric", MetricValue::parse(&m)))
            .transpose()?,
    })
}

/// A credit, from [`CREDIT_COLUMNS`].
pub fn credit(row: &impl Columns) -> Result<Credit, StoreError> {
    let amount =
        |i: usize| -> Result<Amount, StoreError> { parse("amount", Amount::parse(&row.text(i)?)) };
    Ok(Credit {
        submission_id: row
            .opt_text(0)?
            .map(|s| parse("submission id", SubmissionId::parse(&s)))
            .transpose()?,
        task_id: row
            .opt_text(1)?
            .map(|s| parse("task id", TaskId::parse(&s)))
            .transpose()?,
        job_id: row
            .opt_text(14)?
            .map(|s| parse("job id", JobId::parse(&s)))
            .transpose()?,
        worker_id: parse("worker id", WorkerId::parse(&row.text(2)?))?,
        wallet: parse("wallet", WalletAddress::parse(&row.text(3)?))?,
        gross: amount(4)?,
        fee: amount(5)?,
        net: amount(6)?,
        asset: row.text(7)?,
        asset_decimals: None,
        unpaid: row
            .opt_text(8)?
            .map(|u| from_json::<Unpaid>("unpaid", &format!("\"{u}\"")))
            .transpose()?,
        status: match (row.opt_int(12)?, row.opt_text(13)?) {
            (None, _) => PENDING,
            (Some(_), None) => BATCHED,
            (Some(_), Some(_)) => PAID,
        }
        .to_owned(),
        created_at: secs(ms(row, 9, "credited")?),
        receipt_id: parse("receipt id", ReceiptId::parse(&row.text(10)?))?,
        receipt_hash: parse("receipt hash", ReceiptHash::parse(&row.text(11)?))?,
        batch_id: row
            .opt_int(12)?
            .map(|b| u64::try_from(b).map_err(|e| corrupt("batch id", e)))
            .transpose()?,
    })
}

/// A credit's `unpaid` reason as stored (its serde name, without quotes).
pub fn unpaid_text(unpaid: Option<Unpaid>) -> Result<Option<String>, StoreError> {
    unpaid
        .map(|u| to_json("unpaid", &u).map(|s| s.trim_matches('"').to_owned()))
        .transpose()
}
