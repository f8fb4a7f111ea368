//! The store's one writer: a dedicated thread that owns the write connection and commits with
//! group commit. Every write is a closure sent to the thread; the thread takes all closures
//! waiting at that moment (up to [`MAX_BATCH`]), runs them one after another inside one
//! `BEGIN IMMEDIATE … COMMIT`, and answers each caller only once the shared `COMMIT` has
//! returned. With `synchronous=FULL` one commit is one fsync of the WAL, so N concurrent
//! writers cost one fsync instead of N.
//!
//! Soundness: the closures of a batch run serially, in arrival order, on one connection, so
//! each sees the writes of the ones before it exactly as if each had committed alone (the same
//! serial order a mutex would give). No caller is told `Ok` before the commit that makes its
//! write durable; if that commit fails, every closure of the batch gets the error (and the
//! whole batch is rolled back), so an acknowledged write always survives kill -9.
//!
//! A closure that fails leaves no trace and never fails another. Most closures may run again
//! ([`Task::new`]: `FnMut`, with no effect outside the database but what they return): a
//! batch of those runs bare, and if one fails (its error or a panic) the whole transaction is
//! rolled back and each closure is run again alone, in its own transaction. A batch holding a
//! closure that may run only once ([`Task::once`]) instead gives each closure a savepoint and
//! rolls a failed one back to it. Savepoints are not free (every page a closure touches is
//! first copied to the statement journal: 30-80 µs of the orchestrator's CPU per gateway job
//! at c=8, `bench gateway_overhead`), while failures are rare, so the common batch has none.
//! A closure alone in its batch needs no savepoint either: the transaction holds only its own
//! writes.
//!
//! Closures must not open transactions of their own (`BEGIN` fails inside the batch's): a
//! closure's writes are already atomic (its savepoint, or its batch's transaction, which is
//! rolled back as a whole when it fails), so they need no savepoint of their own;
//! `Connection::savepoint` still nests if one wants it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::orchestrator::store::StoreError;

/// Most closures committed together.
pub const MAX_BATCH: usize = 512;

/// A queued write, its type erased.
pub trait Job: Send {
    /// Runs the closure in the open transaction (in its own savepoint if `savepoint`) and
    /// keeps its result; returns what the batch must do next.
    fn run(&mut self, conn: &mut Connection, savepoint: bool) -> Next;
    /// Whether the closure may run again after its batch was rolled back.
    fn rerunnable(&self) -> bool;
    /// Answers the caller with the closure's last result, once the batch's outcome is known
    /// (`Err`: nothing of the batch was committed).
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

/// What a batch does after one of its closures ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Go on: the closure's writes (or, in its savepoint, their rollback) are in place.
    Continue,
    /// The closure failed outside a savepoint: roll the transaction back.
    RollBack,
    /// The connection is in an unknown state: roll back and fail every closure of the batch.
    Broken(String),
}

/// A closure and where to send its result.
pub struct Task<T, F> {
    f: F,
    rerunnable: bool,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Task<T, F>
where
    F: FnMut(&mut Connection) -> Result<T, StoreError>,
{
    /// A closure that may run again: it has no effect outside the database but its result.
    pub fn new(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        Self {
            f,
            rerunnable: true,
            result: None,
            reply,
        }
    }
}

/// Boxes a closure that may run only once as a [`Task`] whose `rerunnable` is false.
pub fn once<T, G>(
    g: G,
    reply: oneshot::Sender<Result<T, StoreError>>,
) -> Task<T, impl FnMut(&mut Connection) -> Result<T, StoreError>>
where
    G: FnOnce(&mut Connection) -> Result<T, StoreError>,
{
    let mut g = Some(g);
    Task {
        f: move |c: &mut Connection| match g.take() {
            Some(g) => g(c),
            // `rerunnable` is false: the writer never runs it twice.
            None => Err(StoreError::Backend(
                "a write that runs once ran twice".into(),
            )),
        },
        rerunnable: false,
        result: None,
        reply,
    }
}

const SAVEPOINT: &str = "SAVEPOINT basis_job";
const RELEASE: &str = "RELEASE basis_job";
const ROLLBACK_TO: &str = "ROLLBACK TO basis_job";

/// Runs one statement from the connection's statement cache: the batch's control statements
/// run for every write, so they are parsed once, not per write.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

impl<T, F> Job for Task<T, F>
where
    T: Send + 'static,
    F: FnMut(&mut Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &mut Connection, savepoint: bool) -> Next {
        if !savepoint {
            let result = guarded(&mut self.f, conn);
            let next = if result.is_ok() {
                Next::Continue
            } else {
                Next::RollBack
            };
            self.result = Some(result);
            return next;
        }
        if let Err(e) = exec(conn, SAVEPOINT) {
            let why = e.to_string();
            self.result = Some(Err(StoreError::Backend(why.clone())));
            return Next::Broken(why);
        }
        let result = guarded(&mut self.f, conn);
        let end = if result.is_ok() {
            exec(conn, RELEASE)
        } else {
            exec(conn, ROLLBACK_TO).and_then(|()| exec(conn, RELEASE))
        };
        self.result = Some(result);
        end.map_or_else(|e| Next::Broken(e.to_string()), |()| Next::Continue)
    }

    fn rerunnable(&self) -> bool {
        self.rerunnable
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let out = match (commit, self.result) {
            (Ok(()), Some(result)) | (Err(_), Some(result @ Err(_))) => result,
            (Err(why), Some(Ok(_))) => Err(StoreError::Backend(format!("commit failed: {why}"))),
            (Err(why), None) => Err(StoreError::Backend(why)),
            (Ok(()), None) => Err(StoreError::Backend("the write did not run".into())),
        };
        // The caller may have gone away; its write stands (or not) all the same.
        let _ = self.reply.send(out);
    }
}

/// Runs a closure, turning a panic into an error (the caller rolls its writes back).
fn guarded<T, F>(f: &mut F, conn: &mut Connection) -> Result<T, StoreError>
where
    F: FnMut(&mut Connection) -> Result<T, StoreError>,
{
    catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
        tracing::error!("a store write panicked; it was rolled back");
        Err(StoreError::Backend("a store operation panicked".into()))
    })
}

/// Starts the writer thread on `conn`; it stops when every sender is dropped.
pub fn spawn(conn: Connection) -> std::io::Result<mpsc::Sender<Box<dyn Job>>> {
    let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
    std::thread::Builder::new()
        .name("basis-sqlite-writer".into())
        .spawn(move || serve(conn, &rx))?;
    Ok(tx)
}

fn serve(mut conn: Connection, rx: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch);
    }
}

/// How a batch's transaction ended.
enum Ended {
    Committed,
    /// A closure failed outside a savepoint; the transaction was rolled back.
    RolledBack,
    /// Nothing of the batch is stored; every closure gets this error.
    Failed(String),
}

/// Runs `batch` in one transaction and answers every job after the commit; when a closure of
/// a bare batch fails, runs each again alone (see the module doc).
pub fn commit_batch(conn: &mut Connection, mut batch: Vec<Box<dyn Job>>) {
    let savepoints = batch.len() > 1 && !batch.iter().all(|j| j.rerunnable());
    let ended = together(conn, &mut batch, savepoints);
    match ended {
        Ended::Committed => {
            for job in batch {
                job.finish(Ok(()));
            }
        }
        Ended::RolledBack if batch.len() > 1 => {
            tracing::debug!(
                writes = batch.len(),
                "a write of a batch failed; running each alone"
            );
            for job in batch {
                commit_batch(conn, vec![job]);
            }
        }
        // The lone closure failed: its caller gets its own error.
        Ended::RolledBack => {
            for job in batch {
                job.finish(Err("the write failed and was rolled back".into()));
            }
        }
        Ended::Failed(why) => {
            tracing::error!(error = %why, writes = batch.len(), "a store commit failed");
            for job in batch {
                job.finish(Err(why.clone()));
            }
        }
    }
}

/// Runs `batch` in one transaction and commits it, or rolls it back.
fn together(conn: &mut Connection, batch: &mut [Box<dyn Job>], savepoints: bool) -> Ended {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        return Ended::Failed(format!("cannot begin a transaction: {e}"));
    }
    let mut ended = None;
    for job in batch.iter_mut() {
        match job.run(conn, savepoints) {
            Next::Continue => {}
            Next::RollBack => {
                ended = Some(Ended::RolledBack);
                break;
            }
            Next::Broken(why) => {
                ended = Some(Ended::Failed(format!(
                    "a write of the batch left the transaction broken: {why}"
                )));
                break;
            }
        }
    }
    let ended = match ended {
        Some(ended) => ended,
        None => match exec(conn, "COMMIT") {
            Ok(()) => return Ended::Committed,
            Err(e) => Ended::Failed(e.to_string()),
        },
    };
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    ended
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    type Reply<T> = oneshot::Receiver<Result<T, StoreError>>;

    fn job<T, F>(f: F) -> (Box<dyn Job>, Reply<T>)
    where
        T: Send + 'static,
        F: FnMut(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        (Box::new(Task::new(f, reply)), rx)
    }

    fn job_once<T, F>(f: F) -> (Box<dyn Job>, Reply<T>)
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        (Box::new(once(f, reply)), rx)
    }

    /// A fresh database with one table `t (v INTEGER PRIMARY KEY)`.
    fn table() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .unwrap();
        (dir, conn)
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// Inserts `v`, counting its runs in `runs`.
    fn insert(
        v: i64,
        runs: &Arc<AtomicUsize>,
    ) -> impl FnMut(&mut Connection) -> Result<(), StoreError> + Send + 'static {
        let runs = Arc::clone(runs);
        move |c: &mut Connection| {
            runs.fetch_add(1, Ordering::SeqCst);
            c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
            Ok(())
        }
    }

    #[test]
    fn a_failing_or_panicking_write_leaves_no_trace_and_the_others_commit() {
        let (_dir, mut conn) = table();
        let runs = Arc::new(AtomicUsize::new(0));
        let (a, ra) = job(insert(1, &runs));
        // Writes, then fails: the batch is rolled back and each write run again alone.
        let (b, rb) = job(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (v) VALUES (2)", [])?;
            Err(StoreError::Conflict)
        });
        let (p, rp) = job(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (v) VALUES (3)", [])?;
            panic!("boom");
        });
        // Sees the first job's write (serial order, alone or together).
        let (d, rd) = job(|c: &mut Connection| -> Result<i64, StoreError> {
            c.execute("INSERT INTO t (v) VALUES (4)", [])?;
            Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?)
        });
        commit_batch(&mut conn, vec![a, b, p, d]);
        assert!(ra.blocking_recv().unwrap().is_ok());
        assert!(matches!(
            rb.blocking_recv().unwrap(),
            Err(StoreError::Conflict)
        ));
        assert!(rp.blocking_recv().unwrap().is_err());
        assert_eq!(rd.blocking_recv().unwrap().unwrap(), 2);
        assert_eq!(count(&conn), 2);
        // Once in the batch, once alone.
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(conn.is_autocommit(), "the batch's transaction is closed");
    }

    #[test]
    fn a_batch_of_writes_that_may_run_again_has_no_savepoint_and_commits_once() {
        let (_dir, mut conn) = table();
        let runs = Arc::new(AtomicUsize::new(0));
        let (a, ra) = job(insert(1, &runs));
        // No savepoint is open (releasing one fails), and the transaction is the batch's.
        let (b, rb) = job(|c: &mut Connection| -> Result<i64, StoreError> {
            assert!(c.execute_batch("RELEASE basis_job").is_err());
            c.execute("INSERT INTO t (v) VALUES (2)", [])?;
            Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?)
        });
        commit_batch(&mut conn, vec![a, b]);
        assert!(ra.blocking_recv().unwrap().is_ok());
        assert_eq!(rb.blocking_recv().unwrap().unwrap(), 2);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(count(&conn), 2);
    }

    #[test]
    fn a_write_that_runs_once_gives_its_batch_savepoints_and_runs_once() {
        let (_dir, mut conn) = table();
        let runs = Arc::new(AtomicUsize::new(0));
        let (a, ra) = job(insert(1, &runs));
        let once_runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&once_runs);
        // Runs once, in a savepoint of its own; its failure is rolled back to it alone.
        let (b, rb) = job_once(move |c: &mut Connection| -> Result<(), StoreError> {
            counted.fetch_add(1, Ordering::SeqCst);
            assert!(
                c.execute_batch("RELEASE basis_job; SAVEPOINT basis_job")
                    .is_ok()
            );
            c.execute("INSERT INTO t (v) VALUES (2)", [])?;
            Err(StoreError::Conflict)
        });
        let (d, rd) = job(insert(3, &runs));
        commit_batch(&mut conn, vec![a, b, d]);
        assert!(ra.blocking_recv().unwrap().is_ok());
        assert!(matches!(
            rb.blocking_recv().unwrap(),
            Err(StoreError::Conflict)
        ));
        assert!(rd.blocking_recv().unwrap().is_ok());
        assert_eq!(once_runs.load(Ordering::SeqCst), 1);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(count(&conn), 2);
        assert!(conn.is_autocommit());
    }

    #[test]
    fn a_lone_write_runs_without_a_savepoint_and_a_failing_one_leaves_no_trace() {
        let (_dir, mut conn) = table();
        // Alone in its batch: no savepoint is open (releasing one fails).
        let (a, ra) = job_once(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (v) VALUES (1)", [])?;
            assert!(c.execute_batch("RELEASE basis_job").is_err());
            Ok(())
        });
        commit_batch(&mut conn, vec![a]);
        assert!(ra.blocking_recv().unwrap().is_ok());
        // Writes, then fails: the transaction is rolled back, the caller gets its own error.
        let (b, rb) = job(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (v) VALUES (2)", [])?;
            Err(StoreError::Conflict)
        });
        commit_batch(&mut conn, vec![b]);
        assert!(matches!(
            rb.blocking_recv().unwrap(),
            Err(StoreError::Conflict)
        ));
        let (p, rp) = job(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (v) VALUES (3)", [])?;
            panic!("boom");
        });
        commit_batch(&mut conn, vec![p]);
        assert!(rp.blocking_recv().unwrap().is_err());
        assert_eq!(count(&conn), 1);
        assert!(conn.is_autocommit(), "the transaction is closed");
        let runs = Arc::new(AtomicUsize::new(0));
        let (d, rd) = job(insert(4, &runs));
        commit_batch(&mut conn, vec![d]);
        assert!(rd.blocking_recv().unwrap().is_ok());
        assert_eq!(count(&conn), 2);
    }

    #[test]
    fn nobody_is_told_ok_when_the_commit_fails() {
        let (_dir, mut conn) = table();
        let runs = Arc::new(AtomicUsize::new(0));
        let (a, ra) = job(insert(1, &runs));
        // Ends the batch's transaction behind the writer's back: its COMMIT then fails.
        let (b, rb) = job(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute_batch("ROLLBACK")?;
            Ok(())
        });
        commit_batch(&mut conn, vec![a, b]);
        assert!(ra.blocking_recv().unwrap().is_err());
        assert!(rb.blocking_recv().unwrap().is_err());
        assert_eq!(count(&conn), 0);
        // A commit that failed is not run again.
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(conn.is_autocommit());
    }
}
