//! Wire types: the JSON bodies of the orchestrator's HTTP API (docs/PROTOCOL.md), shared by the
//! server (`crate::orchestrator`) and its client (`crate::client`), and the documents one local
//! process writes for another (`worker-status.json`, `worker_status`). One file per noun.
//!
//! Serialization is an IPC boundary: these types are what other processes (and other versions
//! of basis) see, so they change only additively. Their JSON Schemas (schemars) become the
//! `OpenAPI` components at `/openapi.json` and the snapshots under `schemas/`.
//!
//! Architecture invariant: this module depends only on `crate::domain`; it never imports the
//! orchestrator, the client, the operations or the fronts.

mod capabilities;
mod channel;
mod discovery;
mod error;
mod gateway;
mod hardware;
mod health;
mod keys;
mod onboarding;
mod paths;
mod receipts;
pub mod schema;
mod settlement;
pub mod signature;
mod tasks;
mod worker_status;
mod workers;

pub use capabilities::Capabilities;
pub use channel::{JobErrorCode, JobTimings, OrchestratorMessage, WorkerMessage};
pub use discovery::{
    AgentCounters, AgentLinkRequest, AgentRegistration, AgentRegistrationRef, AgentService,
    LEADERBOARD, LEADERBOARD_PAGE_DEFAULT, LEADERBOARD_PAGE_MAX, Leaderboard, LeaderboardBy,
    LeaderboardEntry, LeaderboardQuery, LeaderboardWindow, NETWORK_REGISTRATION, REGISTRATION_TYPE,
    agent_link_path, worker_registration_path,
};
pub use error::{ApiErrorBody, known_code};
pub use gateway::{
    AssistantMessage, CHAT_COMPLETIONS, ChatChoice, ChatCompletion, ChatCompletionChunk,
    ChunkChoice, ChunkDelta, CompletionUsage, JOB_ID_HEADER, MODELS, ModelEntry, ModelList,
    RECEIPT_HASH_HEADER, RECEIPT_ID_HEADER, REPLICA_CHAT_COMPLETIONS, REPLICA_ID_HEADER,
    REPLICA_KEY_CHANGED, REPLICA_WORKER_REVOKED, WORKER_ID_HEADER, WORKER_LABEL_HEADER,
};
pub use hardware::{GpuSummary, HardwareSummary};
pub use health::{Health, HealthStatus};
pub use keys::{
    ApiKey, DayUsage, KEY_ID_HEX, KEYS, KeyLimits, KeyList, KeyUsage, KeyUsageReport,
    SetLimitsRequest, USAGE_DAYS_DEFAULT, USAGE_DAYS_MAX, key_limits_path, key_revoke_path,
    key_usage_path,
};
pub use onboarding::{OnboardingStatus, RegistrationMode, Settlement, UnknownRegistrationMode};
pub use paths::{
    ADMIN_KEY_HEADER, ENROLLMENT_KEY_HEADER, HEALTH, METRICS, ONBOARDING_STATUS, OPENAPI, REGISTER,
    WORKER_CONNECT, WORKERS, worker_path, worker_revoke_path,
};
pub use receipts::{
    RECEIPTS, RECEIPTS_PAGE_DEFAULT, RECEIPTS_PAGE_MAX, ReceiptPage, ReceiptQuery, receipt_path,
};
pub use settlement::{
    BATCH_PAGE_DEFAULT, BATCH_PAGE_MAX, BatchLeaves, BatchList, BatchStatus, CloseBatchRequest,
    CloseBatchResult, LEAVES_PAGE_DEFAULT, LEAVES_PAGE_MAX, MarkPaidRequest, REWARD_BATCHES,
    RewardBatch, RewardTotals, Rewards, SETTLEMENT_BATCHES, SettlementBatchInfo, StoredLeaf,
    WalletRewards, batch_path, wallet_rewards_path,
};
pub use tasks::{
    Claim, ClaimRequest, Credit, DEFAULT_CLAIM_TTL_S, DEFAULT_PASS_THRESHOLD, Dispute,
    DisputeRequest, EvaluatorTimeoutPolicy, InputMessage, MAX_CAPABILITIES, MAX_CAPABILITY_LEN,
    MAX_CLAIM_TTL_S, MAX_CRITERIA, MAX_CRITERION_LEN, MAX_DESCRIPTION_LEN, MAX_DISPUTE_REASON_LEN,
    MAX_INPUT_MESSAGES, MAX_REWARD_ATOMIC, MIN_CLAIM_TTL_S, PostTaskRequest, ResolveRequest,
    SUBMISSIONS, Submission, SubmitRequest, TASKS, TASKS_PAGE_DEFAULT, TASKS_PAGE_MAX, Task,
    TaskInput, TaskList, TaskMarketPolicy, TaskQuery, Unpaid, claim_path, dispute_path,
    evaluate_path, release_path, resolve_path, rewards_path, submission_path, submit_path,
    task_path,
};
pub use worker_status::{
    Counters, CurrentJob, LastError, StatusError, UNREACHABLE, WorkerState, WorkerStatus,
};
pub use workers::{
    MAX_HARDWARE_GPUS, MAX_MODEL_LEN, MAX_MODELS, MAX_TEXT_LEN, MAX_VERSION_LEN, RegisterRequest,
    WORKERS_PAGE_DEFAULT, WORKERS_PAGE_MAX, WorkerList, WorkerRecord,
};

/// The worker-channel protocol version this build speaks (docs/PROTOCOL.md, "Worker channel").
pub const PROTOCOL_VERSION: u32 = 1;
