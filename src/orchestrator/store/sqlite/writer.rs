//! The store's one writer: a dedicated thread that owns the write connection and commits with
//! group commit. Every write is a closure sent to the thread; the thread takes all closures
//! waiting at that moment (up to [`MAX_BATCH`]), runs them one after another inside one
//! `BEGIN IMMEDIATE … COMMIT`, each in its own savepoint, and answers each caller only once
//! the shared `COMMIT` has returned. With `synchronous=FULL` one commit is one fsync of the
//! WAL, so N concurrent writers cost one fsync instead of N.
//!
//! Soundness: the closures of a batch run serially, in arrival order, on one connection, so
//! each sees the writes of the ones before it exactly as if each had committed alone (the same
//! serial order a mutex would give). A closure that fails is rolled back to its savepoint and
//! leaves no trace; the others are unaffected. No caller is told `Ok` before the commit that
//! makes its write durable; if that commit fails, every closure of the batch gets the error (and
//! the whole batch is rolled back), so an acknowledged write always survives kill -9.
//!
//! A batch of one (the common case when writes do not overlap) needs no savepoint: a failing
//! closure rolls the whole transaction back, which holds only its own writes. Savepoints are
//! not free (every page a closure touches is first copied to the statement journal), so a
//! lone write skips them.
//!
//! Closures must not open transactions of their own (`BEGIN` fails inside the batch's): a
//! closure's writes are already atomic (its savepoint, or the transaction when alone), so they
//! need no savepoint of their own; `Connection::savepoint` still nests if one wants it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::orchestrator::store::StoreError;

/// Most closures committed together.
pub const MAX_BATCH: usize = 512;

/// A queued write, its type erased.
pub trait Job: Send {
    /// Runs the closure inside its own savepoint (or, `alone` in its batch, straight in the
    /// transaction); returns what to answer once the batch's outcome is known, and what the
    /// batch must do next.
    fn run(self: Box<Self>, conn: &mut Connection, alone: bool) -> (Box<dyn Pending>, Next);
    /// The batch could not even begin: answer the error without running.
    fn abort(self: Box<Self>, why: String);
}

/// What a batch does after one of its closures ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Go on: the closure's writes (or, if it failed, their rollback) are in place.
    Continue,
    /// The lone closure failed: roll the transaction back. Its caller gets its own error.
    RollBack,
    /// The connection is in an unknown state: roll back and fail every closure of the batch.
    Broken(String),
}

/// A closure that ran and waits for its batch's commit.
pub trait Pending: Send {
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

/// A closure and where to send its result.
pub struct Task<T, F> {
    pub f: F,
    pub reply: oneshot::Sender<Result<T, StoreError>>,
}

struct Ran<T> {
    result: Result<T, StoreError>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send> Pending for Ran<T> {
    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let out = match (commit, self.result) {
            (Ok(()), result) | (Err(_), result @ Err(_)) => result,
            (Err(why), Ok(_)) => Err(StoreError::Backend(format!("commit failed: {why}"))),
        };
        // The caller may have gone away; its write stands (or not) all the same.
        let _ = self.reply.send(out);
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
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Connection, alone: bool) -> (Box<dyn Pending>, Next) {
        let Task { f, reply } = *self;
        if alone {
            let result = guarded(f, conn);
            // A failed lone write rolls the transaction back: nothing else is in it.
            let next = if result.is_ok() {
                Next::Continue
            } else {
                Next::RollBack
            };
            return (Box::new(Ran { result, reply }), next);
        }
        if let Err(e) = exec(conn, SAVEPOINT) {
            let why = e.to_string();
            let ran = Ran {
                result: Err(StoreError::Backend(why.clone())),
                reply,
            };
            return (Box::new(ran), Next::Broken(why));
        }
        let result = guarded(f, conn);
        let end = if result.is_ok() {
            exec(conn, RELEASE)
        } else {
            exec(conn, ROLLBACK_TO).and_then(|()| exec(conn, RELEASE))
        };
        let next = end.map_or_else(|e| Next::Broken(e.to_string()), |()| Next::Continue);
        (Box::new(Ran { result, reply }), next)
    }

    fn abort(self: Box<Self>, why: String) {
        let _ = self.reply.send(Err(StoreError::Backend(why)));
    }
}

/// Runs a closure, turning a panic into an error (the caller rolls its writes back).
fn guarded<T, F>(f: F, conn: &mut Connection) -> Result<T, StoreError>
where
    F: FnOnce(&mut Connection) -> Result<T, StoreError>,
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

/// Runs `batch` in one transaction and answers every job after the commit.
pub fn commit_batch(conn: &mut Connection, batch: Vec<Box<dyn Job>>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let why = format!("cannot begin a transaction: {e}");
        for job in batch {
            job.abort(why.clone());
        }
        return;
    }
    let alone = batch.len() == 1;
    let mut pending = Vec::with_capacity(batch.len());
    let mut broken = None;
    let mut roll_back = false;
    for job in batch {
        if let Some(why) = &broken {
            job.abort(format!("an earlier write of the batch failed: {why}"));
            continue;
        }
        let (ran, next) = job.run(conn, alone);
        pending.push(ran);
        match next {
            Next::Continue => {}
            Next::RollBack => roll_back = true,
            Next::Broken(why) => broken = Some(why),
        }
    }
    let commit = match broken {
        Some(why) => Err(why),
        // The lone closure failed: its caller gets its own error, whatever the rollback says.
        None if roll_back => Err("the write failed and was rolled back".to_owned()),
        None => exec(conn, "COMMIT").map_err(|e| e.to_string()),
    };
    if commit.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if let Err(why) = &commit
        && !roll_back
    {
        tracing::error!(error = %why, writes = pending.len(), "a store commit failed");
    }
    for p in pending {
        p.finish(commit.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<T, F>(f: F) -> (Box<dyn Job>, oneshot::Receiver<Result<T, StoreError>>)
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        (Box::new(Task { f, reply }), rx)
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

    #[test]
    fn a_failing_or_panicking_write_leaves_no_trace_and_the_others_commit() {
        let (_dir, mut conn) = table();
        let insert = |v: i64| {
            move |c: &mut Connection| -> Result<(), StoreError> {
                c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                Ok(())
            }
        };
        let (a, ra) = job(insert(1));
        // Writes, then fails: rolled back to its savepoint.
        let (b, rb) = job(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (v) VALUES (2)", [])?;
            Err(StoreError::Conflict)
        });
        let (p, rp) = job(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (v) VALUES (3)", [])?;
            panic!("boom");
        });
        // Sees the first job's write (same transaction, serial order).
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
        assert!(conn.is_autocommit(), "the batch's transaction is closed");
    }

    #[test]
    fn a_lone_write_runs_without_a_savepoint_and_a_failing_one_leaves_no_trace() {
        let (_dir, mut conn) = table();
        // Alone in its batch: no savepoint is open (releasing one fails).
        let (a, ra) = job(|c: &mut Connection| -> Result<(), StoreError> {
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
        let (d, rd) = job(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (v) VALUES (4)", [])?;
            Ok(())
        });
        commit_batch(&mut conn, vec![d]);
        assert!(rd.blocking_recv().unwrap().is_ok());
        assert_eq!(count(&conn), 2);
    }

    #[test]
    fn nobody_is_told_ok_when_the_commit_fails() {
        let (_dir, mut conn) = table();
        let (a, ra) = job(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute("INSERT INTO t (v) VALUES (1)", [])?;
            Ok(())
        });
        // Ends the batch's transaction behind the writer's back: its COMMIT then fails.
        let (b, rb) = job(|c: &mut Connection| -> Result<(), StoreError> {
            c.execute_batch("RELEASE basis_job; ROLLBACK")?;
            Ok(())
        });
        commit_batch(&mut conn, vec![a, b]);
        assert!(ra.blocking_recv().unwrap().is_err());
        assert!(rb.blocking_recv().unwrap().is_err());
        assert_eq!(count(&conn), 0);
        assert!(conn.is_autocommit());
    }
}
