//! Workers in the store: [`WorkerRow`] and the [`WorkerStore`] trait.

use futures::future::BoxFuture;

use super::StoreError;
use crate::domain::{Amount, DevicePublicKey, Runtime, TokenSha256, WalletAddress, WorkerId};
use crate::wire::{Capabilities, HardwareSummary, RegisterRequest};

/// A worker as stored: the registration plus what the orchestrator learned since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    pub worker_id: WorkerId,
    pub wallet: WalletAddress,
    pub runtime: Runtime,
    pub models: Vec<String>,
    pub token_sha256: TokenSha256,
    pub hardware: Option<HardwareSummary>,
    pub version: String,
    pub multi_task: bool,
    pub registered_at: u64,
    pub updated_at: u64,
    pub last_seen: Option<u64>,
    pub connected_since: Option<u64>,
    pub jobs_completed: u64,
    pub jobs_failed: u64,
    pub rewards_pending: Amount,
    pub labels: Vec<String>,
    /// Its device public key; `None` while a legacy worker authenticates with a token.
    pub public_key: Option<DevicePublicKey>,
    /// Unix seconds when an admin revoked it: nothing it signs is accepted until an admin
    /// re-registers it.
    pub revoked_at: Option<u64>,
}

impl WorkerRow {
    /// Does `req` ask for exactly what is stored (same token hash, same fields)?
    pub fn same_registration(&self, req: &RegisterRequest) -> bool {
        self.token_sha256.ct_eq(&req.token_sha256)
            && self.public_key == req.public_key
            && self.revoked_at.is_none()
            && self.worker_id == req.worker_id
            && self.wallet == req.wallet
            && self.runtime == req.runtime
            && self.models == req.models
            && self.hardware == req.hardware
            && self.version == req.version
            && self.multi_task == req.multi_task
            && self.labels == req.labels
    }

    /// What the task market matches tasks against.
    pub fn capabilities(&self) -> Capabilities {
        Capabilities::of(
            self.runtime,
            &self.models,
            self.hardware.as_ref(),
            &self.labels,
        )
    }
}

/// Stored workers.
pub trait WorkerStore {
    /// Inserts a new worker. Fails with [`StoreError::Conflict`] when the id exists.
    fn insert_worker(
        &self,
        reg: RegisterRequest,
        now: u64,
    ) -> BoxFuture<'_, Result<WorkerRow, StoreError>>;

    /// Replaces the registration fields of `reg.worker_id` (its public key included) if its
    /// stored credential hash is still `expected` (compare-and-swap) and, unless `admin`, it is
    /// not revoked (checked in the same statement, so a revocation that lands after the caller
    /// read the row is never undone by the worker); with `admin` it lifts a revocation.
    /// Counters and connection state are kept. `None` when the worker is gone, its credential
    /// changed meanwhile, or (without `admin`) it is revoked.
    fn update_registration(
        &self,
        reg: RegisterRequest,
        expected: TokenSha256,
        now: u64,
        admin: bool,
    ) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>>;

    fn worker(&self, id: WorkerId) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>>;

    /// Up to `limit` workers with ids greater than `after`, ordered by id.
    fn workers(
        &self,
        after: Option<WorkerId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<WorkerRow>, StoreError>>;

    /// The workers whose stored token hash is `token` (normally one), for the worker channel's
    /// authentication. Callers still compare each row's hash in constant time.
    fn workers_by_token(
        &self,
        token: TokenSha256,
    ) -> BoxFuture<'_, Result<Vec<WorkerRow>, StoreError>>;

    /// Records connections opening (`connected_since` = `last_seen` = `now`) or closing
    /// (`connected_since` cleared, `last_seen` = the last heartbeat), in order, in one
    /// transaction.
    fn set_presence(
        &self,
        changes: Vec<(WorkerId, Presence)>,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Writes the last heartbeat of many connected workers at once (one transaction).
    fn touch_workers(&self, seen: Vec<(WorkerId, u64)>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Revokes worker `id` at unix second `now` (its key and any token stop authenticating
    /// anything); `None` when there is no such worker. Revoking twice keeps the first time.
    fn revoke_worker(
        &self,
        id: WorkerId,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>>;

    /// Remembers `nonce` of worker `id`'s signed request until `expires_ms`, forgetting its
    /// expired ones (`now_ms`). False when the nonce is already remembered: a replay.
    fn remember_nonce(
        &self,
        id: WorkerId,
        nonce: String,
        expires_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
}

/// A change of a worker's connection, for [`WorkerStore::set_presence`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Connected at this unix second.
    Connected(u64),
    /// The connection made at `connected_at` closed; its last heartbeat was at `last_seen`
    /// (unix seconds). `connected_at` names the connection's span in `presence_log`, so a
    /// closing written after a newer connection opened closes the right one.
    Disconnected { last_seen: u64, connected_at: u64 },
}
