//! `GET /api/tasks` on PostgreSQL: the same page as `SQLite`'s (status, highest reward first
//! by the zero-padded `reward_key`, then task id; the cursor a range on `tasks_listing`, not
//! an offset). The capabilities filter (required ⊆ given) is a `jsonb` anti-join.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::{int, pg_err};
use crate::orchestrator::store::rows::{self, TASK_COLUMNS, reward_key, to_json};
use crate::orchestrator::store::{StoreError, TaskFilter, TaskRow};

/// The page `f` asks for.
pub async fn list(client: &impl GenericClient, f: &TaskFilter) -> Result<Vec<TaskRow>, StoreError> {
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(f.status.as_str().to_owned())];
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE status = $1");
    let mut bind = |sql: &mut String, clause: &str, v: Box<dyn ToSql + Sync + Send>| {
        args.push(v);
        sql.push_str(&clause.replace('?', &format!("${}", args.len())));
    };
    if let Some(min) = f.min_reward {
        bind(&mut sql, " AND reward_key >= ?", Box::new(reward_key(min)));
    }
    if let Some(from) = f.deadline_from_ms {
        bind(&mut sql, " AND deadline_ms >= ?", Box::new(int(from)));
    }
    if let Some((reward, id)) = &f.after {
        let key = reward_key(*reward);
        bind(&mut sql, " AND reward_key <= ?", Box::new(key.clone()));
        bind(&mut sql, " AND (reward_key < ?", Box::new(key));
        bind(
            &mut sql,
            " OR task_id > ?)",
            Box::new(id.as_str().to_owned()),
        );
    }
    if let Some(caps) = &f.capabilities {
        bind(
            &mut sql,
            " AND (required_capabilities = '[]' OR NOT EXISTS (SELECT 1 FROM \
             jsonb_array_elements_text(tasks.required_capabilities::jsonb) AS r(v) WHERE r.v \
             NOT IN (SELECT g.v FROM jsonb_array_elements_text(?::text::jsonb) AS g(v))))",
            Box::new(to_json("capabilities", caps)?),
        );
    }
    if let Some(vram) = f.fits_vram_mib {
        bind(
            &mut sql,
            " AND (min_vram_mib IS NULL OR min_vram_mib <= ?)",
            Box::new(int(vram)),
        );
    }
    bind(
        &mut sql,
        " ORDER BY reward_key DESC, task_id ASC LIMIT ?",
        Box::new(i64::try_from(f.limit).unwrap_or(i64::MAX)),
    );
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
    client
        .query(&stmt, &params)
        .await
        .map_err(pg_err)?
        .iter()
        .map(rows::task)
        .collect()
}
