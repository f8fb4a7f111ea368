//! How a worker proves itself on a request (docs/SECURITY.md, "Signed requests"): with its
//! device key, every worker-authenticated call is signed following `wire::signature`'s profile
//! of HTTP Message Signatures (RFC 9421) over the method, the full URL (so the orchestrator's
//! origin) and the body's digest, and carries no secret at all; a legacy worker without a key
//! still sends its token as `Authorization: Bearer`.

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, RequestBuilder};
use serde::Serialize;

use super::{ClientError, OrchestratorClient, secret_header};
use crate::domain::{DeviceKey, WorkerId, WorkerToken};
use crate::wire::signature::{
    self, CONTENT_DIGEST_HEADER, LABEL, Member, SIGNATURE_HEADER, SIGNATURE_INPUT_HEADER,
};

/// The credential a worker-authenticated call is made with.
#[derive(Debug, Clone, Copy)]
pub enum WorkerAuth<'a> {
    /// The worker's device key: the request is signed by it as `worker_id`; the key itself
    /// never leaves the host.
    Key {
        worker_id: &'a WorkerId,
        key: &'a DeviceKey,
    },
    /// A legacy worker's token (one that has not moved to a device key yet), sent as
    /// `Authorization: Bearer` in a header marked sensitive.
    Token(&'a WorkerToken),
}

impl WorkerAuth<'_> {
    /// What an error message must never repeat: the token, for a legacy worker.
    pub(super) fn secret(&self) -> Option<&str> {
        match self {
            Self::Key { .. } => None,
            Self::Token(token) => Some(token.expose_secret()),
        }
    }
}

/// A signer of a request: the signature's label and its key.
pub(super) type Signer<'a> = (&'static str, &'a DeviceKey);

/// Unix seconds now (0 before 1970: the orchestrator refuses it as stale).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn header(value: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(value)
        .map_err(|_| ClientError::Setup("a signature header cannot be formed".into()))
}

impl OrchestratorClient {
    /// A `method` request to `path` with `body` (serialized here, so the bytes signed are the
    /// bytes sent; `None`: no body), made as `auth`.
    pub(super) fn worker_request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        auth: WorkerAuth<'_>,
    ) -> Result<RequestBuilder, ClientError> {
        let bytes = body.map(json_bytes).transpose()?;
        match auth {
            WorkerAuth::Key { worker_id, key } => {
                self.signed(method, path, bytes, worker_id, &[(LABEL, key)])
            }
            WorkerAuth::Token(token) => {
                let mut rb = self.request(method, path)?;
                if let Some(bytes) = bytes {
                    rb = rb.header(CONTENT_TYPE, "application/json").body(bytes);
                }
                let bearer = format!("Bearer {}", token.expose_secret());
                Ok(rb.header(AUTHORIZATION, secret_header(&bearer)?))
            }
        }
    }

    /// A request signed by each of `signers` as worker `keyid`, with its `Content-Digest`.
    pub(super) fn signed(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        keyid: &WorkerId,
        signers: &[Signer<'_>],
    ) -> Result<RequestBuilder, ClientError> {
        let url = self.url(path)?;
        let bytes = body.as_deref().unwrap_or_default();
        let now = unix_now();
        let members: Vec<Member> = signers
            .iter()
            .map(|(label, key)| {
                signature::sign_member(key, label, keyid, method.as_str(), url.as_str(), bytes, now)
            })
            .collect();
        let signed = signature::headers(bytes, &members);
        let mut rb = self
            .http
            .request(method, url)
            .header(CONTENT_DIGEST_HEADER, header(&signed.content_digest)?)
            .header(SIGNATURE_INPUT_HEADER, header(&signed.signature_input)?)
            .header(SIGNATURE_HEADER, header(&signed.signature)?);
        if let Some(body) = body {
            rb = rb.header(CONTENT_TYPE, "application/json").body(body);
        }
        Ok(rb)
    }
}

/// `body` as the JSON bytes to send.
pub(super) fn json_bytes<B: Serialize>(body: &B) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(body)
        .map_err(|e| ClientError::Setup(format!("cannot encode the request: {e}")))
}
