//! The `keys` table on PostgreSQL: API key hashes and their roles.

use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::{PgStore, int, pg_err};
use crate::orchestrator::store::{KeyRole, KeySha256, KeyStore, StoreError};

impl KeyStore for PgStore {
    fn insert_key(
        &self,
        role: KeyRole,
        sha256: KeySha256,
        label: Option<String>,
        now: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO keys (key_sha256, role, label, created_at) \
                     VALUES ($1, $2, $3, $4)",
                    &[&&sha256.0[..], &role.as_str(), &label, &int(now)],
                )
                .await
                .map_err(pg_err)?;
            Ok(())
        }
        .boxed()
    }

    fn key_role(&self, sha256: KeySha256) -> BoxFuture<'_, Result<Option<KeyRole>, StoreError>> {
        async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT role FROM keys WHERE key_sha256 = $1 AND revoked_at IS NULL",
                )
                .await
                .map_err(pg_err)?;
            let role: Option<String> = client
                .query_opt(&stmt, &[&&sha256.0[..]])
                .await
                .map_err(pg_err)?
                .map(|row| row.get(0));
            role.map(|r| {
                r.parse().map_err(|_| StoreError::Corrupt {
                    what: "key role",
                    reason: "unknown role".into(),
                })
            })
            .transpose()
        }
        .boxed()
    }
}
