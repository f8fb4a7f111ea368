//! `GET /api/tasks` in SQL: one indexed walk of `tasks_listing (status, reward_key DESC,
//! task_id, deadline_ms, required_capabilities)` in page order, with every filter in the
//! `WHERE` clause and evaluated on the index entry (the table row is read only for the rows
//! returned), so a page costs the entries it skips, not the table. The capabilities filter
//! (required ⊆ given) is a `json_each` anti-join; the cursor is a range on the index
//! (`reward_key <= ?`), not an offset.

use rusqlite::Connection;
use rusqlite::types::Value;

use super::tasks_rows::row_to_task;
use super::to_sql_int;
use crate::orchestrator::store::rows::{TASK_COLUMNS, reward_key};
use crate::orchestrator::store::{StoreError, TaskFilter, TaskRow};

/// The page `filter` asks for.
pub fn list(conn: &Connection, f: &TaskFilter) -> Result<Vec<TaskRow>, StoreError> {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE status = ?1");
    let mut args: Vec<Value> = vec![Value::Text(f.status.as_str().to_owned())];
    let mut bind = |sql: &mut String, clause: &str, v: Value| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(min) = f.min_reward {
        bind(
            &mut sql,
            " AND reward_key >= ?",
            Value::Text(reward_key(min)),
        );
    }
    if let Some(from) = f.deadline_from_ms {
        bind(
            &mut sql,
            " AND deadline_ms >= ?",
            Value::Integer(to_sql_int(from)),
        );
    }
    if let Some((reward, id)) = &f.after {
        let key = reward_key(*reward);
        // (reward_key, task_id) after the cursor in (DESC, ASC) order; the first term is a
        // range the index can seek to.
        bind(&mut sql, " AND reward_key <= ?", Value::Text(key.clone()));
        bind(&mut sql, " AND (reward_key < ?", Value::Text(key));
        bind(
            &mut sql,
            " OR task_id > ?)",
            Value::Text(id.as_str().to_owned()),
        );
    }
    if let Some(caps) = &f.capabilities {
        let given = serde_json::to_string(caps).map_err(|e| StoreError::Corrupt {
            what: "capabilities",
            reason: e.to_string(),
        })?;
        bind(
            &mut sql,
            " AND (required_capabilities = '[]' OR NOT EXISTS (SELECT 1 FROM \
             json_each(tasks.required_capabilities) AS r WHERE r.value NOT IN \
             (SELECT g.value FROM json_each(?) AS g)))",
            Value::Text(given),
        );
    }
    if let Some(vram) = f.fits_vram_mib {
        bind(
            &mut sql,
            " AND (min_vram_mib IS NULL OR min_vram_mib <= ?)",
            Value::Integer(to_sql_int(vram)),
        );
    }
    bind(
        &mut sql,
        " ORDER BY reward_key DESC, task_id ASC LIMIT ?",
        Value::Integer(i64::try_from(f.limit).unwrap_or(i64::MAX)),
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    let mut out = Vec::with_capacity(f.limit);
    while let Some(row) = rows.next()? {
        out.push(row_to_task(row)?);
    }
    Ok(out)
}
