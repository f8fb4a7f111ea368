//! The task market's task routes (docs/TASK_MARKET.md, "Who may do what"): `POST /api/tasks`
//! (client key), `GET /api/tasks` (filtered, highest reward first, cursor), `GET /api/tasks/{id}`,
//! and the worker's `claim` and `release` (worker token).

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::{Amount, TaskId, TaskStatus};
use crate::orchestrator::auth;
use crate::orchestrator::client_ip::ClientIp;
use crate::orchestrator::error::ApiError;
use crate::orchestrator::extract::ApiJson;
use crate::orchestrator::gateway;
use crate::orchestrator::market::engine::{self, ClaimArgs, TaskError};
use crate::orchestrator::market::problems::{invalid, task_not_found, worker_not_found};
use crate::orchestrator::market::validate;
use crate::orchestrator::signed::WorkerRequest;
use crate::orchestrator::state::{AppState, unix_now_ms};
use crate::orchestrator::store::{KeySha256, TaskFilter};
use crate::wire::{
    Claim, ClaimRequest, PostTaskRequest, TASKS_PAGE_DEFAULT, TASKS_PAGE_MAX, Task, TaskList,
    TaskQuery, task_path,
};

/// A task id from the path: 400 `INVALID_ARGUMENT` when malformed.
pub fn task_id(path: Result<Path<String>, PathRejection>) -> Result<TaskId, ApiError> {
    let bad = || {
        invalid(
            "a task id is task- followed by 32 lowercase hex characters",
            "Use a task_id as fetch_tasks (`basis tasks`) lists it.",
        )
    };
    let Path(id) = path.map_err(|_| bad())?;
    TaskId::parse(&id).map_err(|_| bad())
}

/// Who posts: `key:` + the first 8 hex of the client key's sha256, or `open`.
fn client_label(state: &AppState, headers: &HeaderMap) -> String {
    match (state.config.open, auth::bearer(headers)) {
        (false, Some(key)) => {
            let hash = KeySha256::of(key).to_string();
            format!("key:{}", hash.get(2..10).unwrap_or_default())
        }
        _ => "open".to_owned(),
    }
}

pub async fn post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<PostTaskRequest>,
) -> Result<Response, ApiError> {
    validate::guard_post(&req)?;
    gateway::authorize(&state, &headers, ip).await?;
    let row = validate::new_task(
        req,
        client_label(&state, &headers),
        auth::bearer(&headers).map(KeySha256::of),
        &state.config.asset,
        unix_now_ms(),
    )?;
    if let (Some(family), Some(metric)) = (&row.family, &row.metric)
        && let Some(held) = state.store.family_metric(family.clone()).await?
        && &held != metric
    {
        return Err(ApiError::bad_request(
            crate::domain::ErrorCode::InvalidArgument,
            format!(
                "the tasks of family {family} measure {} ({}); this one says {} ({})",
                held.name,
                goal(held.goal),
                metric.name,
                goal(metric.goal)
            ),
        )
        .with_fix("Use the family's metric and goal, or another family name."));
    }
    state.store.insert_task(row.clone()).await?;
    state.metrics.task_posted();
    tracing::info!(task_id = %row.task_id, client = %row.client, "task posted");
    let mut response = (
        StatusCode::CREATED,
        Json(row.to_wire(&state.config.asset_units())),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&task_path(&row.task_id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// A task as anyone may see it (no output: that is the submission's, behind a credential).
pub async fn get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Task>, ApiError> {
    let id = task_id(path)?;
    match state.store.task(id).await? {
        Some(row) => Ok(Json(row.to_wire(&state.config.asset_units()))),
        None => Err(task_not_found()),
    }
}

const CURSOR_FIX: &str = "Pass back next_cursor exactly as a previous page returned it.";

fn encode_cursor(reward: Amount, id: &TaskId) -> String {
    URL_SAFE_NO_PAD.encode(format!("{reward}:{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(Amount, TaskId), ApiError> {
    let bad = || invalid("the cursor is not one this orchestrator issued", CURSOR_FIX);
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (reward, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((
        Amount::parse(reward).map_err(|_| bad())?,
        TaskId::parse(id).map_err(|_| bad())?,
    ))
}

/// The query as the store's filter.
fn filter(q: TaskQuery, now_ms: u64) -> Result<TaskFilter, ApiError> {
    let limit = q.limit.unwrap_or(TASKS_PAGE_DEFAULT);
    if !(1..=TASKS_PAGE_MAX).contains(&limit) {
        return Err(invalid(
            format!("limit must be between 1 and {TASKS_PAGE_MAX}"),
            "Ask for at most 50 tasks a page; follow next_cursor for more.",
        ));
    }
    let status = q.status.unwrap_or(TaskStatus::Open);
    let capabilities = q.capabilities.map(|c| {
        c.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    // Open tasks past their deadline (not yet swept) are never offered.
    let deadline_from_ms = match q.deadline_buffer_s {
        Some(buffer) => Some(now_ms.saturating_add(buffer.saturating_mul(1000))),
        None => (status == TaskStatus::Open).then_some(now_ms.saturating_add(1)),
    };
    Ok(TaskFilter {
        status,
        capabilities,
        fits_vram_mib: None,
        min_reward: q.min_reward,
        deadline_from_ms,
        after: q.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
    })
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<TaskQuery>, QueryRejection>,
) -> Result<Json<TaskList>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::bad_query(
            &e,
            "Use ?status=&capabilities=a,b&fits=WORKER_ID&min_reward=&deadline_buffer_s=&cursor=\
             &limit= (all optional).",
        )
    })?;
    let fits = q.fits.clone();
    if fits.is_some() && q.capabilities.is_some() {
        return Err(invalid(
            "fits and capabilities cannot be combined",
            "Use ?fits=WORKER_ID for what that worker can claim, or ?capabilities=a,b.",
        ));
    }
    let mut f = filter(q, unix_now_ms())?;
    if let Some(id) = fits {
        // What that worker registered: the same check a claim makes.
        let row = state
            .store
            .worker(id.clone())
            .await?
            .ok_or_else(|| worker_not_found(&id))?;
        let caps = row.capabilities();
        f.capabilities = Some(caps.tags);
        f.fits_vram_mib = Some(caps.vram_mib.unwrap_or(0));
    }
    let limit = f.limit;
    f.limit = limit + 1;
    let mut rows = state.store.list_tasks(f).await?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| encode_cursor(r.reward, &r.task_id))
    } else {
        None
    };
    let units = state.config.asset_units();
    Ok(Json(TaskList {
        tasks: rows.iter().map(|r| r.to_wire(&units)).collect(),
        next_cursor,
    }))
}

pub async fn claim(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: WorkerRequest,
    path: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<Json<Claim>, ApiError> {
    let id = task_id(path)?;
    let worker = auth::market_worker(&state, &request, ip, &req.worker_id).await?;
    let result = engine::claim(
        &*state.store,
        ClaimArgs {
            task_id: id,
            worker_id: req.worker_id,
            multi_task: worker.multi_task,
            capabilities: worker.capabilities(),
            now_ms: unix_now_ms(),
        },
    )
    .await;
    match result {
        Ok(c) => {
            state
                .metrics
                .task_claim(if c.new { "claimed" } else { "held" });
            if c.new {
                tracing::debug!(task_id = %c.claim.task_id, worker_id = %c.claim.worker_id, "task claimed");
            }
            Ok(Json(c.claim))
        }
        Err(e) => {
            if matches!(e, TaskError::Refused(_)) {
                state.metrics.task_claim("refused");
            }
            Err(e.into())
        }
    }
}

pub async fn release(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: WorkerRequest,
    path: Result<Path<String>, PathRejection>,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<Json<Task>, ApiError> {
    let id = task_id(path)?;
    auth::market_worker(&state, &request, ip, &req.worker_id).await?;
    let row = engine::release(&*state.store, id, req.worker_id, unix_now_ms()).await?;
    tracing::debug!(task_id = %row.task_id, status = %row.status, "claim released");
    Ok(Json(row.to_wire(&state.config.asset_units())))
}

fn goal(g: crate::domain::MetricGoal) -> &'static str {
    match g {
        crate::domain::MetricGoal::Minimize => "lower is better",
        crate::domain::MetricGoal::Maximize => "higher is better",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let id = TaskId::generate();
        let c = encode_cursor(Amount::from_atomic(12_345), &id);
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (Amount::from_atomic(12_345), id)
        );
        for bad in ["", "!!", "bm90LWEtY3Vyc29y"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_filter_bounds_the_limit_and_hides_past_deadlines() {
        let f = filter(TaskQuery::default(), 5_000).unwrap();
        assert_eq!((f.limit, f.status), (TASKS_PAGE_DEFAULT, TaskStatus::Open));
        assert_eq!(f.deadline_from_ms, Some(5_001));
        let q = TaskQuery {
            limit: Some(51),
            ..TaskQuery::default()
        };
        assert!(filter(q, 0).is_err());
        let q = TaskQuery {
            capabilities: Some(" a, b,,".into()),
            deadline_buffer_s: Some(60),
            ..TaskQuery::default()
        };
        let f = filter(q, 1_000).unwrap();
        assert_eq!(f.capabilities.unwrap(), ["a", "b"]);
        assert_eq!(f.deadline_from_ms, Some(61_000));
    }
}
