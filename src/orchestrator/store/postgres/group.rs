//! Group commit for the market's changes to one task on PostgreSQL
//! (`TaskStore::transact_grouped`): changes that arrive while others are being committed wait
//! in a queue, and a committer takes every waiting one (up to [`MAX_BATCH`]) into one
//! transaction. Its first round trip sends `BEGIN` and locks and reads every task row the
//! batch names, in task-id order (then locks the workers' rows it names, in id order); the
//! bodies then run one after another on those rows, their writes queued; the last round trip
//! sends the writes and `COMMIT`. Three claimers racing for one task thus cost two round trips
//! and one WAL flush, not nine and three; alone, a change costs what it did before.
//!
//! Soundness: the bodies of a batch run serially, in arrival order, in one transaction, each
//! seeing what those before it wrote, so each decides exactly as if it had run alone in that
//! order, and all commit or none. Rows named up front are locked in one global order, so two
//! batches (on this replica or another) never wait on each other in a circle for them. A body
//! that fails (its own error or the database's) fails its batch: the batch is rolled back and
//! each of its bodies is run again alone, so one change's failure is never another's; bodies
//! may run twice for this reason and have no effect outside the transaction. A failed
//! `COMMIT` fails every body of its batch, as it would fail a body alone; nothing is run
//! again, since the commit may have landed; nor is anything while the database is
//! unreachable (`Unavailable`: every body gets that answer at once, rather than each waiting
//! out the pool in turn). A committer answers each body only after its
//! batch's commit.

use std::sync::Arc;

use deadpool_postgres::Pool;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::batch::{Batcher, Runner};
use super::pooled;
use super::tasks::PgTx;
use crate::domain::WorkerId;
use crate::orchestrator::store::{GroupBody, GroupLocks, StoreError};

/// Most committers running at once in one process: one, so that every change that waits
/// while it works joins the next batch (`bench task_market` with three replicas on two
/// cores: one committer beat two by 10 to 20 % and four by 25 to 45 %). A batch waits only
/// on rows other transactions hold, and those hold them for database work alone, never for
/// a client or the network beyond the database.
const COMMITTERS: usize = 1;
/// Most changes in one batch.
const MAX_BATCH: usize = 64;

/// Grouped market changes, queued for their committers (clones share the queue).
#[derive(Clone)]
pub struct Group(Arc<Batcher<Committer>>);

/// Commits batches of changes, on connections from its pool.
pub struct Committer {
    pool: Pool,
}

/// A change waiting for its batch.
pub struct Job {
    locks: GroupLocks,
    body: GroupBody,
    answer: oneshot::Sender<Result<(), StoreError>>,
}

/// Why a batch did not commit.
struct Failed {
    error: StoreError,
    /// A body failed before `COMMIT` was sent: nothing of the batch is stored, and each of
    /// its bodies may be run again alone.
    rolled_back: bool,
}

impl Group {
    pub fn new(pool: Pool) -> Self {
        Self(Batcher::new(Committer { pool }, COMMITTERS, MAX_BATCH))
    }

    /// Runs `body` in the next batch and answers once that batch has committed.
    pub async fn transact(&self, locks: GroupLocks, body: GroupBody) -> Result<(), StoreError> {
        let (answer, answered) = oneshot::channel();
        self.0.push(Job {
            locks,
            body,
            answer,
        });
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "the market change was dropped before its batch committed".into(),
            ))
        })
    }
}

impl Runner for Committer {
    type Request = Job;
    fn run(&self, batch: Vec<Job>) -> BoxFuture<'_, ()> {
        self.commit(batch).boxed()
    }
}

impl Committer {
    /// Commits `batch` together, or, when one of its bodies failed, each of them alone.
    async fn commit(&self, mut batch: Vec<Job>) {
        if batch.len() > 1 {
            match self.together(&mut batch).await {
                Ok(()) => {
                    for job in batch {
                        // The asker may be gone (its request cancelled): nothing to tell.
                        let _ = job.answer.send(Ok(()));
                    }
                    return;
                }
                // A commit that may have landed is not run again; nor is anything while the
                // database is unreachable (each alone would wait out the pool in turn).
                Err(f) if !f.rolled_back || matches!(f.error, StoreError::Unavailable(_)) => {
                    for job in batch {
                        let _ = job.answer.send(Err(f.error.clone()));
                    }
                    return;
                }
                Err(_) => tracing::debug!(
                    changes = batch.len(),
                    "a grouped market change failed; running each alone"
                ),
            }
        }
        for mut job in batch {
            let result = self
                .together(std::slice::from_mut(&mut job))
                .await
                .map_err(|f| f.error);
            let _ = job.answer.send(result);
        }
    }

    /// Runs `jobs` in one transaction and commits it (see the module doc).
    async fn together(&self, jobs: &mut [Job]) -> Result<(), Failed> {
        let before_commit = |error| Failed {
            error,
            rolled_back: true,
        };
        let mut tx = PgTx::new(pooled(&self.pool).await.map_err(before_commit)?);
        let mut tasks: Vec<&str> = jobs.iter().map(|j| j.locks.task.as_str()).collect();
        tasks.sort_unstable();
        tasks.dedup();
        let mut workers: Vec<String> = jobs
            .iter()
            .filter_map(|j| j.locks.worker.as_ref().map(WorkerId::as_str))
            .map(str::to_owned)
            .collect();
        workers.sort_unstable();
        workers.dedup();
        tx.lock_up_front(tasks, workers)
            .await
            .map_err(before_commit)?;
        for job in jobs.iter_mut() {
            // An `Err` drops the transaction unfinished: it is rolled back.
            (job.body)(&mut tx).await.map_err(before_commit)?;
        }
        if !tx.wrote {
            // Only reads (refused claims, say): rolled back, no WAL flush to wait for.
            return Ok(());
        }
        tx.tx.commit().await.map_err(|error| Failed {
            error,
            rolled_back: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::domain::{TaskId, TaskStatus};
    use crate::orchestrator::store::contract::tasks::task;
    use crate::orchestrator::store::postgres::PgStore;
    use crate::orchestrator::store::postgres::testdb::TestDb;
    use crate::orchestrator::store::{MarketTx, TaskStore};

    /// A body that marks `id` expired (counting its runs), then fails if `fail`.
    fn expire(id: &TaskId, runs: &Arc<AtomicUsize>, fail: bool) -> GroupBody {
        let (id, runs) = (id.clone(), Arc::clone(runs));
        Box::new(move |tx: &mut dyn MarketTx| {
            let (id, runs) = (id.clone(), Arc::clone(&runs));
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let mut t = tx.task(&id).await?.expect("posted");
                t.status = TaskStatus::Expired;
                tx.write_task_state(&t, 1).await?;
                // Read back from this transaction's rows: what it wrote.
                assert_eq!(
                    tx.task(&id).await?.map(|t| t.status),
                    Some(TaskStatus::Expired)
                );
                if fail {
                    return Err(StoreError::Backend("this change fails".into()));
                }
                Ok(())
            }
            .boxed()
        })
    }

    fn locks(id: &TaskId) -> GroupLocks {
        GroupLocks {
            task: id.clone(),
            worker: None,
        }
    }

    /// Four open tasks, and a group of one committer.
    async fn setup(db: &TestDb) -> (PgStore, Vec<TaskId>, Group) {
        let store = PgStore::connect(&db.url, 4).await.unwrap();
        let ids: Vec<TaskId> = futures::future::join_all((0..4).map(|_| async {
            let t = task(10, &[]);
            store.insert_task(t.clone()).await.unwrap();
            t.task_id
        }))
        .await;
        let group = Group(Batcher::new(
            Committer {
                pool: store.pool.clone(),
            },
            1,
            MAX_BATCH,
        ));
        (store, ids, group)
    }

    /// Holds the one committer busy with a change on `id` until the sender is used, so that
    /// what is queued meanwhile runs as one batch after it.
    async fn hold(
        group: &Group,
        id: &TaskId,
    ) -> (
        tokio::task::JoinHandle<Result<(), StoreError>>,
        oneshot::Sender<()>,
    ) {
        let (started, running) = oneshot::channel::<()>();
        let (release, gate) = oneshot::channel::<()>();
        let mut first = Some((started, gate));
        let holder: GroupBody = Box::new(move |_tx: &mut dyn MarketTx| {
            let held = first.take();
            async move {
                if let Some((started, gate)) = held {
                    let _ = started.send(());
                    let _ = gate.await;
                }
                Ok(())
            }
            .boxed()
        });
        let busy = {
            let (group, first_locks) = (group.clone(), locks(id));
            tokio::spawn(async move { group.transact(first_locks, holder).await })
        };
        running.await.unwrap();
        (busy, release)
    }

    /// Queues the changes `(task index, fails)` behind a busy committer.
    fn queue(
        group: &Group,
        ids: &[TaskId],
        runs: &[Arc<AtomicUsize>],
        changes: [(usize, bool); 3],
    ) -> [tokio::task::JoinHandle<Result<(), StoreError>>; 3] {
        changes.map(|(i, fail)| {
            let (group, body, task_locks) = (
                group.clone(),
                expire(&ids[i], &runs[i], fail),
                locks(&ids[i]),
            );
            tokio::spawn(async move { group.transact(task_locks, body).await })
        })
    }

    #[tokio::test]
    async fn changes_that_wait_commit_together_and_a_failing_one_fails_alone() {
        let db = TestDb::create().await;
        let (store, ids, group) = setup(&db).await;
        let (busy, release) = hold(&group, &ids[3]).await;
        let runs: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::default()).collect();
        let queued = queue(&group, &ids, &runs, [(0, false), (1, true), (2, false)]);
        // Let all three reach the queue before the committer is free again.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        let [a, b, c] = queued;
        a.await.unwrap().unwrap();
        let err = b.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("this change fails"), "{err}");
        c.await.unwrap().unwrap();
        // The batch ran the first two bodies and stopped at the failure; then each ran alone.
        let runs: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert_eq!(runs, [2, 2, 1]);
        let status = |i: usize| {
            let store = store.clone();
            let id = ids[i].clone();
            async move { store.task(id).await.unwrap().unwrap().status }
        };
        assert_eq!(status(0).await, TaskStatus::Expired);
        assert_eq!(
            status(1).await,
            TaskStatus::Open,
            "the failed change is not kept"
        );
        assert_eq!(status(2).await, TaskStatus::Expired);
        assert_eq!(status(3).await, TaskStatus::Open);
    }

    #[tokio::test]
    async fn with_the_database_unreachable_every_change_of_a_batch_is_unavailable_and_none_runs() {
        let db = TestDb::create().await;
        let (_store, ids, group) = setup(&db).await;
        let (busy, release) = hold(&group, &ids[3]).await;
        let runs: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::default()).collect();
        let queued = queue(&group, &ids, &runs, [(0, false), (1, false), (2, false)]);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        db.accept_connections(false).await;
        release.send(()).unwrap();
        // The holder sent nothing (it wrote nothing), so the cut did not reach it.
        busy.await.unwrap().unwrap();
        for q in queued {
            let err = q.await.unwrap().unwrap_err();
            assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        }
        let runs: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        assert_eq!(runs, [0, 0, 0]);
        db.accept_connections(true).await;
    }
}
