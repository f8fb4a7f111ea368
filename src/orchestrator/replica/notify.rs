//! Telling the other replicas that something changed that they hold in memory: a client key
//! was revoked or re-limited (`POST /internal/v1/keys/changed`: each forgets what its gateway
//! remembered of the key at once instead of within the key cache's TTL), or a worker was
//! revoked or changed its key (`POST /internal/v1/workers/revoked`: the replica holding its
//! channel closes it).
//! Signed calls to every replica announced within the online window. Best effort: a replica
//! that cannot be reached forgets a key within the TTL anyway, and the failure is logged.

use std::time::Duration;

use axum::http::header;

use super::{Node, sign};
use crate::domain::WorkerId;
use crate::orchestrator::store::{KeySha256, Store};
use crate::wire::{REPLICA_KEY_CHANGED, REPLICA_WORKER_REVOKED};

/// How long one replica may take to acknowledge.
const TIMEOUT: Duration = Duration::from_secs(2);

/// The body of a key-changed call.
pub fn body(key: &KeySha256) -> Vec<u8> {
    serde_json::json!({ "sha256": key.to_string() })
        .to_string()
        .into_bytes()
}

/// Tells every other live replica that `key` changed; returns how many acknowledged.
pub async fn key_changed(
    node: &Node,
    store: &dyn Store,
    key: &KeySha256,
    now_unix: u64,
    window_s: u64,
) -> usize {
    broadcast(
        node,
        store,
        REPLICA_KEY_CHANGED,
        body(key),
        now_unix,
        window_s,
    )
    .await
}

/// The body of a worker-channel-closed call.
pub fn worker_body(id: &WorkerId, code: &str) -> Vec<u8> {
    serde_json::json!({ "worker_id": id.as_str(), "code": code })
        .to_string()
        .into_bytes()
}

/// Tells every other live replica to close worker `id`'s channel with `code` (it was revoked,
/// or its key changed); returns how many acknowledged.
pub async fn worker_closed(
    node: &Node,
    store: &dyn Store,
    id: &WorkerId,
    code: &str,
    now_unix: u64,
    window_s: u64,
) -> usize {
    let body = worker_body(id, code);
    broadcast(
        node,
        store,
        REPLICA_WORKER_REVOKED,
        body,
        now_unix,
        window_s,
    )
    .await
}

/// POSTs `body` to `path` on every other replica announced within the window, signed.
async fn broadcast(
    node: &Node,
    store: &dyn Store,
    path: &'static str,
    body: Vec<u8>,
    now_unix: u64,
    window_s: u64,
) -> usize {
    let replicas = match store
        .replicas(node.config.id.clone(), now_unix.saturating_sub(window_s))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, path, "cannot list the other replicas to tell them of a change");
            return 0;
        }
    };
    let calls = replicas.into_iter().map(|(id, url)| {
        let body = body.clone();
        async move {
            let url = url::Url::parse(&url).and_then(|u| u.join(path));
            let Ok(url) = url else {
                tracing::warn!(replica = %id, "a replica announced a malformed internal_url");
                return false;
            };
            let signed = sign::sign(
                &node.config.secret,
                &node.config.id,
                &id,
                "POST",
                path,
                &body,
                now_unix,
            );
            let mut request = node
                .client
                .post(url)
                .timeout(TIMEOUT)
                .header(header::CONTENT_TYPE, "application/json");
            for (name, value) in signed {
                request = request.header(name, value);
            }
            match request.body(body).send().await {
                Ok(resp) if resp.status().is_success() => true,
                Ok(resp) => {
                    tracing::warn!(replica = %id, status = %resp.status(), path, "a replica refused a change notice");
                    false
                }
                Err(e) => {
                    tracing::warn!(replica = %id, error = %e, path, "cannot tell a replica of a change");
                    false
                }
            }
        }
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count()
}
