//! The device-key contract cases: a registration's public key round trips and is replaced by
//! the compare-and-swap, a revocation sticks until a re-registration lifts it, and a signed
//! request's nonce is accepted once per worker until it expires.

use std::sync::Arc;

use super::workers::request;
use crate::domain::{DeviceKey, TokenSha256, WorkerId, WorkerToken};
use crate::orchestrator::store::Store;
use crate::wire::RegisterRequest;

fn keyed(id: &str, key: &DeviceKey) -> RegisterRequest {
    let mut req = request(id, &WorkerToken::generate());
    req.public_key = Some(key.public());
    req.token_sha256 = TokenSha256::sha256(key.public().as_bytes());
    req
}

pub async fn a_public_key_is_stored_rotated_and_revoked(store: Arc<dyn Store>) {
    let id = WorkerId::parse("gpu-1").unwrap();
    let (old, new) = (DeviceKey::generate(), DeviceKey::generate());
    let row = store.insert_worker(keyed("gpu-1", &old), 10).await.unwrap();
    assert_eq!(row.public_key, Some(old.public()));
    assert_eq!(row.revoked_at, None);
    // Rotation: the swap names the old credential hash.
    let rotated = store
        .update_registration(keyed("gpu-1", &new), row.token_sha256, 11, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.public_key, Some(new.public()));
    // A stale swap (the old key's hash) changes nothing.
    let stale = store
        .update_registration(keyed("gpu-1", &old), row.token_sha256, 12, false)
        .await
        .unwrap();
    assert!(stale.is_none());
    // Revoked once, at the first time; still there after a second revocation.
    let revoked = store.revoke_worker(id.clone(), 20).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(20));
    assert!(!revoked.same_registration(&keyed("gpu-1", &new)));
    let again = store.revoke_worker(id.clone(), 30).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(20));
    assert_eq!(
        store.worker(id.clone()).await.unwrap().unwrap().revoked_at,
        Some(20)
    );
    // The worker's own re-registration does not lift it (even one that read the row before
    // the revocation); an admin's does.
    let refused = store
        .update_registration(keyed("gpu-1", &old), rotated.token_sha256, 35, false)
        .await
        .unwrap();
    assert!(refused.is_none());
    assert_eq!(
        store.worker(id.clone()).await.unwrap().unwrap().revoked_at,
        Some(20)
    );
    let back = store
        .update_registration(keyed("gpu-1", &old), rotated.token_sha256, 40, true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (back.revoked_at, back.public_key),
        (None, Some(old.public()))
    );
    assert!(
        store
            .revoke_worker(WorkerId::parse("nobody").unwrap(), 50)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn a_nonce_is_accepted_once_per_worker_until_it_expires(store: Arc<dyn Store>) {
    let (a, b) = (
        WorkerId::parse("gpu-1").unwrap(),
        WorkerId::parse("gpu-2").unwrap(),
    );
    let remember = |id: &WorkerId, nonce: &str, expires: u64, now: u64| {
        store.remember_nonce(id.clone(), nonce.to_owned(), expires, now)
    };
    assert!(remember(&a, "n1", 1_000, 0).await.unwrap());
    assert!(!remember(&a, "n1", 1_000, 10).await.unwrap(), "a replay");
    assert!(
        remember(&b, "n1", 1_000, 10).await.unwrap(),
        "another worker's nonce"
    );
    assert!(remember(&a, "n2", 1_000, 10).await.unwrap());
    // Once expired it is forgotten (its signature would be refused as stale anyway).
    assert!(remember(&a, "n1", 3_000, 1_001).await.unwrap());
    // Many concurrent presentations of one nonce: exactly one is accepted.
    let tries = (0..16).map(|_| remember(&a, "race", 5_000, 1_500));
    let accepted = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(accepted, 1);
}
