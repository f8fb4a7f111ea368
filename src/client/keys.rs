//! The operator's key routes, with the admin key in `x-basis-admin-key` (a sensitive header,
//! withheld from any error message): `keys()`, `key_usage()`, `revoke_key()`,
//! `set_key_limits()`.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};

use super::{ClientError, OrchestratorClient, secret_header};
use crate::wire::{
    ADMIN_KEY_HEADER, ApiKey, KEYS, KeyList, KeyUsageReport, SetLimitsRequest, key_limits_path,
    key_revoke_path, key_usage_path,
};

impl OrchestratorClient {
    /// `GET /api/keys`: every key with its quotas and today's usage.
    pub async fn keys(&self, admin_key: &SecretString) -> Result<KeyList, ClientError> {
        let key = admin_key.expose_secret();
        let rb = self
            .request(Method::GET, KEYS)?
            .header(ADMIN_KEY_HEADER, secret_header(key)?);
        Ok(self.send(rb, &[], &[key]).await?.1)
    }

    /// `GET /api/keys/{id}/usage?days=N`.
    pub async fn key_usage(
        &self,
        id: &str,
        days: u32,
        admin_key: &SecretString,
    ) -> Result<KeyUsageReport, ClientError> {
        let key = admin_key.expose_secret();
        let rb = self
            .request(Method::GET, &key_usage_path(id, days))?
            .header(ADMIN_KEY_HEADER, secret_header(key)?);
        Ok(self.send(rb, &[], &[key]).await?.1)
    }

    /// `POST /api/keys/{id}/revoke`.
    pub async fn revoke_key(
        &self,
        id: &str,
        admin_key: &SecretString,
    ) -> Result<ApiKey, ClientError> {
        let key = admin_key.expose_secret();
        let rb = self
            .request(Method::POST, &key_revoke_path(id))?
            .header(ADMIN_KEY_HEADER, secret_header(key)?);
        Ok(self.send(rb, &[], &[key]).await?.1)
    }

    /// `PUT /api/keys/{id}/limits`.
    pub async fn set_key_limits(
        &self,
        id: &str,
        limits: &SetLimitsRequest,
        admin_key: &SecretString,
    ) -> Result<ApiKey, ClientError> {
        let key = admin_key.expose_secret();
        let rb = self
            .request(Method::PUT, &key_limits_path(id))?
            .header(ADMIN_KEY_HEADER, secret_header(key)?)
            .json(limits);
        Ok(self.send(rb, &[], &[key]).await?.1)
    }
}
