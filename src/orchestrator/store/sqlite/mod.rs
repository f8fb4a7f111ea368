//! [`SqliteStore`]: the embedded default store. One `SQLite` file in WAL mode, so an acknowledged
//! write survives kill -9; with [`Synchronous::Full`] (the default) every commit is also fsynced
//! before it is acknowledged, so it survives power loss too. Migrated on open through
//! `PRAGMA user_version`.
//!
//! One writer connection, owned by a dedicated thread that commits concurrent writes together
//! (group commit, see `writer.rs`), and one reader connection behind a mutex used from
//! `spawn_blocking`, so `SQLite` never blocks the async runtime and writes are serialised.

mod jobs;
mod keys;
mod migrations;
mod reputation;
mod settlement;
mod tasks;
mod tasks_list;
mod tasks_rows;
mod workers;
mod writer;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use rusqlite::{Connection, OpenFlags};

use super::{ReplicaRoute, ReplicaStore, Singleton, Store, StoreError};
use crate::domain::ReplicaId;

/// The database file's mode: it holds token and key hashes.
const DB_FILE_MODE: u32 = 0o600;

/// How far an acknowledged write is durable: the `SQLite` `synchronous` setting (in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit fsyncs the WAL before it is acknowledged: it survives kill -9, an OS crash
    /// and power loss.
    #[default]
    Full,
    /// Commits reach the OS before they are acknowledged and the WAL is fsynced at each
    /// checkpoint: it survives kill -9 of the orchestrator, but an OS crash or power loss may
    /// undo the last commits (never corrupting the file). Saves one fsync per commit.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// The `SQLite` store. Cheap to clone (shared connections).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: mpsc::Sender<Box<dyn writer::Job>>,
    reader: Mutex<Connection>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(err, _) = &e
            && matches!(
                err.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            )
        {
            return StoreError::Conflict;
        }
        StoreError::Backend(e.to_string())
    }
}

impl SqliteStore {
    /// Opens (creating it 0600, and its directory 0700, if needed) and migrates the database,
    /// with [`Synchronous::Full`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Synchronous::Full)
    }

    /// [`SqliteStore::open`] with the durability of commits chosen.
    pub fn open_with(path: &Path, synchronous: Synchronous) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::config::atomic::create_private_dir(dir).map_err(|e| open_err(e.to_string()))?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(DB_FILE_MODE)
            .open(path)
            .map_err(|e| open_err(e.to_string()))?;
        let mut writer = connect(path, false, synchronous).map_err(|e| open_err(e.to_string()))?;
        migrations::migrate(&mut writer, path)?;
        let reader = connect(path, true, synchronous).map_err(|e| open_err(e.to_string()))?;
        let writer = writer::spawn(writer).map_err(|e| open_err(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer,
                reader: Mutex::new(reader),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer thread, inside a transaction it may share with other writes
    /// (group commit); resolves once that transaction is committed. `f`'s writes are atomic
    /// (its batch is rolled back if it fails, and each closure run again alone), so it opens
    /// no transaction of its own, and it may run more than once: it must have no effect
    /// outside the database but its result (`writer`'s module doc).
    fn write<T, F>(&self, f: F) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnMut(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Box::new(writer::Task::new(f, reply)), answer)
    }

    /// [`Self::write`] for a closure that can run only once; a batch holding one gives
    /// each of its writes a savepoint instead of running them again.
    fn write_once<T, F>(&self, f: F) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Box::new(writer::once(f, reply)), answer)
    }

    fn send<T: Send + 'static>(
        &self,
        job: Box<dyn writer::Job>,
        answer: tokio::sync::oneshot::Receiver<Result<T, StoreError>>,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let sent = self.inner.writer.send(job).is_ok();
        async move {
            if !sent {
                return Err(StoreError::Backend("the store's writer has stopped".into()));
            }
            answer.await.unwrap_or_else(|_| {
                Err(StoreError::Backend(
                    "the store's writer dropped the operation".into(),
                ))
            })
        }
        .boxed()
    }

    /// Runs `f` on the reader connection on the blocking pool.
    fn read<T, F>(&self, f: F) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let conn = inner.reader.lock().unwrap_or_else(PoisonError::into_inner);
            f(&conn)
        })
    }
}

fn blocking<T, F>(f: F) -> BoxFuture<'static, Result<T, StoreError>>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .map(|joined| match joined {
            Ok(result) => result,
            Err(e) => Err(StoreError::Backend(format!("store task failed: {e}"))),
        })
        .boxed()
}

/// Opens one connection with the pragmas every connection needs.
fn connect(path: &Path, read_only: bool, sync: Synchronous) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    if !read_only {
        // WAL survives kill -9 once a commit returns; FULL fsyncs the WAL on every commit so it
        // survives power loss too (see `Synchronous`).
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    conn.pragma_update(None, "synchronous", sync.pragma())?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Store for SqliteStore {
    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
    }

    /// One orchestrator owns a `SQLite` file: it always holds every lease.
    fn hold_lease(&self, _job: Singleton) -> BoxFuture<'_, Result<bool, StoreError>> {
        futures::future::ready(Ok(true)).boxed()
    }
}

/// One orchestrator owns a `SQLite` file, so there is no other replica: nothing to announce
/// (config refuses `[replica]` on `SQLite`) and no route to another replica.
impl ReplicaStore for SqliteStore {
    fn announce_replica(
        &self,
        _id: ReplicaId,
        _internal_url: String,
        _now: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        futures::future::ready(Err(StoreError::Backend(
            "replicas need a shared PostgreSQL database (database_url); an SQLite file belongs \
             to one orchestrator"
                .into(),
        )))
        .boxed()
    }

    fn replica_routes(
        &self,
        _except: ReplicaId,
        _since: u64,
    ) -> BoxFuture<'_, Result<Vec<ReplicaRoute>, StoreError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }

    fn replicas(
        &self,
        _except: ReplicaId,
        _since: u64,
    ) -> BoxFuture<'_, Result<Vec<(ReplicaId, String)>, StoreError>> {
        futures::future::ready(Ok(Vec::new())).boxed()
    }
}

/// Seconds as an `SQLite` INTEGER (`i64`); values past `i64::MAX` are clamped (year 292 billion).
impl crate::orchestrator::store::rows::Columns for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.get(i)?)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(i)?)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.get(i)?)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(i)?)
    }

    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.get(i)?)
    }

    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(i)?)
    }
}

fn to_sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_contract;
