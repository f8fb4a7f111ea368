//! Replicas in the store: where each orchestrator replica on a shared database can be reached,
//! and which models the workers connected to it serve ([`ReplicaStore`]), so that a gateway
//! request on one replica can be forwarded to a worker connected to another.

use futures::future::BoxFuture;

use super::StoreError;
use crate::domain::ReplicaId;

/// Another replica with online workers, as the gateway's forwarding sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRoute {
    pub replica_id: ReplicaId,
    /// Where other replicas reach it (its configured internal URL).
    pub internal_url: String,
    /// One model list of its online workers (workers with the same list are counted together).
    pub models: Vec<String>,
    /// How many of its online workers serve exactly `models`.
    pub workers: u64,
}

/// Replica presence. A backend that one process owns (`SQLite`) has no other replica: it
/// refuses [`ReplicaStore::announce_replica`] and finds no routes.
pub trait ReplicaStore {
    /// Records that replica `id` is alive at `now` (unix seconds) and reachable at
    /// `internal_url`. Called at start and with every presence flush.
    fn announce_replica(
        &self,
        id: ReplicaId,
        internal_url: String,
        now: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The replicas other than `except` announced at or after `since`, each with the model
    /// lists of its workers connected and heard from at or after `since`.
    fn replica_routes(
        &self,
        except: ReplicaId,
        since: u64,
    ) -> BoxFuture<'_, Result<Vec<ReplicaRoute>, StoreError>>;

    /// Every replica other than `except` announced at or after `since`, with its internal
    /// URL (whether or not workers are connected to it): whom to tell that a key changed.
    fn replicas(
        &self,
        except: ReplicaId,
        since: u64,
    ) -> BoxFuture<'_, Result<Vec<(ReplicaId, String)>, StoreError>>;
}
