//! The `keys` table (API key hashes, roles, quotas) and `key_usage` (what each key used per
//! UTC day, written with the job that used it, in `jobs.rs`).

use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, to_sql_int};
use crate::domain::{Amount, Usage};
use crate::orchestrator::store::rows::{
    KEY_COLUMNS, KEY_USAGE_DAYS, corrupt, day_usage, key_entry,
};
use crate::orchestrator::store::{KeyEntry, KeyGrant, KeyRole, KeySha256, KeyStore, StoreError};
use crate::wire::{KeyLimits, KeyUsage};

/// Amounts below this (10^18) add in SQL: two of them sum below 2^63.
pub(super) const SQL_ADDABLE: u128 = 1_000_000_000_000_000_000;

/// Adds one request's tokens and what it was charged to `key`'s usage on `day` (in the job's
/// transaction). The amount is a decimal string: added in SQL while it and the charge are
/// below [`SQL_ADDABLE`] (one statement, the common case), else read and written back by the
/// single writer.
pub(super) fn add_usage(
    tx: &Connection,
    key: &KeySha256,
    day: u64,
    used: Usage,
    charged: Amount,
) -> Result<(), StoreError> {
    if !charged.is_zero()
        && charged.atomic() < SQL_ADDABLE
        && let Ok(add) = i64::try_from(charged.atomic())
    {
        let n = tx
            .prepare_cached(
                "INSERT INTO key_usage (key_sha256, day, requests, prompt_tokens, \
                 completion_tokens, amount) VALUES (?1, ?2, 1, ?3, ?4, CAST(?5 AS TEXT)) \
                 ON CONFLICT (key_sha256, day) DO UPDATE SET requests = requests + 1, \
                 prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
                 completion_tokens = completion_tokens + excluded.completion_tokens, \
                 amount = CAST(CAST(amount AS INTEGER) + ?5 AS TEXT) \
                 WHERE length(key_usage.amount) <= 18 \
                 AND key_usage.amount NOT GLOB '*[^0-9]*'",
            )?
            .execute(params![
                &key.0[..],
                to_sql_int(day),
                to_sql_int(used.prompt_tokens),
                to_sql_int(used.completion_tokens),
                add
            ])?;
        if n == 1 {
            return Ok(());
        }
    }
    let total = if charged.is_zero() {
        None
    } else {
        let before: Option<String> = tx
            .prepare_cached("SELECT amount FROM key_usage WHERE key_sha256 = ?1 AND day = ?2")?
            .query_row(params![&key.0[..], to_sql_int(day)], |r| r.get(0))
            .optional()?;
        let before = before
            .map(|a| Amount::parse(&a).map_err(|e| corrupt("key usage amount", e)))
            .transpose()?
            .unwrap_or(Amount::ZERO);
        let total = before
            .checked_add(charged)
            .ok_or_else(|| corrupt("key usage amount", "the sum overflows"))?;
        Some(total.to_string())
    };
    tx.prepare_cached(
        "INSERT INTO key_usage (key_sha256, day, requests, prompt_tokens, completion_tokens, \
         amount) VALUES (?1, ?2, 1, ?3, ?4, coalesce(?5, '0')) \
         ON CONFLICT (key_sha256, day) DO UPDATE SET \
         requests = requests + 1, prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
         completion_tokens = completion_tokens + excluded.completion_tokens, \
         amount = coalesce(?5, amount)",
    )?
    .execute(params![
        &key.0[..],
        to_sql_int(day),
        to_sql_int(used.prompt_tokens),
        to_sql_int(used.completion_tokens),
        total
    ])?;
    Ok(())
}

impl KeyStore for SqliteStore {
    fn insert_key(
        &self,
        role: KeyRole,
        sha256: KeySha256,
        label: Option<String>,
        limits: KeyLimits,
        now: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO keys (key_sha256, role, label, created_at, requests_per_minute, \
                 tokens_per_day) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    &sha256.0[..],
                    role.as_str(),
                    label,
                    to_sql_int(now),
                    limits.requests_per_minute,
                    limits.tokens_per_day.map(to_sql_int)
                ],
            )?;
            Ok(())
        })
    }

    fn key_role(&self, sha256: KeySha256) -> BoxFuture<'_, Result<Option<KeyRole>, StoreError>> {
        self.read(move |conn| {
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

    fn key_grant(
        &self,
        sha256: KeySha256,
        day: u64,
    ) -> BoxFuture<'_, Result<Option<KeyGrant>, StoreError>> {
        self.read(move |conn| {
            // Once per gateway request a key is not remembered: from the statement cache.
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {KEY_COLUMNS} FROM keys k LEFT JOIN key_usage u \
                 ON u.key_sha256 = k.key_sha256 AND u.day = ?1 \
                 WHERE k.key_sha256 = ?2 AND k.revoked_at IS NULL"
            ))?;
            let mut rows = stmt.query(params![to_sql_int(day), &sha256.0[..]])?;
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            let k = key_entry(row)?;
            Ok(Some(KeyGrant {
                role: k.role,
                limits: k.limits,
                usage: k.usage,
            }))
        })
    }

    fn keys(&self, day: u64) -> BoxFuture<'_, Result<Vec<KeyEntry>, StoreError>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {KEY_COLUMNS} FROM keys k LEFT JOIN key_usage u \
                 ON u.key_sha256 = k.key_sha256 AND u.day = ?1 ORDER BY k.created_at, k.key_sha256"
            ))?;
            let mut rows = stmt.query(params![to_sql_int(day)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(key_entry(row)?);
            }
            Ok(out)
        })
    }

    fn key_usage(
        &self,
        sha256: KeySha256,
        from_day: u64,
        to_day: u64,
    ) -> BoxFuture<'_, Result<Vec<(u64, KeyUsage)>, StoreError>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(KEY_USAGE_DAYS)?;
            let mut rows = stmt.query(params![
                &sha256.0[..],
                to_sql_int(from_day),
                to_sql_int(to_day)
            ])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(day_usage(row)?);
            }
            Ok(out)
        })
    }

    fn revoke_key(&self, sha256: KeySha256, now: u64) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE key_sha256 = ?1",
                params![&sha256.0[..], to_sql_int(now)],
            )?;
            Ok(n > 0)
        })
    }

    fn set_key_limits(
        &self,
        sha256: KeySha256,
        limits: KeyLimits,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE keys SET requests_per_minute = ?2, tokens_per_day = ?3 \
                 WHERE key_sha256 = ?1",
                params![
                    &sha256.0[..],
                    limits.requests_per_minute,
                    limits.tokens_per_day.map(to_sql_int)
                ],
            )?;
            Ok(n > 0)
        })
    }
}
