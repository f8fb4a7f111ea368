//! The `keys` table: API key hashes and their roles.

use futures::future::BoxFuture;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, to_sql_int};
use crate::orchestrator::store::{KeyRole, KeySha256, KeyStore, StoreError};

impl KeyStore for SqliteStore {
    fn insert_key(
        &self,
        role: KeyRole,
        sha256: KeySha256,
        label: Option<String>,
        now: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO keys (key_sha256, role, label, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![&sha256.0[..], role.as_str(), label, to_sql_int(now)],
            )?;
            Ok(())
        })
    }

    fn key_role(&self, sha256: KeySha256) -> BoxFuture<'_, Result<Option<KeyRole>, StoreError>> {
        self.read(move |conn| {
            // Once per gateway request: parsed once, from the statement cache.
            let role: Option<String> = conn
                .prepare_cached(
                    "SELECT role FROM keys WHERE key_sha256 = ?1 AND revoked_at IS NULL",
                )?
                .query_row(params![&sha256.0[..]], |r| r.get(0))
                .optional()?;
            role.map(|r| {
                r.parse().map_err(|_| StoreError::Corrupt {
                    what: "key role",
                    reason: "unknown role".into(),
                })
            })
            .transpose()
        })
    }
}
