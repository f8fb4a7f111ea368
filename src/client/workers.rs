//! Workers: `register()`, `worker()`, `find_worker()`, `workers()`, `workers_page()`.

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use super::{ClientError, OrchestratorClient, secret_header};
use crate::domain::{ErrorCode, WorkerId, WorkerToken};
use crate::wire::{
    ADMIN_KEY_HEADER, ENROLLMENT_KEY_HEADER, REGISTER, RegisterRequest, WORKERS, WORKERS_PAGE_MAX,
    WorkerList, WorkerRecord, worker_path,
};

/// A registration's result: the record as the orchestrator holds it, and whether this call
/// created it (201) rather than finding or updating it (200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOutcome {
    pub record: WorkerRecord,
    pub created: bool,
}

/// Credentials for a registration; all optional.
#[derive(Debug, Default, Clone, Copy)]
pub struct RegisterAuth<'a> {
    /// The CURRENT worker token: proof of possession to change a registration or rotate the
    /// token. Sent as `Authorization: Bearer`.
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
                admin_key: None,
            },
        )
        .await
    }

    /// [`register`](Self::register) with any combination of credentials.
    pub async fn register_with(
        &self,
        req: &RegisterRequest,
        auth: RegisterAuth<'_>,
    ) -> Result<RegisterOutcome, ClientError> {
        let mut rb = self.request(Method::POST, REGISTER)?.json(req);
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
