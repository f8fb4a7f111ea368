//! Unit tests of the `SQLite` store on a temp file: round trips, conflicts, compare-and-swap,
//! reopen (durability and idempotent migrations), paging, keys, file mode.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::domain::{WorkerId, WorkerToken};
use crate::orchestrator::store::contract::workers::request;
use crate::orchestrator::store::{KeyRole, KeySha256, KeyStore, WorkerStore};

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("sub").join("orchestrator.db")).unwrap();
    (dir, store)
}

#[tokio::test]
async fn reopen_keeps_data_and_does_not_remigrate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    let token = WorkerToken::generate();
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .insert_worker(request("gpu-1", &token), 1)
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert!(
        store
            .worker(WorkerId::parse("gpu-1").unwrap())
            .await
            .unwrap()
            .is_some()
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let version: i64 = store
        .read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(version, migrations::latest());
    let journal: String = store
        .read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn the_writer_commits_with_the_chosen_synchronous_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    // PRAGMA synchronous: 2 = FULL, 1 = NORMAL; `open` is FULL.
    for (store, expected) in [
        (SqliteStore::open_with(&path, Synchronous::Full), 2_i64),
        (SqliteStore::open_with(&path, Synchronous::Normal), 1),
        (SqliteStore::open(&path), 2),
    ] {
        let on_writer: i64 = store
            .unwrap()
            .write(|c| Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(on_writer, expected);
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

#[tokio::test]
async fn keys_are_stored_as_hashes_only() {
    let (_dir, store) = temp_store();
    let hash = KeySha256::of("basis-admin-secret");
    store
        .insert_key(
            KeyRole::Admin,
            hash,
            Some("ops".into()),
            crate::wire::KeyLimits::default(),
            1,
        )
        .await
        .unwrap();
    let bytes = std::fs::read(store.path()).unwrap();
    let wal = std::fs::read(store.path().with_extension("db-wal")).unwrap_or_default();
    for haystack in [bytes, wal] {
        assert!(!haystack.windows(18).any(|w| w == b"basis-admin-secret"));
    }
}
