//! Replica-to-replica authentication: the calling replica signs each request with
//! HMAC-SHA256 under the deployment's shared replica secret; the secret itself never travels.
//! The signature covers a version tag, the caller's id, the **receiving** replica's id (a
//! signature made for one replica is worthless at another), a unix time (accepted within
//! ±[`WINDOW_S`]), a random nonce (remembered for the window, so nothing replays), the method,
//! the path and the SHA-256 of the body. Verification compares in constant time.
//!
//! Headers: `x-basis-replica` (caller id), `x-basis-replica-time`, `x-basis-replica-nonce`
//! (32 hex), `x-basis-replica-signature` (64 hex).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use super::config::ReplicaSecret;
use crate::domain::ReplicaId;

pub const FROM_HEADER: &str = "x-basis-replica";
pub const TIME_HEADER: &str = "x-basis-replica-time";
pub const NONCE_HEADER: &str = "x-basis-replica-nonce";
pub const SIGNATURE_HEADER: &str = "x-basis-replica-signature";
/// How far a signed time may be from the receiver's clock, in seconds.
pub const WINDOW_S: u64 = 60;
/// Remembered nonces at most; past it a request is refused until old ones expire (a flood of
/// validly signed calls can only come from a replica holding the secret).
const MAX_NONCES: usize = 1 << 20;

/// Why a replica call was refused. Never contains the secret or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("the call carries no replica signature ({0} is missing)")]
    Missing(&'static str),
    #[error("the replica signature headers are malformed ({0})")]
    Malformed(&'static str),
    #[error("the signed time is more than {WINDOW_S} s from this replica's clock")]
    Stale,
    #[error("this nonce was already used")]
    Replayed,
    #[error("the signature does not verify (another secret, or meant for another replica)")]
    Mismatch,
}

/// The message the MAC covers.
#[allow(clippy::too_many_arguments)] // the fields of one signed message, in order
fn mac(
    secret: &ReplicaSecret,
    from: &str,
    to: &str,
    time: u64,
    nonce: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Hmac<Sha256> {
    // Any key length is valid for HMAC; `new_from_slice` only fails for fixed-size MACs.
    let mut m = <Hmac<Sha256> as hmac::Mac>::new_from_slice(secret.expose())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    let digest = hex::encode(Sha256::digest(body));
    let text =
        format!("basis-replica-v1\n{from}\n{to}\n{time}\n{nonce}\n{method}\n{path}\n{digest}");
    m.update(text.as_bytes());
    m
}

/// The headers that sign a call from `from` to `to`.
pub fn sign(
    secret: &ReplicaSecret,
    from: &ReplicaId,
    to: &ReplicaId,
    method: &str,
    path: &str,
    body: &[u8],
    now: u64,
) -> [(HeaderName, HeaderValue); 4] {
    let mut raw = [0u8; 16];
    rand::rng().fill_bytes(&mut raw);
    let nonce = hex::encode(raw);
    let tag = mac(
        secret,
        from.as_str(),
        to.as_str(),
        now,
        &nonce,
        method,
        path,
        body,
    )
    .finalize()
    .into_bytes();
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""));
    [
        (HeaderName::from_static(FROM_HEADER), value(from.as_str())),
        (
            HeaderName::from_static(TIME_HEADER),
            value(&now.to_string()),
        ),
        (HeaderName::from_static(NONCE_HEADER), value(&nonce)),
        (
            HeaderName::from_static(SIGNATURE_HEADER),
            value(&hex::encode(tag)),
        ),
    ]
}

/// Checks signed calls addressed to this replica; remembers nonces for the window.
#[derive(Debug)]
pub struct Verifier {
    secret: ReplicaSecret,
    me: ReplicaId,
    /// Nonce → unix second it may be forgotten.
    seen: Mutex<HashMap<[u8; 16], u64>>,
}

impl Verifier {
    pub fn new(secret: ReplicaSecret, me: ReplicaId) -> Self {
        Self {
            secret,
            me,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The caller's id when `headers` sign `method path body` for this replica at about `now`.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        body: &[u8],
        now: u64,
    ) -> Result<ReplicaId, SignError> {
        let get = |name: &'static str| {
            headers
                .get(name)
                .ok_or(SignError::Missing(name))?
                .to_str()
                .map_err(|_| SignError::Malformed(name))
        };
        let from =
            ReplicaId::parse(get(FROM_HEADER)?).map_err(|_| SignError::Malformed(FROM_HEADER))?;
        let time: u64 = get(TIME_HEADER)?
            .parse()
            .map_err(|_| SignError::Malformed(TIME_HEADER))?;
        let nonce_text = get(NONCE_HEADER)?;
        let nonce: [u8; 16] = hex::decode(nonce_text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SignError::Malformed(NONCE_HEADER))?;
        let tag = hex::decode(get(SIGNATURE_HEADER)?)
            .ok()
            .filter(|t| t.len() == 32)
            .ok_or(SignError::Malformed(SIGNATURE_HEADER))?;
        if time.abs_diff(now) > WINDOW_S {
            return Err(SignError::Stale);
        }
        mac(
            &self.secret,
            from.as_str(),
            self.me.as_str(),
            time,
            nonce_text,
            method,
            path,
            body,
        )
        .verify_slice(&tag)
        .map_err(|_| SignError::Mismatch)?;
        // Only a verified nonce is remembered, so nobody without the secret can fill the set.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_NONCES / 2 {
            seen.retain(|_, forget_at| *forget_at > now);
        }
        if seen.len() >= MAX_NONCES {
            return Err(SignError::Replayed);
        }
        if seen.insert(nonce, time + 2 * WINDOW_S).is_some() {
            return Err(SignError::Replayed);
        }
        Ok(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::replica::config::{
        ENV_REPLICA_ID, ENV_REPLICA_SECRET, RawReplica, ReplicaConfig,
    };

    fn secret(s: &str) -> ReplicaSecret {
        let env = |name: &str| match name {
            ENV_REPLICA_ID => Some("a1".to_owned()),
            ENV_REPLICA_SECRET => Some(s.to_owned()),
            _ => None,
        };
        ReplicaConfig::resolve(&RawReplica::default(), env, true)
            .unwrap()
            .unwrap()
            .secret
    }

    fn headers(pairs: [(HeaderName, HeaderValue); 4]) -> HeaderMap {
        pairs.into_iter().collect()
    }

    #[test]
    fn a_signed_call_verifies_once_for_its_replica_only() {
        let key = secret("0123456789abcdef0123456789abcdef");
        let (ra, rb, rc) = (
            ReplicaId::parse("a1").unwrap(),
            ReplicaId::parse("b2").unwrap(),
            ReplicaId::parse("c3").unwrap(),
        );
        let now = 1_800_000_000;
        let h = headers(sign(&key, &ra, &rb, "POST", "/x", b"{}", now));
        let at_b = Verifier::new(key.clone(), rb.clone());
        let at_c = Verifier::new(key.clone(), rc);
        assert_eq!(
            at_c.verify(&h, "POST", "/x", b"{}", now),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            at_b.verify(&h, "POST", "/x", b"{ }", now),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            at_b.verify(&h, "POST", "/y", b"{}", now),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            at_b.verify(&h, "GET", "/x", b"{}", now),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            at_b.verify(&h, "POST", "/x", b"{}", now + WINDOW_S + 1),
            Err(SignError::Stale)
        );
        assert_eq!(
            at_b.verify(&h, "POST", "/x", b"{}", now + 5),
            Ok(ra.clone())
        );
        assert_eq!(
            at_b.verify(&h, "POST", "/x", b"{}", now + 5),
            Err(SignError::Replayed)
        );
        let other = secret("ffffffffffffffffffffffffffffffff");
        let forged = headers(sign(&other, &ra, &rb, "POST", "/x", b"{}", now));
        assert_eq!(
            at_b.verify(&forged, "POST", "/x", b"{}", now),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            at_b.verify(&HeaderMap::new(), "POST", "/x", b"{}", now),
            Err(SignError::Missing(FROM_HEADER))
        );
    }
}
