//! The `workers` table.

use futures::future::BoxFuture;
use rusqlite::{Connection, Row, params};

use super::{SqliteStore, from_sql_int, to_sql_int};
use crate::domain::{Amount, TokenSha256, WalletAddress, WorkerId};
use crate::orchestrator::store::{Presence, StoreError, WorkerRow, WorkerStore};
use crate::wire::{HardwareSummary, RegisterRequest};

const COLUMNS: &str = "worker_id, wallet, runtime, models, token_sha256, hardware, version, \
     multi_task, registered_at, updated_at, last_seen, connected_since, jobs_completed, \
     jobs_failed, rewards_pending";

/// The registration fields as SQL values.
struct RegParams {
    worker_id: String,
    wallet: String,
    runtime: &'static str,
    models: String,
    token: [u8; 32],
    hardware: Option<String>,
    version: String,
    multi_task: bool,
}

fn reg_params(reg: &RegisterRequest) -> Result<RegParams, StoreError> {
    let json = |what: &'static str, r: serde_json::Result<String>| {
        r.map_err(|e| StoreError::Corrupt {
            what,
            reason: e.to_string(),
        })
    };
    Ok(RegParams {
        worker_id: reg.worker_id.as_str().to_owned(),
        wallet: reg.wallet.checksummed(),
        runtime: reg.runtime.as_str(),
        models: json("models", serde_json::to_string(&reg.models))?,
        token: *reg.token_sha256.as_bytes(),
        hardware: reg
            .hardware
            .as_ref()
            .map(|h| json("hardware", serde_json::to_string(h)))
            .transpose()?,
        version: reg.version.clone(),
        multi_task: reg.multi_task,
    })
}

fn corrupt(what: &'static str) -> impl Fn(String) -> StoreError {
    move |reason| StoreError::Corrupt { what, reason }
}

fn row_to_worker(row: &Row<'_>) -> Result<WorkerRow, StoreError> {
    let text = |i: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(i)?) };
    let opt_int = |i: usize, what| -> Result<Option<u64>, StoreError> {
        row.get::<_, Option<i64>>(i)?
            .map(|v| from_sql_int(v, what))
            .transpose()
    };
    let int = |i: usize, what| -> Result<u64, StoreError> { from_sql_int(row.get(i)?, what) };
    let token: Vec<u8> = row.get(4)?;
    let token: [u8; 32] = token
        .try_into()
        .map_err(|_| corrupt("token hash")("not 32 bytes".into()))?;
    let hardware: Option<String> = row.get(5)?;
    Ok(WorkerRow {
        worker_id: WorkerId::parse(&text(0)?).map_err(|e| corrupt("worker id")(e.to_string()))?,
        wallet: WalletAddress::parse(&text(1)?).map_err(|e| corrupt("wallet")(e.to_string()))?,
        runtime: text(2)?
            .parse()
            .map_err(|_| corrupt("runtime")("unknown runtime".into()))?,
        models: serde_json::from_str(&text(3)?).map_err(|e| corrupt("models")(e.to_string()))?,
        token_sha256: TokenSha256::from_bytes(token),
        hardware: hardware
            .map(|h| serde_json::from_str::<HardwareSummary>(&h))
            .transpose()
            .map_err(|e| corrupt("hardware")(e.to_string()))?,
        version: text(6)?,
        multi_task: row.get(7)?,
        registered_at: int(8, "registered_at")?,
        updated_at: int(9, "updated_at")?,
        last_seen: opt_int(10, "last_seen")?,
        connected_since: opt_int(11, "connected_since")?,
        jobs_completed: int(12, "jobs_completed")?,
        jobs_failed: int(13, "jobs_failed")?,
        rewards_pending: Amount::parse(&text(14)?)
            .map_err(|e| corrupt("rewards_pending")(e.to_string()))?,
    })
}

fn select_one(conn: &Connection, id: &str) -> Result<Option<WorkerRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM workers WHERE worker_id = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![id])?;
    rows.next()?.map(row_to_worker).transpose()
}

impl WorkerStore for SqliteStore {
    fn insert_worker(
        &self,
        reg: RegisterRequest,
        now: u64,
    ) -> BoxFuture<'_, Result<WorkerRow, StoreError>> {
        self.write(move |conn| {
            let p = reg_params(&reg)?;
            let tx = conn.savepoint()?;
            tx.execute(
                "INSERT INTO workers (worker_id, wallet, runtime, models, token_sha256, hardware, \
                 version, multi_task, registered_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    p.worker_id,
                    p.wallet,
                    p.runtime,
                    p.models,
                    &p.token[..],
                    p.hardware,
                    p.version,
                    p.multi_task,
                    to_sql_int(now)
                ],
            )?;
            let row = select_one(&tx, &p.worker_id)?;
            tx.commit()?;
            row.ok_or_else(|| StoreError::Backend("inserted worker not found".into()))
        })
    }

    fn update_registration(
        &self,
        reg: RegisterRequest,
        expected: TokenSha256,
        now: u64,
    ) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>> {
        self.write(move |conn| {
            let p = reg_params(&reg)?;
            let tx = conn.savepoint()?;
            let changed = tx.execute(
                "UPDATE workers SET wallet = ?2, runtime = ?3, models = ?4, token_sha256 = ?5, \
                 hardware = ?6, version = ?7, multi_task = ?8, updated_at = ?9 \
                 WHERE worker_id = ?1 AND token_sha256 = ?10",
                params![
                    p.worker_id,
                    p.wallet,
                    p.runtime,
                    p.models,
                    &p.token[..],
                    p.hardware,
                    p.version,
                    p.multi_task,
                    to_sql_int(now),
                    &expected.as_bytes()[..]
                ],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            let row = select_one(&tx, &p.worker_id)?;
            tx.commit()?;
            Ok(row)
        })
    }

    fn worker(&self, id: WorkerId) -> BoxFuture<'_, Result<Option<WorkerRow>, StoreError>> {
        self.read(move |conn| select_one(conn, id.as_str()))
    }

    fn workers(
        &self,
        after: Option<WorkerId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<WorkerRow>, StoreError>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM workers WHERE worker_id > ?1 ORDER BY worker_id LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let after = after.as_ref().map_or("", WorkerId::as_str);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut rows = stmt.query(params![after, limit])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(row_to_worker(row)?);
            }
            Ok(out)
        })
    }

    fn workers_by_token(
        &self,
        token: TokenSha256,
    ) -> BoxFuture<'_, Result<Vec<WorkerRow>, StoreError>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM workers WHERE token_sha256 = ?1 ORDER BY worker_id LIMIT 16"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![&token.as_bytes()[..]])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(row_to_worker(row)?);
            }
            Ok(out)
        })
    }

    fn set_presence(
        &self,
        changes: Vec<(WorkerId, Presence)>,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            for (id, presence) in &changes {
                match *presence {
                    Presence::Connected(now) => tx.execute(
                        "UPDATE workers SET connected_since = ?2, last_seen = ?2 WHERE worker_id = ?1",
                        params![id.as_str(), to_sql_int(now)],
                    )?,
                    Presence::Disconnected { last_seen } => tx.execute(
                        "UPDATE workers SET connected_since = NULL, last_seen = ?2 WHERE worker_id = ?1",
                        params![id.as_str(), to_sql_int(last_seen)],
                    )?,
                };
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn touch_workers(&self, seen: Vec<(WorkerId, u64)>) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn| {
            let tx = conn.savepoint()?;
            {
                let mut stmt = tx.prepare_cached(
                    "UPDATE workers SET last_seen = ?2 WHERE worker_id = ?1 \
                     AND (last_seen IS NULL OR last_seen < ?2)",
                )?;
                for (id, at) in &seen {
                    stmt.execute(params![id.as_str(), to_sql_int(*at)])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }
}
