//! Storage behind one trait, [`Store`], split per noun ([`WorkerStore`], [`KeyStore`],
//! [`JobStore`], [`TaskStore`], [`ReplicaStore`], [`ReputationStore`], [`SettlementStore`]).
//! Handlers hold an `Arc<dyn Store>` and never see SQL, so a `PostgreSQL` implementation can be
//! added beside [`sqlite`] without touching them.
//!
//! Contract every implementation keeps: a write that returned `Ok` survives a crash (kill -9)
//! of the orchestrator; [`WorkerStore::insert_worker`] of an existing id fails with
//! [`StoreError::Conflict`] (so of N concurrent registrations of one new id exactly one wins);
//! [`WorkerStore::update_registration`] is a compare-and-swap on the stored token hash;
//! [`JobStore::record_job`] writes a job at most once; [`TaskStore::transact`] runs the market
//! engine's body in one transaction. The store holds no market rule and imports nothing
//! from `orchestrator::market`.

#[cfg(test)]
pub mod contract;
pub mod copy;
mod jobs;
mod keys;
pub mod postgres;
mod replicas;
pub mod reputation;
pub mod rows;
pub mod settlement;
pub mod sqlite;
mod tasks;
mod workers;

use std::fmt;

use futures::future::BoxFuture;

pub use jobs::{JobOutcome, JobRecord, JobStatus, JobStore, ListedReceipt, ReceiptQuery, Recorded};
pub use keys::{KeyEntry, KeyGrant, KeyRole, KeySha256, KeyStore, UnknownKeyRole, utc_day};
pub use postgres::PgStore;
pub use replicas::{ReplicaRoute, ReplicaStore};
pub use reputation::{AgentLink, ConfirmedMetric, ReputationStore, WorkerStats};
pub use settlement::SettlementStore;
pub use sqlite::{SqliteStore, Synchronous};
pub use tasks::{
    ClaimEnd, DueTasks, EvaluationRecord, GroupBody, GroupLocks, MarketTx, ResolutionRecord,
    SubmissionInsert, SubmissionRow, TaskFilter, TaskRow, TaskStore, TxBody, TxFuture, secs,
};
pub use workers::{Presence, WorkerRow, WorkerStore};

/// A store failure. Handlers log it and answer `INTERNAL`; only `Conflict` reaches a client
/// (as 409).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the record already exists")]
    Conflict,
    #[error("cannot open the database at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error(
        "the database at {path} has schema version {found}, newer than this basis supports ({supported}); upgrade basis"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("database error: {0}")]
    Backend(String),
    /// The database cannot be reached right now (connection refused or lost, pool timed out):
    /// nothing was changed, a retry may succeed.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("a stored {what} is malformed: {reason}")]
    Corrupt { what: &'static str, reason: String },
}

/// Everything the orchestrator stores.
pub trait Store:
    WorkerStore
    + KeyStore
    + JobStore
    + TaskStore
    + ReplicaStore
    + ReputationStore
    + SettlementStore
    + fmt::Debug
    + Send
    + Sync
{
    /// Cheap round trip to the backend, for `/health`.
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Whether this process holds the lease on the singleton job `job` (the sweeper), taking
    /// it if nobody holds it. Of several processes on one database at most one holds a lease
    /// at a time; it is released when its holder stops or loses its connection, and the next
    /// process to ask takes it. A backend only one process can open always holds it.
    fn hold_lease(&self, job: Singleton) -> BoxFuture<'_, Result<bool, StoreError>>;
}

/// The jobs only one orchestrator on a database may run at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Singleton {
    /// The task market's sweeper.
    Sweeper,
}
