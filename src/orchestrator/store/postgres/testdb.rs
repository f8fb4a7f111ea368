//! A fresh PostgreSQL database per test, dropped when the test ends. The admin connection is
//! [`ADMIN_URL_ENV`] (default `postgres://postgres@127.0.0.1:5432/postgres`, trust auth, as
//! on every development machine and in CI); a test fails, saying so, when it cannot connect.

// Test support: it panics, saying why, when the database cannot be set up.
#![allow(clippy::missing_panics_doc, clippy::expect_used)]

use std::sync::Arc;

use tokio_postgres::NoTls;

use super::PgStore;
use crate::orchestrator::store::Store;

/// The environment variable naming the admin connection tests create databases with.
pub const ADMIN_URL_ENV: &str = "BASIS_TEST_POSTGRES";
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists until this is dropped.
#[derive(Debug)]
pub struct TestDb {
    admin_url: String,
    name: String,
    /// The database's own URL.
    pub url: String,
}

fn admin_url() -> String {
    std::env::var(ADMIN_URL_ENV).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {} ({e}); start it, or point {ADMIN_URL_ENV} at a \
             server where this user may CREATE DATABASE",
                super::shown_url(url)
            )
        });
    tokio::spawn(connection);
    client
}

impl TestDb {
    /// Creates `basis_test_<random>`.
    pub async fn create() -> Self {
        let admin_url = admin_url();
        let name = format!("basis_test_{:016x}", rand::random::<u64>());
        admin(&admin_url)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let mut url = url::Url::parse(&admin_url).expect("the admin URL is a URL");
        url.set_path(&name);
        Self {
            admin_url,
            name,
            url: url.to_string(),
        }
    }

    /// Cuts every open connection to the database (what a restart or a failover does).
    pub async fn cut_connections(&self) {
        admin(&self.admin_url)
            .await
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                self.name
            ))
            .await
            .unwrap_or_else(|e| panic!("terminating the connections to {}: {e}", self.name));
    }

    /// Makes the database refuse (`false`) or accept new connections; refusing also cuts the
    /// open ones, so the database is unreachable until accepting again.
    pub async fn accept_connections(&self, accept: bool) {
        admin(&self.admin_url)
            .await
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS {accept}",
                self.name
            ))
            .await
            .unwrap_or_else(|e| panic!("ALTER DATABASE {}: {e}", self.name));
        if !accept {
            self.cut_connections().await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs outside any async context a test may still hold: a thread of its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for DROP DATABASE");
            runtime.block_on(async {
                admin(&admin_url)
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// A fresh database and a store on it, for the contract suite.
pub async fn fresh() -> (TestDb, Arc<dyn Store>) {
    let db = TestDb::create().await;
    let store = PgStore::connect(&db.url, 8)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test database: {e}"));
    (db, Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::store::StoreError;
    use crate::orchestrator::store::postgres::migrations;

    #[tokio::test]
    async fn replicas_starting_together_migrate_once_and_a_newer_schema_is_refused() {
        let db = TestDb::create().await;
        // Four replicas connect at once to an empty database: each gets a working store.
        let connects = (0..4).map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PgStore::connect(&url, 2).await })
        });
        for store in futures::future::join_all(connects).await {
            store.unwrap().unwrap().ping().await.unwrap();
        }
        let (client, connection) = tokio_postgres::connect(&db.url, NoTls).await.unwrap();
        tokio::spawn(connection);
        let version: i64 = client
            .query_one("SELECT version FROM basis_schema", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(version, migrations::latest());
        let rows: i64 = client
            .query_one("SELECT count(*) FROM basis_schema", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 1);
        client
            .execute("UPDATE basis_schema SET version = 99", &[])
            .await
            .unwrap();
        let err = PgStore::connect(&db.url, 1).await.unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    /// Pings `store` until `done` holds (for at most 10 s); every failure on the way must be
    /// `Unavailable`, the one error a lost database may cause.
    async fn until(
        store: &PgStore,
        what: &str,
        done: impl Fn(&Result<(), StoreError>) -> bool,
    ) -> Result<(), StoreError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let r = store.ping().await;
            if let Err(e) = &r {
                assert!(matches!(e, StoreError::Unavailable(_)), "{what}: {e:?}");
            }
            if done(&r) {
                return r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: not within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn a_database_that_goes_away_is_unavailable_then_recovers_without_a_restart() {
        let db = TestDb::create().await;
        let store = PgStore::connect(&db.url, 2).await.unwrap();
        store.ping().await.unwrap();
        let admin = admin(&admin_url()).await;
        let kick = format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
            db.name
        );
        // Connections cut (a restart, a failover): a request on a connection already cut may
        // fail, only as unavailable; the pool replaces the connections, no restart needed.
        admin.batch_execute(&kick).await.unwrap();
        until(&store, "recovered after the cut", Result::is_ok)
            .await
            .unwrap();
        // The database refuses connections for a while: a clear "unavailable", nothing else.
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS false",
                db.name
            ))
            .await
            .unwrap();
        admin.batch_execute(&kick).await.unwrap();
        let err = until(&store, "unavailable", Result::is_err)
            .await
            .unwrap_err();
        let api = crate::orchestrator::error::ApiError::from(err);
        assert_eq!(api.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(api.problem.code, crate::domain::ErrorCode::StoreUnavailable);
        assert!(api.retry_after_s.is_some());
        // Back: the same store works again.
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                db.name
            ))
            .await
            .unwrap();
        until(&store, "recovered", Result::is_ok).await.unwrap();
    }

    #[tokio::test]
    async fn one_process_holds_the_sweeper_lease_and_it_moves_when_the_holder_goes() {
        use crate::orchestrator::store::Singleton;
        let db = TestDb::create().await;
        let a = PgStore::connect(&db.url, 1).await.unwrap();
        let b = PgStore::connect(&db.url, 1).await.unwrap();
        assert!(a.hold_lease(Singleton::Sweeper).await.unwrap());
        assert!(a.hold_lease(Singleton::Sweeper).await.unwrap(), "kept");
        assert!(!b.hold_lease(Singleton::Sweeper).await.unwrap());
        drop(a);
        // The holder's session ends; the next ask takes the lease.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if b.hold_lease(Singleton::Sweeper).await.unwrap() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the lease never moved"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    #[test]
    fn passwords_are_not_shown() {
        let shown = super::super::shown_url("postgres://basis:hunter2@db.internal:5432/basis");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
    }
}
