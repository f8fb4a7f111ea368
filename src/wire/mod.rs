//! Wire types: the JSON bodies of the orchestrator's HTTP API (§5), shared by the server
//! (`crate::orchestrator`) and its client (`crate::client`). One file per noun.
//!
//! Serialization is an IPC boundary: these types are what other processes (and other versions
//! of basis) see, so they change only additively. Their JSON Schemas (schemars) become the
//! `OpenAPI` components at `/openapi.json` and the snapshots under `schemas/`.
//!
//! Architecture invariant: this module depends only on `crate::domain`; it never imports the
//! orchestrator, the client, the operations or the fronts.

mod channel;
mod error;
mod gateway;
mod hardware;
mod health;
mod onboarding;
mod paths;
mod receipts;
mod workers;

pub use channel::{JobErrorCode, JobTimings, OrchestratorMessage, WorkerMessage};
pub use error::{ApiErrorBody, known_code};
pub use gateway::{
    AssistantMessage, CHAT_COMPLETIONS, ChatChoice, ChatCompletion, ChatCompletionChunk,
    ChunkChoice, ChunkDelta, CompletionUsage, JOB_ID_HEADER, MODELS, ModelEntry, ModelList,
    RECEIPT_HASH_HEADER, RECEIPT_ID_HEADER, WORKER_ID_HEADER,
};
pub use hardware::{GpuSummary, HardwareSummary};
pub use health::{Health, HealthStatus};
pub use onboarding::{OnboardingStatus, RegistrationMode, Settlement, UnknownRegistrationMode};
pub use paths::{
    ADMIN_KEY_HEADER, ENROLLMENT_KEY_HEADER, HEALTH, METRICS, ONBOARDING_STATUS, OPENAPI, REGISTER,
    WORKER_CONNECT, WORKERS, worker_path,
};
pub use receipts::{RECEIPTS, receipt_path};
pub use workers::{
    MAX_HARDWARE_GPUS, MAX_MODEL_LEN, MAX_MODELS, MAX_TEXT_LEN, MAX_VERSION_LEN, RegisterRequest,
    WORKERS_PAGE_DEFAULT, WORKERS_PAGE_MAX, WorkerList, WorkerRecord,
};

/// The worker-channel protocol version this build speaks (§6).
pub const PROTOCOL_VERSION: u32 = 1;
