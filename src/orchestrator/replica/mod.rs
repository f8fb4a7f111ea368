//! This orchestrator as one replica of several on a shared PostgreSQL database: its identity
//! and internal address ([`config`]), the authentication of calls between replicas
//! ([`sign`]), where the other replicas' workers are ([`directory`]), and telling the others
//! that a client key changed ([`notify`]). The gateway uses
//! them to forward a request that no local worker can take (`gateway::forward`); the replica
//! that holds the worker's connection runs the job and writes its receipt to the shared
//! database.
//!
//! Invariant: a replica answers a forwarded call only from its own workers (never forwards
//! it again), so a request crosses at most one hop and cannot loop.

pub mod config;
pub mod directory;
pub mod notify;
pub mod sign;

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

pub use config::{RawReplica, ReplicaConfig, ReplicaSecret};
pub use directory::{Directory, Target};
pub use sign::{SignError, Verifier};

/// A running replica: its config, resolved address, verifier, directory and HTTP client.
#[derive(Debug)]
pub struct Node {
    pub config: ReplicaConfig,
    /// Where the other replicas reach this one (announced in the store).
    pub url: Url,
    pub verifier: Verifier,
    pub directory: Directory,
    /// For forwarded calls: a short connect timeout; a read may wait as long as a job.
    pub client: reqwest::Client,
}

impl Node {
    /// The node for `config` serving on `bound`. Errors say what to configure.
    pub fn new(
        config: ReplicaConfig,
        bound: SocketAddr,
        online_window_s: u64,
        job_timeout: Duration,
    ) -> Result<Self, String> {
        let url = match &config.internal_url {
            Some(url) => url.clone(),
            None if !bound.ip().is_unspecified() => Url::parse(&format!("http://{bound}"))
                .map_err(|e| format!("cannot form this replica's URL from {bound}: {e}"))?,
            None => {
                return Err(format!(
                    "replica {} listens on {bound}, which other replicas cannot dial: set \
                     [replica] internal_url (or BASIS_REPLICA_URL) to the address they reach \
                     it at",
                    config.id
                ));
            }
        };
        let client = crate::http::client_builder(Duration::from_secs(2))
            .read_timeout(job_timeout + Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| format!("cannot build the replica HTTP client: {e}"))?;
        Ok(Self {
            verifier: Verifier::new(config.secret.clone(), config.id.clone()),
            directory: Directory::new(config.id.clone(), online_window_s),
            url,
            client,
            config,
        })
    }
}
