//! The task market (docs/TASK_MARKET.md): `tasks()`, `task()`, `post_task()`, `claim()`,
//! `release()`, `submit()`, `submission()`, `evaluate()`, `dispute()`, `resolve()`.
//!
//! A worker's claim, release, submit and dispute are made as [`WorkerAuth`]: signed by its
//! device key (nothing secret travels), or for a legacy worker with its token as
//! `Authorization: Bearer`. Other credentials travel only in headers marked sensitive: the
//! evaluator key (evaluate) and the client key (post) as bearers, the admin key as
//! `x-basis-admin-key`. Reading a submission takes one of them ([`ReadAs`]). Each secret is
//! also withheld should an error message repeat it.

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::{ClientError, OrchestratorClient, WorkerAuth, secret_header};
use crate::domain::{Evaluation, SubmissionId, TaskId, WorkerId};
use crate::wire::{
    ADMIN_KEY_HEADER, Claim, ClaimRequest, DisputeRequest, PostTaskRequest, ResolveRequest,
    Submission, SubmitRequest, TASKS, Task, TaskList, TaskQuery, claim_path, dispute_path,
    evaluate_path, release_path, resolve_path, submission_path, submit_path, task_path,
};

/// The credential a submission is read with: only its poster, an evaluator, the worker that
/// submitted it and the operator may read it.
#[derive(Debug, Clone, Copy)]
pub enum ReadAs<'a> {
    /// The submitting worker, signing with its device key (or, legacy, by its token).
    Worker(WorkerAuth<'a>),
    /// The client key that posted the task, or an evaluator key.
    Key(&'a SecretString),
    /// The operator's admin key.
    Admin(&'a SecretString),
}

/// A submission's result: the submission as stored, and whether this call created it (201)
/// rather than finding the same `(task_id, output_hash)` already submitted (200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOutcome {
    pub submission: Submission,
    pub created: bool,
}

impl OrchestratorClient {
    /// One page of `GET /api/tasks` with the filters in `query` (highest reward first).
    pub async fn tasks(&self, query: &TaskQuery) -> Result<TaskList, ClientError> {
        let rb = self.request(Method::GET, &tasks_path(query))?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }

    /// `GET /api/tasks/{id}`. A missing task is `Api` with `TASK_NOT_FOUND`.
    pub async fn task(&self, id: &TaskId) -> Result<Task, ClientError> {
        let rb = self.request(Method::GET, &task_path(id))?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }

    /// `POST /api/tasks` with a client key (none against an `--open` orchestrator).
    pub async fn post_task(
        &self,
        req: &PostTaskRequest,
        client_key: Option<&SecretString>,
    ) -> Result<Task, ClientError> {
        let rb = self.request(Method::POST, TASKS)?.json(req);
        self.with_bearer(rb, client_key.map(ExposeSecret::expose_secret))
            .await
    }

    /// `POST /api/tasks/{id}/claim` as `worker_id`, proven by `auth`. Claiming a task this
    /// worker already holds returns its current claim.
    pub async fn claim(
        &self,
        id: &TaskId,
        worker_id: &WorkerId,
        auth: WorkerAuth<'_>,
    ) -> Result<Claim, ClientError> {
        let body = ClaimRequest {
            worker_id: worker_id.clone(),
        };
        let rb = self.worker_request(Method::POST, &claim_path(id), Some(&body), auth)?;
        self.as_worker(rb, auth).await
    }

    /// `POST /api/tasks/{id}/release`: gives the claim back (the task reopens).
    pub async fn release(
        &self,
        id: &TaskId,
        worker_id: &WorkerId,
        auth: WorkerAuth<'_>,
    ) -> Result<Task, ClientError> {
        let body = ClaimRequest {
            worker_id: worker_id.clone(),
        };
        let rb = self.worker_request(Method::POST, &release_path(id), Some(&body), auth)?;
        self.as_worker(rb, auth).await
    }

    /// `POST /api/tasks/{id}/submit`. The same output again returns the first submission.
    pub async fn submit(
        &self,
        id: &TaskId,
        req: &SubmitRequest,
        auth: WorkerAuth<'_>,
    ) -> Result<SubmitOutcome, ClientError> {
        let rb = self.worker_request(Method::POST, &submit_path(id), Some(req), auth)?;
        let (status, submission) = self.send(rb, &[], auth.secret().as_slice()).await?;
        Ok(SubmitOutcome {
            submission,
            created: status == StatusCode::CREATED,
        })
    }

    /// `GET /api/submissions/{id}`, read as `reader` (the poster, an evaluator, the submitter
    /// or the operator). A missing one, or one that credential may not read, is `Api` with
    /// `SUBMISSION_NOT_FOUND`.
    pub async fn submission(
        &self,
        id: &SubmissionId,
        reader: ReadAs<'_>,
    ) -> Result<Submission, ClientError> {
        let path = submission_path(id);
        match reader {
            ReadAs::Worker(auth) => {
                let rb = self.worker_request(Method::GET, &path, None::<&()>, auth)?;
                self.as_worker(rb, auth).await
            }
            ReadAs::Key(key) => {
                let rb = self.request(Method::GET, &path)?;
                self.with_bearer(rb, Some(key.expose_secret())).await
            }
            ReadAs::Admin(key) => {
                let key = key.expose_secret();
                let rb = self
                    .request(Method::GET, &path)?
                    .header(ADMIN_KEY_HEADER, secret_header(key)?);
                Ok(self.send(rb, &[], &[key]).await?.1)
            }
        }
    }

    /// `POST /api/submissions/{id}/evaluate` with an evaluator key.
    pub async fn evaluate(
        &self,
        id: &SubmissionId,
        evaluation: &Evaluation,
        evaluator_key: &SecretString,
    ) -> Result<Submission, ClientError> {
        let rb = self
            .request(Method::POST, &evaluate_path(id))?
            .json(evaluation);
        self.with_bearer(rb, Some(evaluator_key.expose_secret()))
            .await
    }

    /// `POST /api/submissions/{id}/dispute`: this worker disputes a rejection.
    pub async fn dispute(
        &self,
        id: &SubmissionId,
        req: &DisputeRequest,
        auth: WorkerAuth<'_>,
    ) -> Result<Submission, ClientError> {
        let rb = self.worker_request(Method::POST, &dispute_path(id), Some(req), auth)?;
        self.as_worker(rb, auth).await
    }

    /// `POST /api/submissions/{id}/resolve` with the admin key: the operator decides a dispute.
    pub async fn resolve(
        &self,
        id: &SubmissionId,
        req: &ResolveRequest,
        admin_key: &SecretString,
    ) -> Result<Submission, ClientError> {
        let key = admin_key.expose_secret();
        let rb = self
            .request(Method::POST, &resolve_path(id))?
            .header(ADMIN_KEY_HEADER, secret_header(key)?)
            .json(req);
        Ok(self.send(rb, &[], &[key]).await?.1)
    }

    /// Sends a request built by `worker_request` for `auth`, keeping only the body and
    /// withholding any error message that repeats a legacy token.
    pub(super) async fn as_worker<T: DeserializeOwned>(
        &self,
        rb: RequestBuilder,
        auth: WorkerAuth<'_>,
    ) -> Result<T, ClientError> {
        Ok(self.send(rb, &[], auth.secret().as_slice()).await?.1)
    }

    /// [`authed`](Self::authed), keeping only the body.
    async fn with_bearer<T: DeserializeOwned>(
        &self,
        rb: RequestBuilder,
        secret: Option<&str>,
    ) -> Result<T, ClientError> {
        Ok(self.authed(rb, secret).await?.1)
    }

    /// Sends `rb` with `Authorization: Bearer <secret>` (when given), withholding any error
    /// message that repeats the secret.
    pub(super) async fn authed<T: DeserializeOwned>(
        &self,
        rb: RequestBuilder,
        secret: Option<&str>,
    ) -> Result<(StatusCode, T), ClientError> {
        match secret {
            Some(secret) => {
                let rb = rb.header(AUTHORIZATION, secret_header(&format!("Bearer {secret}"))?);
                self.send(rb, &[], &[secret]).await
            }
            None => self.send(rb, &[], &[]).await,
        }
    }
}

/// `/api/tasks` with the query's filters, form-encoded (capabilities hold `:`).
fn tasks_path(query: &TaskQuery) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    if let Some(status) = query.status {
        form.append_pair("status", status.as_str());
    }
    if let Some(caps) = &query.capabilities {
        form.append_pair("capabilities", caps);
    }
    if let Some(worker) = &query.fits {
        form.append_pair("fits", worker.as_str());
    }
    if let Some(min) = &query.min_reward {
        form.append_pair("min_reward", &min.to_string());
    }
    if let Some(buffer) = query.deadline_buffer_s {
        form.append_pair("deadline_buffer_s", &buffer.to_string());
    }
    if let Some(cursor) = &query.cursor {
        form.append_pair("cursor", cursor);
    }
    if let Some(limit) = query.limit {
        form.append_pair("limit", &limit.to_string());
    }
    let encoded = form.finish();
    if encoded.is_empty() {
        TASKS.to_owned()
    } else {
        format!("{TASKS}?{encoded}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderMap;

    use super::*;
    use crate::domain::{Amount, ErrorCode, TaskStatus, WorkerToken};

    /// A claim refused by the server: the token went as a bearer header, the server's code
    /// comes through, and a message that repeats the token is withheld.
    #[tokio::test]
    async fn a_refused_claim_keeps_its_code_and_never_its_token() {
        async fn refuse(headers: HeaderMap) -> (axum::http::StatusCode, String) {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = serde_json::json!({"error": {"code": "ALREADY_CLAIMED",
                "message": format!("you sent {auth}"), "fix": "pick another task"}});
            (axum::http::StatusCode::CONFLICT, body.to_string())
        }
        let app = axum::Router::new().route("/api/tasks/{id}/claim", axum::routing::post(refuse));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = OrchestratorClient::new(
            url::Url::parse(&format!("http://{addr}")).unwrap(),
            Duration::from_secs(5),
        )
        .unwrap();
        let token = WorkerToken::generate();
        let id = TaskId::generate();
        let worker = WorkerId::parse("w-1").unwrap();
        let e = client
            .claim(&id, &worker, WorkerAuth::Token(&token))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::AlreadyClaimed);
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(token.expose_secret()), "{shown}");
        assert!(shown.contains("withheld"), "{shown}");
        server.abort();
    }

    /// A claim made with the device key is signed over the URL the server saw (its origin,
    /// path), the method and the body's digest, and carries no bearer; a registration during a
    /// rotation carries both signatures.
    #[tokio::test]
    async fn requests_made_with_the_device_key_are_signed_and_carry_no_secret() {
        use crate::domain::DeviceKey;
        use crate::wire::signature::{self, LABEL, PREVIOUS_LABEL};
        type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, HeaderMap, Vec<u8>)>>>;
        async fn record(
            axum::extract::State(seen): axum::extract::State<Seen>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            body: axum::body::Bytes,
        ) -> (axum::http::StatusCode, String) {
            seen.lock()
                .unwrap()
                .push((uri.to_string(), headers, body.to_vec()));
            let body = serde_json::json!({"error": {"code": "ALREADY_CLAIMED", "message": "no"}});
            (axum::http::StatusCode::CONFLICT, body.to_string())
        }
        let seen = Seen::default();
        let app = axum::Router::new()
            .fallback(record)
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = OrchestratorClient::new(
            url::Url::parse(&format!("http://{addr}")).unwrap(),
            Duration::from_secs(5),
        )
        .unwrap();
        let (key, old) = (DeviceKey::generate(), DeviceKey::generate());
        let worker = WorkerId::parse("w-1").unwrap();
        let auth = WorkerAuth::Key {
            worker_id: &worker,
            key: &key,
        };
        let id = TaskId::generate();
        let _ = client.claim(&id, &worker, auth).await.unwrap_err();
        let submission = SubmissionId::generate();
        let _ = client
            .submission(&submission, ReadAs::Worker(auth))
            .await
            .unwrap_err();
        let mut request: crate::wire::RegisterRequest = serde_json::from_value(serde_json::json!({
            "worker_id": "w-1", "wallet": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "runtime": "echo", "models": ["echo"], "version": "0.1.0",
            "token_sha256": format!("0x{}", "00".repeat(32)),
        }))
        .unwrap();
        request.public_key = Some(key.public());
        let rotation = crate::client::RegisterAuth {
            key: Some(&key),
            previous_key: Some(&old),
            ..crate::client::RegisterAuth::default()
        };
        let _ = client.register_with(&request, rotation).await.unwrap_err();
        server.abort();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        let methods = ["POST", "GET", "POST"];
        for ((path, headers, body), method) in seen.iter().zip(methods) {
            assert!(headers.get("authorization").is_none(), "{path}");
            let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
            let digest = signature::content_digest(body);
            assert_eq!(h("content-digest"), digest);
            let got = signature::received(LABEL, &h("signature-input"), &h("signature")).unwrap();
            assert_eq!(got.keyid, worker);
            let target = format!("http://{}{path}", h("host"));
            assert!(
                got.verifies(&key.public(), method, &target, &digest),
                "{target}"
            );
            let elsewhere = format!("http://orch.example{path}");
            assert!(!got.verifies(&key.public(), method, &elsewhere, &digest));
            let text = format!("{headers:?} {}", String::from_utf8_lossy(body));
            assert!(!text.contains(&key.expose_secret()[9..]), "{text}");
        }
        let (path, headers, body) = &seen[2];
        let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
        let prev =
            signature::received(PREVIOUS_LABEL, &h("signature-input"), &h("signature")).unwrap();
        let target = format!("http://{}{path}", h("host"));
        let digest = signature::content_digest(body);
        assert!(prev.verifies(&old.public(), "POST", &target, &digest));
        assert_eq!(
            serde_json::from_slice::<crate::wire::RegisterRequest>(body).unwrap(),
            request,
            "the bytes signed are the request"
        );
    }

    #[test]
    fn the_query_is_form_encoded() {
        assert_eq!(tasks_path(&TaskQuery::default()), "/api/tasks");
        let query = TaskQuery {
            status: Some(TaskStatus::Open),
            capabilities: Some("runtime:vllm,model:llama3.2:1b".into()),
            min_reward: Some(Amount::from_atomic(5)),
            deadline_buffer_s: Some(60),
            cursor: Some("a b&c".into()),
            limit: Some(10),
            fits: None,
        };
        assert_eq!(
            tasks_path(&query),
            "/api/tasks?status=open&capabilities=runtime%3Avllm%2Cmodel%3Allama3.2%3A1b\
             &min_reward=5&deadline_buffer_s=60&cursor=a+b%26c&limit=10"
        );
    }
}
