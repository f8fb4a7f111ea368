//! The domain vocabulary: identifiers, wallet addresses, hashes, amounts, receipts and the
//! worker token. Everything else in the crate speaks these types.
//!
//! Architecture invariant: this module imports nothing else from the crate (ARCHITECTURE.md's
//! layer table; `tests/architecture.rs` fails on any path from these files that leaves it).
//! Every type here validates on construction, so holding one is proof the value is well formed.

mod agent_registry;
mod amount;
mod batch_file;
mod canonical;
mod device_key;
mod float_check;
mod hash;
mod ids;
mod label;
mod merkle;
mod metering;
mod metric;
mod problem;
mod receipt;
mod receipt_log;
mod runtime;
mod settlement_batch;
mod task;
mod task_state;
mod token;
mod wallet;

pub use agent_registry::{AgentRegistry, AgentRegistryError};
pub use amount::{Amount, AmountError};
pub use batch_file::{
    BatchFile, BatchFileError, BatchHeader, BatchLeaf, BatchSummary, build as build_batch_file,
    verify as verify_batch_file,
};
pub use canonical::{CanonicalError, canonical_bytes, canonical_hash};
pub use device_key::{
    DEVICE_KEY_PREFIX, DEVICE_KEY_TEXT_LEN, DeviceKey, DeviceKeyError, DevicePublicKey,
    KeyFingerprint,
};
pub use float_check::MAX_SAFE_INTEGER;
pub use hash::{HashError, OutputHash, ReceiptHash, TokenSha256, keccak256_hex};
pub use ids::{
    IdError, JobId, ReceiptId, ReplicaId, SubmissionId, TaskId, WorkerId, WorkerIdFaults,
};
pub use label::{LabelError, MAX_LABEL_LEN, MAX_LABELS, check_label, check_labels, parse_labels};
pub use merkle::{MerkleError, PayoutTree, leaf_hash, proof_nodes, verify_proof};
pub use metering::{MAX_CREDITED_TOKENS, Metering, Price, Unpaid, Usage};
pub use metric::{
    MAX_METRIC_LEN, MetricError, MetricGoal, MetricSpec, MetricValue,
    check_name as check_metric_name,
};
pub use problem::{ErrorCode, Problem};
pub use receipt::{
    HashedReceipt, RECEIPT_VERSION, RECEIPT_VERSION_UNMETERED, Receipt, ReceiptError, ReceiptKind,
    verify_receipt_json,
};
pub use receipt_log::{GENESIS, LogError, LogSummary, LogWriter, verify_log};
pub use runtime::{Runtime, UnknownRuntime};
pub use settlement_batch::{
    BatchDomain, SettlementBatch, signing_hash as batch_signing_hash,
    struct_hash as batch_struct_hash, typed_data as batch_typed_data,
};
pub use task::{
    Evaluation, EvaluationError, MAX_REASON_LEN, MAX_REASONS, MAX_SCORE, OutputFormat,
    OutputFormatError, TaskStatus, UnknownOutputFormat, UnknownTaskStatus,
};
pub use task_state::{Forbidden, MAX_ATTEMPTS, Moved, TaskEvent, transition};
pub use token::{TOKEN_HEX_LEN, TokenError, TokenFingerprint, WorkerToken};
pub use wallet::{WalletAddress, WalletError};
