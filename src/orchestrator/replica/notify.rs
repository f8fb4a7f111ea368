//! Telling the other replicas that a client key was revoked or re-limited, so each forgets
//! what its gateway remembered of the key at once instead of within the key cache's TTL:
//! a signed `POST /internal/v1/keys/changed` to every replica announced within the online
//! window. Best effort: a replica that cannot be reached forgets the key within the TTL anyway
//! (its cache entries expire), and the failure is logged.

use std::time::Duration;

use axum::http::header;

use super::{Node, sign};
use crate::orchestrator::store::{KeySha256, Store};
use crate::wire::REPLICA_KEY_CHANGED;

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
    let replicas = match store
        .replicas(node.config.id.clone(), now_unix.saturating_sub(window_s))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the other replicas to tell them a key changed");
            return 0;
        }
    };
    let body = body(key);
    let calls = replicas.into_iter().map(|(id, url)| {
        let body = body.clone();
        async move {
            let url = url::Url::parse(&url).and_then(|u| u.join(REPLICA_KEY_CHANGED));
            let Ok(url) = url else {
                tracing::warn!(replica = %id, "a replica announced a malformed internal_url");
                return false;
            };
            let signed = sign::sign(
                &node.config.secret,
                &node.config.id,
                &id,
                "POST",
                REPLICA_KEY_CHANGED,
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
                    tracing::warn!(replica = %id, status = %resp.status(), "a replica refused a key change; it forgets the key within the cache TTL");
                    false
                }
                Err(e) => {
                    tracing::warn!(replica = %id, error = %e, "cannot tell a replica that a key changed; it forgets the key within the cache TTL");
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
