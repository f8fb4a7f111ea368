//! [`Pipelined`]: a transaction on one pooled connection whose statements travel together.
//! `BEGIN` goes out with the first read, and writes wait in a queue until the next read or
//! `COMMIT` takes them along, so a claim is two round trips (`BEGIN` + the task read, then
//! the writes + `COMMIT`) instead of five. `tokio-postgres` sends requests in the order they
//! are first polled and the server answers in that order; every statement is prepared
//! before anything is sent, so the order sent is the order written.
//!
//! Rows for a set-based write ([`Bulk`], by [`Pipelined::queue_row`]) gather until any other
//! statement is queued or sent, and then go as one statement ahead of it.
//!
//! What is kept from a plain transaction: statements run in the order the caller issued
//! them; a read sees every write queued before it; a write's error fails the next read or
//! the commit (after a failed statement the server refuses the rest of the transaction, and
//! answers `COMMIT` by rolling back). A transaction dropped unfinished (an error, or its
//! request cancelled) is rolled back before its connection goes back to the pool; one that
//! cannot be rolled back leaves the pool with its connection.

use deadpool_postgres::Object;
use futures::FutureExt as _;
use futures::future::{BoxFuture, join_all};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::bulk::{Bulk, Value};
use super::pg_err;
use crate::orchestrator::store::StoreError;

/// An owned statement parameter, for a write that is sent later.
pub type Param = Box<dyn ToSql + Sync + Send>;

/// Owned parameters for [`Pipelined::queue`]: `params![a, b]` boxes each value.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as $crate::orchestrator::store::postgres::pipeline::Param),*]
    };
}
pub(super) use params;

/// One write statement with owned parameters, for [`Pipelined::push`].
pub struct Write {
    sql: &'static str,
    params: Vec<Param>,
}

impl Write {
    pub fn new(sql: &'static str, params: Vec<Param>) -> Self {
        Self { sql, params }
    }
}

/// One transaction; see the module doc.
pub struct Pipelined {
    /// `None` once the transaction is finished and its connection handed back.
    client: Option<Object>,
    /// `BEGIN` has been sent (or is about to be): a drop must roll back.
    begun: bool,
    queued: Vec<Write>,
    /// Rows gathering for their set-based writes, sent after `queued`.
    bulks: Vec<Bulk>,
}

impl Pipelined {
    pub fn new(client: Object) -> Self {
        Self {
            client: Some(client),
            begun: false,
            queued: Vec::new(),
            bulks: Vec::new(),
        }
    }

    fn client(&self) -> Result<&Object, StoreError> {
        self.client
            .as_ref()
            .ok_or_else(|| StoreError::Backend("a finished transaction was used".into()))
    }

    /// Queues a write; it is sent with the next read or the commit.
    pub fn queue(&mut self, sql: &'static str, params: Vec<Param>) {
        self.push(Write::new(sql, params));
    }

    /// Queues a prepared [`Write`].
    pub fn push(&mut self, write: Write) {
        self.settle_rows();
        self.queued.push(write);
    }

    /// Adds a row to the set-based write `sql` (see [`Bulk`]): rows queued with no plain
    /// statement between them go as one statement per `sql`, in the order each `sql` first
    /// got a row, so no such row may depend on another's effect (the market's task states
    /// and claims-history rows do not). `key` names the row for an `UPDATE`: a later row with
    /// the same key replaces it.
    pub fn queue_row(
        &mut self,
        sql: &'static str,
        key: Option<String>,
        row: Vec<Value>,
    ) -> Result<(), StoreError> {
        let at = self
            .bulks
            .iter()
            .position(|b| b.sql() == sql)
            .unwrap_or_else(|| {
                self.bulks.push(Bulk::new(sql));
                self.bulks.len() - 1
            });
        self.bulks[at].push(key, row)
    }

    /// Turns the gathered rows into their statements, after everything queued before.
    fn settle_rows(&mut self) {
        for bulk in self.bulks.drain(..) {
            let (sql, params) = bulk.into_statement();
            self.queued.push(Write::new(sql, params));
        }
    }

    /// Sends `BEGIN` if not yet sent, every queued write, then `last` (a read, or `COMMIT`),
    /// together; returns `last`'s rows. The first error in sending order wins.
    async fn send(&mut self, last: Last<'_>) -> Result<Vec<Row>, StoreError> {
        self.settle_rows();
        let begin = !self.begun;
        self.begun = true;
        let queued = std::mem::take(&mut self.queued);
        let client = self.client()?;
        // Prepared first (from the connection's cache after its first use), so that nothing
        // is sent out of order while a statement is being prepared.
        let mut prepared = Vec::with_capacity(queued.len());
        for q in &queued {
            prepared.push(client.prepare_cached(q.sql).await.map_err(pg_err)?);
        }
        let last_stmt = match &last {
            Last::Query(sql, _) => Some(client.prepare_cached(sql).await.map_err(pg_err)?),
            Last::Commit | Last::Nothing => None,
        };
        let mut ahead: Vec<BoxFuture<'_, Result<(), tokio_postgres::Error>>> =
            Vec::with_capacity(queued.len() + 1);
        if begin {
            ahead.push(client.batch_execute("BEGIN").boxed());
        }
        for (q, stmt) in queued.iter().zip(&prepared) {
            let params: Vec<&(dyn ToSql + Sync)> = q
                .params
                .iter()
                .map(|p| &**p as &(dyn ToSql + Sync))
                .collect();
            ahead.push(async move { client.execute(stmt, &params).await.map(drop) }.boxed());
        }
        let tail = async {
            match (&last, &last_stmt) {
                (Last::Query(_, params), Some(stmt)) => client.query(stmt, params).await,
                (Last::Commit, _) => client.batch_execute("COMMIT").await.map(|()| Vec::new()),
                _ => Ok(Vec::new()),
            }
        };
        // `join` polls the first future first, and `join_all` its futures in order: each
        // request is sent on its first poll, so they leave in this order.
        let (ahead, rows) = futures::join!(join_all(ahead), tail);
        for r in ahead {
            r.map_err(pg_err)?;
        }
        rows.map_err(pg_err)
    }

    /// Runs a read (after everything queued), in the transaction.
    pub async fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.send(Last::Query(sql, params)).await
    }

    /// The first row of a read, if any.
    pub async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Sends what is queued and returns the connection for statements of its own (inside
    /// the transaction, after every queued write).
    pub async fn flushed(&mut self) -> Result<&Object, StoreError> {
        if !self.queued.is_empty() || !self.bulks.is_empty() || !self.begun {
            self.send(Last::Nothing).await?;
        }
        self.client()
    }

    /// Sends what is queued with `COMMIT`. A transaction that never began commits nothing.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        if !self.begun && self.queued.is_empty() && self.bulks.is_empty() {
            return Ok(());
        }
        self.send(Last::Commit).await?;
        // Committed: the connection goes back to the pool as it is.
        self.begun = false;
        Ok(())
    }
}

/// What a [`Pipelined::send`] ends with.
enum Last<'p> {
    Query(&'p str, &'p [&'p (dyn ToSql + Sync)]),
    Commit,
    /// Only what is queued (and `BEGIN`).
    Nothing,
}

impl Drop for Pipelined {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if !self.begun {
            return;
        }
        // Unfinished: roll back without making the caller wait, then hand the connection
        // back; without a runtime to do that on, or if the rollback fails, the connection
        // leaves the pool and closes (the server then rolls back itself).
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if client.batch_execute("ROLLBACK").await.is_err() {
                        drop(Object::take(client));
                    }
                });
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::store::postgres::PgStore;
    use crate::orchestrator::store::postgres::testdb::TestDb;

    const SETUP: &str = "CREATE TABLE pipe (k INT PRIMARY KEY, v TEXT NOT NULL)";

    async fn store(db: &TestDb) -> PgStore {
        let store = PgStore::connect(&db.url, 1).await.unwrap();
        store
            .client()
            .await
            .unwrap()
            .batch_execute(SETUP)
            .await
            .unwrap();
        store
    }

    /// Queues `INSERT INTO pipe VALUES (k, v)`.
    fn insert(tx: &mut Pipelined, k: i32, v: &str) {
        tx.queue("INSERT INTO pipe VALUES ($1, $2)", params![k, v.to_owned()]);
    }

    async fn rows(store: &PgStore) -> Vec<(i32, String)> {
        let client = store.client().await.unwrap();
        let rows = client
            .query("SELECT k, v FROM pipe ORDER BY k", &[])
            .await
            .unwrap();
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    }

    #[tokio::test]
    async fn writes_go_in_order_a_read_sees_them_and_commit_keeps_them() {
        let db = TestDb::create().await;
        let store = store(&db).await;
        let mut tx = Pipelined::new(store.client().await.unwrap());
        insert(&mut tx, 1, "a");
        // Order matters: the update must run after the insert it changes.
        tx.queue(
            "UPDATE pipe SET v = $2 WHERE k = $1",
            params![1_i32, "b".to_owned()],
        );
        let seen = tx
            .query_opt("SELECT v FROM pipe WHERE k = $1", &[&1_i32])
            .await
            .unwrap();
        assert_eq!(seen.map(|r| r.get::<_, String>(0)).as_deref(), Some("b"));
        // Not yet visible outside the transaction (the pool has one connection: use another).
        let (other, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        assert!(
            other
                .query("SELECT 1 FROM pipe", &[])
                .await
                .unwrap()
                .is_empty()
        );
        insert(&mut tx, 2, "c");
        tx.commit().await.unwrap();
        assert_eq!(rows(&store).await, [(1, "b".into()), (2, "c".into())]);
    }

    const BULK_INSERT: &str =
        "INSERT INTO pipe SELECT * FROM unnest($1::bigint[], $2::text[]) AS v(k, v)";
    const BULK_UPDATE: &str = "UPDATE pipe SET v = u.v FROM unnest($1::bigint[], $2::text[]) \
                               AS u(k, v) WHERE pipe.k = u.k";

    fn row(k: i32, v: &str) -> Vec<Value> {
        vec![Value::Int(Some(k.into())), Value::Text(Some(v.into()))]
    }

    #[tokio::test]
    async fn rows_gather_into_one_statement_that_keeps_its_place_among_the_others() {
        let db = TestDb::create().await;
        let store = store(&db).await;
        let mut tx = Pipelined::new(store.client().await.unwrap());
        tx.queue_row(BULK_INSERT, None, row(1, "a")).unwrap();
        tx.queue_row(BULK_INSERT, None, row(2, "b")).unwrap();
        // A plain statement between: the rows before it are written before it runs.
        tx.queue("UPDATE pipe SET v = v || '!' WHERE k = 1", params![]);
        tx.queue_row(BULK_UPDATE, Some("2".into()), row(2, "first"))
            .unwrap();
        tx.queue_row(BULK_INSERT, None, row(3, "c")).unwrap();
        // The later row for key 2 replaces the earlier.
        tx.queue_row(BULK_UPDATE, Some("2".into()), row(2, "second"))
            .unwrap();
        let n: i64 = tx.query("SELECT count(*) FROM pipe", &[]).await.unwrap()[0].get(0);
        assert_eq!(n, 3);
        tx.queue_row(BULK_INSERT, None, row(4, "d")).unwrap();
        // A row of another shape than the rows gathered with it is refused.
        assert!(
            tx.queue_row(BULK_INSERT, None, row(5, "e")[..1].to_vec())
                .is_err()
        );
        tx.commit().await.unwrap();
        assert_eq!(
            rows(&store).await,
            [
                (1, "a!".into()),
                (2, "second".into()),
                (3, "c".into()),
                (4, "d".into())
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_write_fails_the_commit_and_nothing_is_kept() {
        let db = TestDb::create().await;
        let store = store(&db).await;
        let mut tx = Pipelined::new(store.client().await.unwrap());
        insert(&mut tx, 1, "a");
        insert(&mut tx, 1, "dup");
        insert(&mut tx, 3, "c");
        let err = tx.commit().await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict), "{err}");
        assert!(rows(&store).await.is_empty());
        // The one pooled connection came back usable, outside any transaction.
        let client = store.client().await.unwrap();
        client
            .batch_execute("INSERT INTO pipe VALUES (9, 'z')")
            .await
            .unwrap();
        drop(client);
        assert_eq!(rows(&store).await, [(9, "z".into())]);
    }

    #[tokio::test]
    async fn a_transaction_dropped_unfinished_is_rolled_back() {
        let db = TestDb::create().await;
        let store = store(&db).await;
        let mut tx = Pipelined::new(store.client().await.unwrap());
        insert(&mut tx, 1, "a");
        tx.flushed().await.unwrap();
        drop(tx);
        // The pool's one connection is handed back after its rollback: this waits for it,
        // and must find no transaction open and no row.
        let client = store.client().await.unwrap();
        // Still inside the dropped transaction, this would show its id (its insert took one).
        let xid: Option<String> = client
            .query_one("SELECT txid_current_if_assigned()::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(xid, None);
        drop(client);
        assert!(rows(&store).await.is_empty());
    }
}
