//! [`TaskStore`] for `SQLite`: posting, claiming (a compare-and-swap in one transaction),
//! releasing and submitting; evaluation, disputes and the sweeper are in `tasks_settle`, the
//! listing in `tasks_list`, the row mapping in `tasks_rows`. Every change re-reads the task in
//! its transaction and moves it only through `tasks_rows::apply`.

use futures::FutureExt;
use futures::future::BoxFuture;
use rusqlite::{Connection, OptionalExtension, params};

use super::tasks_rows::{
    self, apply, catch_up, last_claim_end, load_submission, load_task, open_claim, to_json,
};
use super::{SqliteStore, tasks_list, tasks_settle, to_sql_int};
use crate::domain::{SubmissionId, TaskEvent, TaskId, TaskStatus, WorkerId};
use crate::orchestrator::market::settle::SettlePolicy;
use crate::orchestrator::store::{
    ClaimArgs, Claimed, DisputeArgs, EvaluateArgs, NewSubmission, Refusal, ResolveArgs, StoreError,
    SubmissionRow, Submitted, SweepReport, TaskError, TaskFilter, TaskRow, TaskStore,
};
use crate::wire::Credit;

/// A change's result inside its transaction: refused, or done.
pub type Outcome<T> = Result<Result<T, Refusal>, StoreError>;

/// Flattens a store future's nested result into [`TaskError`].
fn flat<T: Send + 'static>(
    f: BoxFuture<'static, Outcome<T>>,
) -> BoxFuture<'static, Result<T, TaskError>> {
    f.map(|r| match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(refusal)) => Err(TaskError::Refused(refusal)),
        Err(e) => Err(TaskError::Store(e)),
    })
    .boxed()
}

/// A task this worker (not multi-task) already holds under a live lease, other than `task`.
fn other_active_claim(
    conn: &Connection,
    worker: &WorkerId,
    task: &TaskId,
    now_ms: u64,
) -> Result<Option<TaskId>, StoreError> {
    let id: Option<String> = conn
        .prepare_cached(
            "SELECT task_id FROM tasks WHERE claimed_by = ?1 AND status = 'claimed' \
             AND claim_expiry_ms > ?2 AND task_id <> ?3 LIMIT 1",
        )?
        .query_row(
            params![worker.as_str(), to_sql_int(now_ms), task.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    id.map(|s| {
        TaskId::parse(&s).map_err(|e| StoreError::Corrupt {
            what: "task id",
            reason: e.to_string(),
        })
    })
    .transpose()
}

fn claim(conn: &mut Connection, a: &ClaimArgs) -> Outcome<Claimed> {
    let tx = conn.savepoint()?;
    let Some(mut t) = load_task(&tx, &a.task_id)? else {
        return Ok(Err(Refusal::TaskNotFound));
    };
    catch_up(&tx, &mut t, a.now_ms)?;
    let outcome = decide_claim(&tx, &mut t, a)?;
    tx.commit()?;
    Ok(outcome)
}

fn decide_claim(conn: &Connection, t: &mut TaskRow, a: &ClaimArgs) -> Outcome<Claimed> {
    if t.status == TaskStatus::Claimed {
        if t.claimed_by.as_ref() == Some(&a.worker_id)
            && let Some(claim) = t.claim()
        {
            return Ok(Ok(Claimed { claim, new: false }));
        }
        return Ok(Err(Refusal::AlreadyClaimed));
    }
    if t.status != TaskStatus::Open {
        return Ok(Err(Refusal::TaskNotOpen(t.status)));
    }
    if !a.multi_task
        && let Some(other) = other_active_claim(conn, &a.worker_id, &t.task_id, a.now_ms)?
    {
        return Ok(Err(Refusal::ActiveClaimExists(other)));
    }
    let lease_ms = t.claim_ttl_s.saturating_mul(1000);
    // Set the holder first: `apply` writes the whole state once the move is allowed.
    let mut next = t.clone();
    next.claimed_by = Some(a.worker_id.clone());
    next.claimed_ms = Some(a.now_ms);
    next.claim_expiry_ms = Some(a.now_ms.saturating_add(lease_ms));
    if let Err(f) = apply(conn, &mut next, TaskEvent::Claim, a.now_ms)? {
        return Ok(Err(Refusal::TaskNotOpen(f.from)));
    }
    open_claim(conn, &next)?;
    *t = next;
    let claim = t.claim().ok_or_else(|| StoreError::Corrupt {
        what: "claim",
        reason: "a claimed task without its holder".into(),
    })?;
    Ok(Ok(Claimed { claim, new: true }))
}

fn release(
    conn: &mut Connection,
    task: &TaskId,
    worker: &WorkerId,
    now_ms: u64,
) -> Outcome<TaskRow> {
    let tx = conn.savepoint()?;
    let Some(mut t) = load_task(&tx, task)? else {
        return Ok(Err(Refusal::TaskNotFound));
    };
    catch_up(&tx, &mut t, now_ms)?;
    let outcome = if t.status == TaskStatus::Claimed && t.claimed_by.as_ref() == Some(worker) {
        match apply(&tx, &mut t, TaskEvent::Release, now_ms)? {
            Ok(()) => Ok(t),
            Err(_) => Err(Refusal::NotClaimHolder),
        }
    } else {
        Err(Refusal::NotClaimHolder)
    };
    tx.commit()?;
    Ok(outcome)
}

fn submit(conn: &mut Connection, s: &NewSubmission) -> Outcome<Submitted> {
    let tx = conn.savepoint()?;
    let Some(mut t) = load_task(&tx, &s.task_id)? else {
        return Ok(Err(Refusal::TaskNotFound));
    };
    // Already submitted: the same output again is the same submission.
    if let Some(existing) = &t.submission_id {
        let Some(sub) = load_submission(&tx, existing)? else {
            return Err(StoreError::Corrupt {
                what: "submission",
                reason: "a task names a submission that is not stored".into(),
            });
        };
        return Ok(if sub.worker_id != s.worker_id {
            Err(Refusal::NotClaimHolder)
        } else if sub.output_hash == s.output_hash {
            Ok(Submitted {
                submission: sub,
                new: false,
            })
        } else {
            Err(Refusal::AlreadySubmitted(sub.submission_id))
        });
    }
    let caught = catch_up(&tx, &mut t, s.now_ms)?;
    let holds = t.status == TaskStatus::Claimed && t.claimed_by.as_ref() == Some(&s.worker_id);
    if !holds {
        let expired = match caught {
            Some(TaskEvent::Deadline) => Some(true),
            Some(_) => Some(false),
            None => match last_claim_end(&tx, &s.task_id, &s.worker_id)?.as_deref() {
                Some("lapsed") => Some(false),
                Some("expired") => Some(true),
                _ => None,
            },
        };
        // The lapse (or expiry) just applied is kept.
        tx.commit()?;
        return Ok(Err(match expired {
            Some(deadline) => Refusal::ClaimExpired { deadline },
            None => Refusal::NotClaimHolder,
        }));
    }
    let claimed_ms = t.claimed_ms.unwrap_or(s.now_ms);
    t.submission_id = Some(s.submission_id.clone());
    if apply(&tx, &mut t, TaskEvent::Submit, s.now_ms)?.is_err() {
        return Ok(Err(Refusal::NotClaimHolder));
    }
    tx.prepare_cached(
        "INSERT INTO submissions (submission_id, task_id, worker_id, output, output_hash, usage, \
         duration_ms, claimed_ms, submitted_ms, evaluation_deadline_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        s.submission_id.as_str(),
        s.task_id.as_str(),
        s.worker_id.as_str(),
        s.output,
        s.output_hash.to_string(),
        s.usage.map(|u| to_json("usage", &u)).transpose()?,
        s.duration_ms.map(to_sql_int),
        to_sql_int(claimed_ms),
        to_sql_int(s.now_ms),
        to_sql_int(s.now_ms.saturating_add(s.evaluation_timeout_ms)),
    ])?;
    let submission = load_submission(&tx, &s.submission_id)?.ok_or_else(|| {
        StoreError::Backend("the submission just written cannot be read back".into())
    })?;
    tx.commit()?;
    Ok(Ok(Submitted {
        submission,
        new: true,
    }))
}

impl TaskStore for SqliteStore {
    fn insert_task(&self, task: TaskRow) -> BoxFuture<'_, Result<(), StoreError>> {
        self.write(move |conn| tasks_rows::insert_task(conn, &task))
    }

    fn task(&self, id: TaskId) -> BoxFuture<'_, Result<Option<TaskRow>, StoreError>> {
        self.read(move |conn| load_task(conn, &id))
    }

    fn list_tasks(&self, filter: TaskFilter) -> BoxFuture<'_, Result<Vec<TaskRow>, StoreError>> {
        self.read(move |conn| tasks_list::list(conn, &filter))
    }

    fn claim_task(&self, args: ClaimArgs) -> BoxFuture<'_, Result<Claimed, TaskError>> {
        flat(self.write(move |conn| claim(conn, &args)))
    }

    fn release_task(
        &self,
        task: TaskId,
        worker: WorkerId,
        now_ms: u64,
    ) -> BoxFuture<'_, Result<TaskRow, TaskError>> {
        flat(self.write(move |conn| release(conn, &task, &worker, now_ms)))
    }

    fn submit(&self, sub: NewSubmission) -> BoxFuture<'_, Result<Submitted, TaskError>> {
        flat(self.write(move |conn| submit(conn, &sub)))
    }

    fn submission(
        &self,
        id: SubmissionId,
    ) -> BoxFuture<'_, Result<Option<SubmissionRow>, StoreError>> {
        self.read(move |conn| load_submission(conn, &id))
    }

    fn evaluate(&self, args: EvaluateArgs) -> BoxFuture<'_, Result<SubmissionRow, TaskError>> {
        flat(self.write(move |conn| tasks_settle::evaluate(conn, &args)))
    }

    fn dispute(&self, args: DisputeArgs) -> BoxFuture<'_, Result<SubmissionRow, TaskError>> {
        flat(self.write(move |conn| tasks_settle::dispute(conn, &args)))
    }

    fn resolve(&self, args: ResolveArgs) -> BoxFuture<'_, Result<SubmissionRow, TaskError>> {
        flat(self.write(move |conn| tasks_settle::resolve(conn, &args)))
    }

    fn credits(
        &self,
        worker: WorkerId,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Credit>, StoreError>> {
        self.read(move |conn| tasks_rows::load_credits(conn, &worker, limit))
    }

    fn sweep(
        &self,
        now_ms: u64,
        policy: SettlePolicy,
        limit: usize,
    ) -> BoxFuture<'_, Result<SweepReport, StoreError>> {
        self.write(move |conn| tasks_settle::sweep(conn, now_ms, policy, limit))
    }
}
