//! Settlement (docs/SETTLEMENT.md): the rewards views anyone may read (`rewards()`,
//! `wallet_rewards()`), and the operator's batch routes with the admin key in
//! `x-basis-admin-key` (a sensitive header, withheld from any error message):
//! `close_batch()`, `batches()`, `batch()`, `batch_leaves()`, `mark_batch_paid()`.

use std::fmt::Write as _;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::{ClientError, OrchestratorClient, secret_header};
use crate::domain::{WalletAddress, WorkerId};
use crate::wire::{
    ADMIN_KEY_HEADER, BatchLeaves, BatchList, CloseBatchRequest, CloseBatchResult, MarkPaidRequest,
    Rewards, SETTLEMENT_BATCHES, SettlementBatchInfo, WalletRewards, batch_path, rewards_path,
    wallet_rewards_path,
};

impl OrchestratorClient {
    /// `GET /api/workers/{id}/rewards`: the worker's credits by state, its batches with
    /// proofs, its newest credits.
    pub async fn rewards(&self, worker_id: &WorkerId) -> Result<Rewards, ClientError> {
        let rb = self.request(Method::GET, &rewards_path(worker_id))?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }

    /// `GET /api/wallets/{address}/rewards`: every worker's credits to the wallet together.
    pub async fn wallet_rewards(
        &self,
        wallet: &WalletAddress,
    ) -> Result<WalletRewards, ClientError> {
        let rb = self.request(Method::GET, &wallet_rewards_path(wallet))?;
        Ok(self.send(rb, &[], &[]).await?.1)
    }

    async fn admin<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl serde::Serialize + Sync)>,
        admin_key: &SecretString,
    ) -> Result<T, ClientError> {
        let key = admin_key.expose_secret();
        let mut rb = self
            .request(method, path)?
            .header(ADMIN_KEY_HEADER, secret_header(key)?);
        if let Some(body) = body {
            rb = rb.json(body);
        }
        Ok(self.send(rb, &[], &[key]).await?.1)
    }

    /// `POST /api/settlement/batches`: closes a batch at `until` (unix seconds; now when
    /// `None`), or returns the one that watermark already closed.
    pub async fn close_batch(
        &self,
        until: Option<u64>,
        admin_key: &SecretString,
    ) -> Result<CloseBatchResult, ClientError> {
        let body = CloseBatchRequest { until };
        self.admin(Method::POST, SETTLEMENT_BATCHES, Some(&body), admin_key)
            .await
    }

    /// `GET /api/settlement/batches`, newest first.
    pub async fn batches(
        &self,
        before: Option<u64>,
        limit: usize,
        admin_key: &SecretString,
    ) -> Result<BatchList, ClientError> {
        let mut path = format!("{SETTLEMENT_BATCHES}?limit={limit}");
        if let Some(b) = before {
            let _ = write!(path, "&before={b}");
        }
        self.admin(Method::GET, &path, None::<&()>, admin_key).await
    }

    /// `GET /api/settlement/batches/{id}`.
    pub async fn batch(
        &self,
        id: u64,
        admin_key: &SecretString,
    ) -> Result<SettlementBatchInfo, ClientError> {
        self.admin(Method::GET, &batch_path(id), None::<&()>, admin_key)
            .await
    }

    /// `GET /api/settlement/batches/{id}/leaves`: a page of the batch's leaves after
    /// position `after`.
    pub async fn batch_leaves(
        &self,
        id: u64,
        after: Option<u64>,
        admin_key: &SecretString,
    ) -> Result<BatchLeaves, ClientError> {
        let mut path = format!("{}/leaves", batch_path(id));
        if let Some(after) = after {
            let _ = write!(path, "?after={after}");
        }
        self.admin(Method::GET, &path, None::<&()>, admin_key).await
    }

    /// `POST /api/settlement/batches/{id}/paid`.
    pub async fn mark_batch_paid(
        &self,
        id: u64,
        tx_hash: &str,
        admin_key: &SecretString,
    ) -> Result<SettlementBatchInfo, ClientError> {
        let path = format!("{}/paid", batch_path(id));
        let body = MarkPaidRequest {
            tx_hash: tx_hash.to_owned(),
        };
        self.admin(Method::POST, &path, Some(&body), admin_key)
            .await
    }
}
