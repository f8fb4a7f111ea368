//! [`Store`] on PostgreSQL, for several orchestrator replicas on one database: a
//! `deadpool-postgres` pool of `tokio-postgres` connections, versioned migrations
//! ([`migrations`]), one module per noun as for `SQLite`. The market engine's transactions run
//! on one pooled connection inside `BEGIN … COMMIT` with the task row locked (`SELECT … FOR
//! UPDATE`), so of N concurrent claimers on any replicas exactly one wins, without a single
//! writer. An acknowledged write is a committed transaction (PostgreSQL's default
//! `synchronous_commit = on`: on disk before `COMMIT` returns).
//!
//! Errors never carry a query's parameters; the database URL is shown without its password.

mod batch;
mod bulk;
mod group;
mod jobs;
mod keys;
pub mod migrations;
mod pipeline;
mod reads;
mod replicas;
mod reputation;
mod settlement;
mod tasks;
mod tasks_list;
/// Fresh databases for tests and benchmarks (unit tests, `tests/`, `benches/`).
#[doc(hidden)]
pub mod testdb;
mod workers;

use std::time::Duration;

use deadpool_postgres::{Config, Object, Pool, PoolConfig, Runtime, Timeouts};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::{Singleton, Store, StoreError};
use crate::domain::ReplicaId;

/// Connections a store keeps open unless configured otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long a request waits for a pooled connection (or to open one) before it is answered
/// `STORE_UNAVAILABLE`.
pub const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store. Cheap to clone (the pool and the lease are shared).
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The database URL without its password, for messages.
    shown: String,
    /// The URL itself, for the lease's own connection.
    url: DatabaseUrl,
    /// The connection holding the sweeper's lease, when this process holds it: outside the
    /// pool, so the lease lives exactly as long as that session.
    lease: std::sync::Arc<tokio::sync::Mutex<Option<tokio_postgres::Client>>>,
    /// The replica this process is, when it is one: recorded with the worker connections it
    /// holds (see `replicas`).
    replica: Option<ReplicaId>,
    /// Group commit for the market's changes to one task.
    group: group::Group,
    /// Worker reads, batched.
    reads: reads::WorkerReads,
}

/// The advisory lock key of each singleton job ("basis" in ASCII, then the job's number).
fn lease_key(job: Singleton) -> i64 {
    match job {
        Singleton::Sweeper => 0x0062_6173_6973_0001,
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.shown)
            .finish_non_exhaustive()
    }
}

/// A PostgreSQL URL (`postgres://…` or `postgresql://…`). It may hold a password, so it is
/// kept as a secret: `Debug` and [`DatabaseUrl::shown`] print it without one.
#[derive(Clone)]
pub struct DatabaseUrl(secrecy::SecretString);

impl DatabaseUrl {
    /// Parses `url`; the error says what is wrong without repeating it.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let parsed =
            url::Url::parse(url).map_err(|e| format!("database_url is not a URL ({e})"))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(
                "database_url must be a postgres:// URL (leave it out to use SQLite)".into(),
            );
        }
        Ok(Self(secrecy::SecretString::from(url.to_owned())))
    }

    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }

    /// The URL without its password.
    pub fn shown(&self) -> String {
        shown_url(self.expose())
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl PartialEq for DatabaseUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for DatabaseUrl {}

/// `url` with any password replaced, for messages and logs.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "the configured database_url (not a URL)".to_owned(),
    }
}

/// A driver error as a [`StoreError`]: a unique violation is a [`StoreError::Conflict`];
/// anything else a backend error naming the SQL state, never the parameters.
#[allow(clippy::needless_pass_by_value)] // used as `map_err(pg_err)`
pub(crate) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        return StoreError::Conflict;
    }
    // A lost or refused connection, or the server shutting down: nothing was committed.
    let unavailable = e.is_closed()
        || e.code().is_some_and(|c| {
            c.code().starts_with("08") // connection exception
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
        })
        || std::error::Error::source(&e).is_some_and(<dyn std::error::Error>::is::<std::io::Error>);
    if unavailable {
        return StoreError::Unavailable(format!("PostgreSQL: {e}"));
    }
    match e.as_db_error() {
        Some(db) => {
            StoreError::Backend(format!("PostgreSQL {}: {}", db.code().code(), db.message()))
        }
        None => StoreError::Backend(format!("PostgreSQL: {e}")),
    }
}

/// A `u64` (times, counters) as PostgreSQL's `BIGINT`, saturating at `i64::MAX`.
pub(super) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A column that cannot be read as the type the decoder wants: stored data it cannot use.
fn column_err(i: usize, e: &tokio_postgres::Error) -> StoreError {
    StoreError::Corrupt {
        what: "column",
        reason: format!("column {i}: {e}"),
    }
}

impl crate::orchestrator::store::rows::Columns for tokio_postgres::Row {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.try_get(i).map_err(|e| column_err(i, &e))
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.try_get(i).map_err(|e| column_err(i, &e))
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.try_get(i).map_err(|e| column_err(i, &e))
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.try_get(i).map_err(|e| column_err(i, &e))
    }

    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        self.try_get(i).map_err(|e| column_err(i, &e))
    }

    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.try_get(i).map_err(|e| column_err(i, &e))
    }
}

impl PgStore {
    /// Connects a pool of `pool_size` to `url` and applies the pending migrations.
    pub async fn connect(url: &str, pool_size: usize) -> Result<Self, StoreError> {
        let shown = shown_url(url);
        let open = |reason: String| StoreError::Open {
            path: shown.clone(),
            reason,
        };
        let wait = Some(POOL_TIMEOUT);
        let config = Config {
            url: Some(url.to_owned()),
            pool: Some(PoolConfig {
                timeouts: Timeouts {
                    wait,
                    create: wait,
                    recycle: wait,
                },
                ..PoolConfig::new(pool_size.max(1))
            }),
            ..Config::default()
        };
        let pool = config
            .create_pool(Some(Runtime::Tokio1), NoTls)
            .map_err(|e| open(e.to_string()))?;
        let store = Self {
            group: group::Group::new(pool.clone()),
            reads: reads::WorkerReads::new(pool.clone()),
            pool,
            shown: shown.clone(),
            url: DatabaseUrl::parse(url).map_err(open)?,
            lease: std::sync::Arc::default(),
            replica: None,
        };
        let mut client = store.client().await.map_err(|e| open(e.to_string()))?;
        migrations::migrate(&mut client, &shown).await?;
        Ok(store)
    }

    /// The same store, recording the worker connections it opens as held by replica `id`.
    #[must_use]
    pub fn as_replica(mut self, id: ReplicaId) -> Self {
        self.replica = Some(id);
        self
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        pooled(&self.pool).await
    }
}

/// A connection from `pool`.
async fn pooled(pool: &Pool) -> Result<Object, StoreError> {
    // Whatever stops us getting a connection (refused, not accepting connections, the pool's
    // wait timing out) leaves nothing changed: unavailable, for a retry.
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Backend(e) => match pg_err(e) {
            StoreError::Backend(why) => StoreError::Unavailable(why),
            other => other,
        },
        other => StoreError::Unavailable(format!("PostgreSQL pool: {other}")),
    })
}

impl Store for PgStore {
    fn hold_lease(&self, job: Singleton) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let mut held = self.lease.lock().await;
            if held.as_ref().is_some_and(|c| !c.is_closed()) {
                return Ok(true);
            }
            // Not held, or its session is gone (and the lock with it): try to take it on a
            // session of our own. The server releases it when that session ends, however.
            *held = None;
            let (client, connection) = tokio_postgres::connect(self.url.expose(), NoTls)
                .await
                .map_err(pg_err)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "the lease connection ended");
                }
            });
            let got: bool = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&lease_key(job)])
                .await
                .map_err(pg_err)?
                .get(0);
            if got {
                tracing::info!(?job, "this orchestrator now runs the singleton job");
                *held = Some(client);
            }
            Ok(got)
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(pg_err)?;
            Ok(())
        }
        .boxed()
    }
}

/// The store contract suite, each case on a fresh database.
#[cfg(test)]
mod contract {
    crate::orchestrator::store::contract::store_contract!(super::testdb::fresh());
}
