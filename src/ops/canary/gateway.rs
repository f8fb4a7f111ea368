//! The canary's gateway checks: status codes without a worker or a key, a completion streamed
//! and not, each answer's receipt fetched and re-verified from its JSON alone, and the worker
//! record going offline.

use std::time::Duration;

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use super::procs::Orchestrator;
use crate::client::OrchestratorClient;
use crate::domain::{OutputHash, ReceiptHash, WorkerId, verify_receipt_json};
use crate::runtime;
use crate::wire::{JOB_ID_HEADER, RECEIPT_HASH_HEADER, RECEIPT_ID_HEADER, WORKER_ID_HEADER};

/// The canary's worker.
pub const WORKER_ID: &str = "canary-worker";

pub struct Gateway {
    base: Url,
    key: SecretString,
    http: reqwest::Client,
}

fn request(stream: bool) -> Value {
    json!({
        "model": "echo",
        "messages": [{"role": "user", "content": "basis canary: prove the path end to end"}],
        "stream": stream,
    })
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Gateway {
    pub fn new(o: &Orchestrator) -> Self {
        let http = crate::http::client_builder(Duration::from_secs(2))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            base: o.url.clone(),
            key: o.client_key.clone(),
            http,
        }
    }

    fn url(&self, path: &str) -> Result<Url, String> {
        self.base.join(path).map_err(|e| e.to_string())
    }

    async fn post(&self, with_key: bool, stream: bool) -> Result<reqwest::Response, String> {
        let mut rb = self
            .http
            .post(self.url("/v1/chat/completions")?)
            .json(&request(stream));
        if with_key {
            rb = rb.bearer_auth(self.key.expose_secret());
        }
        rb.send().await.map_err(|e| format!("request failed: {e}"))
    }

    /// A completion answered with `status` (and `Retry-After` for 503).
    pub async fn expect_status(
        &self,
        with_key: bool,
        status: u16,
        why: &str,
    ) -> Result<((), String), String> {
        let resp = self.post(with_key, false).await?;
        let got = resp.status().as_u16();
        if got != status {
            return Err(format!("expected {status}, got {got}"));
        }
        if status == 503 && header(&resp, "retry-after").is_none() {
            return Err("503 without Retry-After".to_owned());
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| format!("body is not JSON: {e}"))?;
        let code = body["error"]["code"].as_str().unwrap_or("?").to_owned();
        Ok(((), format!("{status} {code}: {why}")))
    }

    /// Fetches a receipt, re-verifies it from its JSON, and checks it binds `output`.
    async fn check_receipt(
        &self,
        id: &str,
        claimed: &ReceiptHash,
        output: &str,
    ) -> Result<(), String> {
        let value: Value = self
            .http
            .get(self.url(&format!("/api/receipts/{id}"))?)
            .send()
            .await
            .map_err(|e| format!("receipt fetch failed: {e}"))?
            .error_for_status()
            .map_err(|e| format!("receipt fetch failed: {e}"))?
            .json()
            .await
            .map_err(|e| format!("receipt is not JSON: {e}"))?;
        let verified = verify_receipt_json(&value).map_err(|e| format!("receipt: {e}"))?;
        if verified != *claimed {
            return Err(format!("receipt hash {verified} != announced {claimed}"));
        }
        let expected = OutputHash::of(output.as_bytes()).to_string();
        if value["output_hash"].as_str() != Some(expected.as_str()) {
            return Err("the receipt's output_hash is not keccak256 of the answer".to_owned());
        }
        if value["worker_id"].as_str() != Some(WORKER_ID) {
            return Err("the receipt names another worker".to_owned());
        }
        Ok(())
    }

    /// A completion through the worker: 200, worker headers, the echo answer, a receipt.
    pub async fn completion(&self, stream: bool) -> Result<((), String), String> {
        let expected = runtime::answer(&request(stream)).map_err(|e| e.to_string())?;
        let resp = self.post(true, stream).await?;
        if resp.status().as_u16() != 200 {
            return Err(format!("expected 200, got {}", resp.status()));
        }
        if header(&resp, WORKER_ID_HEADER).as_deref() != Some(WORKER_ID) {
            return Err(format!("{WORKER_ID_HEADER} missing or wrong"));
        }
        let job = header(&resp, JOB_ID_HEADER).ok_or(format!("{JOB_ID_HEADER} missing"))?;
        let (text, receipt_id, receipt_hash) = if stream {
            read_stream(resp).await?
        } else {
            let id = header(&resp, RECEIPT_ID_HEADER);
            let hash = header(&resp, RECEIPT_HASH_HEADER);
            let body: Value = resp.json().await.map_err(|e| format!("body: {e}"))?;
            let text = body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (text, id, hash)
        };
        if text != expected {
            return Err("the answer is not the echo runtime's".to_owned());
        }
        let id = receipt_id.ok_or("no receipt id")?;
        let hash = receipt_hash
            .as_deref()
            .map(ReceiptHash::parse)
            .transpose()
            .map_err(|e| e.to_string())?
            .ok_or("no receipt hash")?;
        self.check_receipt(&id, &hash, &text).await?;
        Ok(((), format!("{job}, receipt {hash} verifies")))
    }

    /// The orchestrator reports the worker offline within `within`.
    pub async fn expect_offline(&self, within: Duration) -> Result<((), String), String> {
        let client = OrchestratorClient::new(self.base.clone(), Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let id = WorkerId::parse(WORKER_ID).map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let record = client.worker(&id).await.map_err(|e| e.to_string())?;
            if !record.online {
                return Ok((
                    (),
                    format!("offline; jobs_completed {}", record.jobs_completed),
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("still online after {} s", within.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Reads an SSE answer: the concatenated deltas and the receipt named by the last chunk.
async fn read_stream(
    resp: reqwest::Response,
) -> Result<(String, Option<String>, Option<String>), String> {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut text = String::new();
    let (mut id, mut hash, mut done) = (None, None, false);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("stream broke: {e}"))?;
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            let Some(data) = line.trim_end().strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let v: Value = serde_json::from_str(data).map_err(|e| format!("bad chunk: {e}"))?;
            if v.get("error").is_some() {
                return Err(format!("error event: {}", v["error"]));
            }
            if let Some(delta) = v["choices"][0]["delta"]["content"].as_str() {
                text.push_str(delta);
            }
            if let Some(r) = v["basis_receipt_id"].as_str() {
                id = Some(r.to_owned());
            }
            if let Some(h) = v["basis_receipt_hash"].as_str() {
                hash = Some(h.to_owned());
            }
        }
    }
    if !done {
        return Err("the stream ended without [DONE]".to_owned());
    }
    Ok((text, id, hash))
}
