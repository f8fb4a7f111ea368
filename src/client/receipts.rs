//! Receipts: `receipt()` (one, as sealed) and `receipts()` (a page in issue order). Neither
//! needs a credential.

use reqwest::Method;
use serde_json::Value;

use super::{ClientError, OrchestratorClient};
use crate::wire::{RECEIPTS, ReceiptPage, ReceiptQuery, receipt_path};

impl OrchestratorClient {
    /// `GET /api/receipts/{id}`: by receipt id (`rcpt-…`) or hash (`0x…`).
    pub async fn receipt(&self, id_or_hash: &str) -> Result<Value, ClientError> {
        let rb = self.request(Method::GET, &receipt_path(id_or_hash))?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }

    /// `GET /api/receipts?since=&worker=&after=&limit=`.
    pub async fn receipts(&self, query: &ReceiptQuery) -> Result<ReceiptPage, ClientError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        if let Some(since) = query.since {
            form.append_pair("since", &since.to_string());
        }
        if let Some(worker) = &query.worker {
            form.append_pair("worker", worker.as_str());
        }
        if let Some(after) = &query.after {
            form.append_pair("after", after);
        }
        if let Some(limit) = query.limit {
            form.append_pair("limit", &limit.to_string());
        }
        let encoded = form.finish();
        let path = if encoded.is_empty() {
            RECEIPTS.to_owned()
        } else {
            format!("{RECEIPTS}?{encoded}")
        };
        let rb = self.request(Method::GET, &path)?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }
}
