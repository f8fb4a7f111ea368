//! The worker daemon (`basis worker --env PATH`; docs/PROTOCOL.md, "Worker channel"): connects
//! to the orchestrator's worker
//! channel over WebSocket, says `hello`, heartbeats at the interval the `welcome` asks for
//! (`ready` false while the runtime is unhealthy), runs up to `capacity` jobs at once on its
//! runtime (`crate::runtime`), streams their pieces as `job_chunk`s, keeps each finished result
//! until the orchestrator's `job_ack` (resending it after a reconnect), reconnects with
//! jittered exponential backoff, writes `worker-status.json` on every state change, and drains
//! on SIGTERM, or when the supervisor that started it is gone (`lifeline`).
//!
//! - [`run_from_env_file`]: what the CLI calls (signals included).
//! - [`run`] with a [`WorkerConfig`], any [`Backend`](crate::runtime::Backend) and a
//!   [`Shutdown`]: for embedding and tests.
//! - [`WorkerStatus`]: the status document, for the supervisor and `verify_online` to read.
//!
//! Architecture invariant: the device key never leaves this module: it only signs the
//! orchestrator's challenge (`connection.rs`). A legacy token leaves it only as the
//! `Authorization` header of the channel's upgrade request. The status document and every log
//! line are built without either.

mod backoff;
mod config;
mod connection;
mod daemon;
mod error;
mod job_table;
mod jobs;
mod lifeline;
mod session;
mod shared;
mod status;

pub use backoff::{Backoff, BackoffPolicy};
pub use config::{
    Credential, DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEALTH_INTERVAL, DEFAULT_WELCOME_TIMEOUT,
    MAX_CAPACITY, OLLAMA_NUM_PARALLEL, Options, WorkerConfig, connect_url, default_capacity,
    effective_capacity,
};
pub use daemon::{Shutdown, run, run_from_env_file};
pub use error::WorkerError;
pub use lifeline::{LIFELINE_ENV, LIFELINE_STDIN};
pub use status::{
    Counters, CurrentJob, LastError, StatusError, UNREACHABLE, WORKER_STATUS_MODE, WorkerState,
    WorkerStatus, unix_now,
};
