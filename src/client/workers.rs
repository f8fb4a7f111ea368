//! Workers: `register()`, `worker()`, `find_worker()`, `workers()`, `workers_page()`.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use super::signing::{Signer, json_bytes};
use super::{ClientError, OrchestratorClient, secret_header};
use crate::domain::{DeviceKey, ErrorCode, WorkerId, WorkerToken};
use crate::wire::signature::{LABEL, PREVIOUS_LABEL};
use crate::wire::{
    ADMIN_KEY_HEADER, ENROLLMENT_KEY_HEADER, REGISTER, RegisterRequest, WORKERS, WORKERS_PAGE_MAX,
    WorkerList, WorkerRecord, worker_path, worker_revoke_path,
};

/// A registration's result: the record as the orchestrator holds it, and whether this call
/// created it (201) rather than finding or updating it (200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOutcome {
    pub record: WorkerRecord,
    pub created: bool,
}

/// Credentials for a registration; all optional (docs/SECURITY.md, "Registration").
#[derive(Debug, Default, Clone, Copy)]
pub struct RegisterAuth<'a> {
    /// The device key whose public half the request registers: it signs the request (label
    /// `basis`), proving possession. Never sent.
    pub key: Option<&'a DeviceKey>,
    /// On a rotation, the key registered so far: it signs the request too (label
    /// `previous`), authorising the new key. Never sent.
    pub previous_key: Option<&'a DeviceKey>,
    /// A legacy worker token: proof of possession to change a token registration, or, once,
    /// to move it to a device key. Sent as `Authorization: Bearer`.
    pub proof: Option<&'a WorkerToken>,
    /// The operator's enrollment key, when registration is gated.
    pub enrollment_key: Option<&'a SecretString>,
    /// The operator's admin key (re-register any id).
    pub admin_key: Option<&'a SecretString>,
}

impl OrchestratorClient {
    /// `POST /api/workers/register`. Pass the current token as `proof` whenever the host has
    /// one: it is needed to change an existing registration or rotate the token (and harmless
    /// otherwise). `req.token_sha256` is the hash of the token to hold from now on.
    pub async fn register(
        &self,
        req: &RegisterRequest,
        proof: Option<&WorkerToken>,
        enrollment_key: Option<&str>,
    ) -> Result<RegisterOutcome, ClientError> {
        let key = enrollment_key.map(|k| SecretString::from(k.to_owned()));
        self.register_with(
            req,
            RegisterAuth {
                proof,
                enrollment_key: key.as_ref(),
                ..RegisterAuth::default()
            },
        )
        .await
    }

    /// [`register`](Self::register) with any combination of credentials. With `auth.key` (and
    /// `auth.previous_key`) the request is signed as `req.worker_id`, over the exact bytes
    /// sent.
    pub async fn register_with(
        &self,
        req: &RegisterRequest,
        auth: RegisterAuth<'_>,
    ) -> Result<RegisterOutcome, ClientError> {
        let signers: Vec<Signer<'_>> = [(LABEL, auth.key), (PREVIOUS_LABEL, auth.previous_key)]
            .into_iter()
            .filter_map(|(label, key)| key.map(|k| (label, k)))
            .collect();
        let mut rb = if signers.is_empty() {
            self.request(Method::POST, REGISTER)?
                .header(CONTENT_TYPE, "application/json")
                .body(json_bytes(req)?)
        } else {
            let body = Some(json_bytes(req)?);
            self.signed(Method::POST, REGISTER, body, &req.worker_id, &signers)?
        };
        let mut secrets: Vec<&str> = Vec::new();
        if let Some(token) = auth.proof {
            let value = format!("Bearer {}", token.expose_secret());
            rb = rb.header(AUTHORIZATION, secret_header(&value)?);
            secrets.push(token.expose_secret());
        }
        if let Some(key) = auth.enrollment_key {
            rb = rb.header(ENROLLMENT_KEY_HEADER, secret_header(key.expose_secret())?);
            secrets.push(key.expose_secret());
        }
        if let Some(key) = auth.admin_key {
            rb = rb.header(ADMIN_KEY_HEADER, secret_header(key.expose_secret())?);
            secrets.push(key.expose_secret());
        }
        let (status, record) = self.send(rb, &[], &secrets).await?;
        Ok(RegisterOutcome {
            record,
            created: status == StatusCode::CREATED,
        })
    }

    /// `POST /api/workers/{id}/revoke` with the admin key: the worker's key stops working at
    /// once on every route, and its channel closes.
    pub async fn revoke_worker(
        &self,
        id: &WorkerId,
        admin_key: &SecretString,
    ) -> Result<WorkerRecord, ClientError> {
        let key = admin_key.expose_secret();
        let rb = self
            .request(Method::POST, &worker_revoke_path(id))?
            .header(ADMIN_KEY_HEADER, secret_header(key)?);
        Ok(self.send(rb, &[], &[key]).await?.1)
    }

    /// `GET /api/workers/{id}`. A missing worker is `Api` with `WORKER_NOT_FOUND`.
    pub async fn worker(&self, id: &WorkerId) -> Result<WorkerRecord, ClientError> {
        let rb = self.request(Method::GET, &worker_path(id))?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }

    /// Like [`worker`](Self::worker), with a missing worker as `Ok(None)`.
    pub async fn find_worker(&self, id: &WorkerId) -> Result<Option<WorkerRecord>, ClientError> {
        match self.worker(id).await {
            Ok(record) => Ok(Some(record)),
            Err(e) if e.code() == ErrorCode::WorkerNotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page of `GET /api/workers` (ids greater than `after`, at most `limit`).
    pub async fn workers_page(
        &self,
        after: Option<&WorkerId>,
        limit: Option<usize>,
    ) -> Result<WorkerList, ClientError> {
        let mut query = Vec::new();
        if let Some(after) = after {
            // A WorkerId is [a-z0-9-]: nothing to escape.
            query.push(format!("after={after}"));
        }
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        let path = if query.is_empty() {
            WORKERS.to_owned()
        } else {
            format!("{WORKERS}?{}", query.join("&"))
        };
        let rb = self.request(Method::GET, &path)?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }

    /// Every registered worker, following the pages.
    pub async fn workers(&self) -> Result<Vec<WorkerRecord>, ClientError> {
        let mut all = Vec::new();
        let mut after: Option<WorkerId> = None;
        loop {
            let page = self
                .workers_page(after.as_ref(), Some(WORKERS_PAGE_MAX))
                .await?;
            all.extend(page.workers);
            match page.next_after {
                // A cursor that does not advance would loop forever: stop.
                Some(next) if after.as_ref().is_none_or(|a| next > *a) => after = Some(next),
                _ => return Ok(all),
            }
        }
    }
}
