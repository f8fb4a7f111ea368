//! The store contract suite on `SQLite` (each case on a fresh temp file), and what is
//! particular to this backend's writer: group commit (a failing write does not take its batch
//! down).

use std::sync::Arc;

use super::SqliteStore;
use crate::domain::{Runtime, WalletAddress, WorkerId, WorkerToken};
use crate::orchestrator::store::contract::store_contract;
use crate::orchestrator::store::contract::tasks::worker;
use crate::orchestrator::store::{Store, StoreError, WorkerStore};
use crate::wire::RegisterRequest;

const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

/// A fresh store on a temp file; the directory is removed when the guard drops.
async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("sub").join("t.db")).unwrap();
    (dir, Arc::new(store))
}

mod contract {
    use super::fresh;

    super::store_contract!(fresh());
}

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_failing_write_does_not_take_its_batch_down() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    worker(&*store, "taken", Runtime::Echo).await;
    // Many writes at once land in shared transactions; the duplicate fails alone.
    let writes = (0..64).map(|i| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let id = if i == 17 {
                "taken".to_owned()
            } else {
                format!("w-{i}")
            };
            let req = RegisterRequest {
                worker_id: WorkerId::parse(&id).unwrap(),
                wallet: WalletAddress::parse(WALLET).unwrap(),
                runtime: Runtime::Echo,
                models: vec![],
                token_sha256: WorkerToken::generate().sha256(),
                public_key: None,
                hardware: None,
                version: "0.1.0".into(),
                multi_task: false,
                labels: Vec::new(),
            };
            store.insert_worker(req, 2).await
        })
    });
    let results = futures::future::join_all(writes).await;
    let failed: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.as_ref().unwrap().is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(failed, [17]);
    assert!(matches!(
        results[17].as_ref().unwrap(),
        Err(StoreError::Conflict)
    ));
    let all = store.workers(None, 1000).await.unwrap();
    assert_eq!(all.len(), 64);
    let taken = store
        .worker(WorkerId::parse("taken").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.registered_at, 1);
}
