//! The `keys` table on PostgreSQL (API key hashes, roles, quotas) and `key_usage` (what each
//! key used per UTC day, written with the job that used it, in `jobs.rs`).

use deadpool_postgres::GenericClient;
use futures::FutureExt as _;
use futures::future::BoxFuture;

use super::pipeline::{Write, params};
use super::{PgStore, int, pg_err};
use crate::domain::{Amount, Usage};
use crate::orchestrator::store::rows::{KEY_COLUMNS, KEY_USAGE_DAYS, day_usage, key_entry};
use crate::orchestrator::store::settlement::pg;
use crate::orchestrator::store::{KeyEntry, KeyGrant, KeyRole, KeySha256, KeyStore, StoreError};
use crate::wire::{KeyLimits, KeyUsage};

/// Adds one request's tokens and what it was charged to `key`'s usage on `day` (queued in the
/// job's transaction; the amount, a decimal string, is added as `numeric`).
pub(super) fn usage_write(key: &KeySha256, day: u64, used: Usage, charged: Amount) -> Write {
    Write::new(
        "INSERT INTO key_usage (key_sha256, day, requests, prompt_tokens, completion_tokens, \
         amount) VALUES ($1, $2, 1, $3, $4, $5) ON CONFLICT (key_sha256, day) DO UPDATE SET \
         requests = key_usage.requests + 1, \
         prompt_tokens = key_usage.prompt_tokens + excluded.prompt_tokens, \
         completion_tokens = key_usage.completion_tokens + excluded.completion_tokens, \
         amount = CASE WHEN excluded.amount = '0' THEN key_usage.amount \
         ELSE (key_usage.amount::numeric + excluded.amount::numeric)::text END",
        params![
            key.0.to_vec(),
            int(day),
            int(used.prompt_tokens),
            int(used.completion_tokens),
            charged.to_string(),
        ],
    )
}

fn rpm(limits: &KeyLimits) -> Option<i64> {
    limits.requests_per_minute.map(i64::from)
}

impl KeyStore for PgStore {
    fn insert_key(
        &self,
        role: KeyRole,
        sha256: KeySha256,
        label: Option<String>,
        limits: KeyLimits,
        now: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO keys (key_sha256, role, label, created_at, requests_per_minute, \
                     tokens_per_day) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &&sha256.0[..],
                        &role.as_str(),
                        &label,
                        &int(now),
                        &rpm(&limits),
                        &limits.tokens_per_day.map(int),
                    ],
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

    fn key_grant(
        &self,
        sha256: KeySha256,
        day: u64,
    ) -> BoxFuture<'_, Result<Option<KeyGrant>, StoreError>> {
        async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM keys k LEFT JOIN key_usage u \
                     ON u.key_sha256 = k.key_sha256 AND u.day = $1 \
                     WHERE k.key_sha256 = $2 AND k.revoked_at IS NULL"
                ))
                .await
                .map_err(pg_err)?;
            let Some(row) = client
                .query_opt(&stmt, &[&int(day), &&sha256.0[..]])
                .await
                .map_err(pg_err)?
            else {
                return Ok(None);
            };
            let k = key_entry(&row)?;
            Ok(Some(KeyGrant {
                role: k.role,
                limits: k.limits,
                usage: k.usage,
            }))
        }
        .boxed()
    }

    fn keys(&self, day: u64) -> BoxFuture<'_, Result<Vec<KeyEntry>, StoreError>> {
        async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {KEY_COLUMNS} FROM keys k LEFT JOIN key_usage u \
                         ON u.key_sha256 = k.key_sha256 AND u.day = $1 \
                         ORDER BY k.created_at, k.key_sha256"
                    ),
                    &[&int(day)],
                )
                .await
                .map_err(pg_err)?;
            rows.iter().map(key_entry).collect()
        }
        .boxed()
    }

    fn key_usage(
        &self,
        sha256: KeySha256,
        from_day: u64,
        to_day: u64,
    ) -> BoxFuture<'_, Result<Vec<(u64, KeyUsage)>, StoreError>> {
        async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    &pg(KEY_USAGE_DAYS),
                    &[&&sha256.0[..], &int(from_day), &int(to_day)],
                )
                .await
                .map_err(pg_err)?;
            rows.iter().map(day_usage).collect()
        }
        .boxed()
    }

    fn revoke_key(&self, sha256: KeySha256, now: u64) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let client = self.client().await?;
            let n = client
                .execute(
                    "UPDATE keys SET revoked_at = COALESCE(revoked_at, $2) WHERE key_sha256 = $1",
                    &[&&sha256.0[..], &int(now)],
                )
                .await
                .map_err(pg_err)?;
            Ok(n > 0)
        }
        .boxed()
    }

    fn set_key_limits(
        &self,
        sha256: KeySha256,
        limits: KeyLimits,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        async move {
            let client = self.client().await?;
            let n = client
                .execute(
                    "UPDATE keys SET requests_per_minute = $2, tokens_per_day = $3 \
                     WHERE key_sha256 = $1",
                    &[
                        &&sha256.0[..],
                        &rpm(&limits),
                        &limits.tokens_per_day.map(int),
                    ],
                )
                .await
                .map_err(pg_err)?;
            Ok(n > 0)
        }
        .boxed()
    }
}
