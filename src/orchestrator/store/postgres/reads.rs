//! Worker reads, batched ([`Batcher`]): the reads that arrive while others are being answered
//! go to the database as one `worker_id = ANY($1)` query. Every hot request (a claim, a
//! heartbeat, a gateway job) reads its worker's row to authenticate it, so on a busy replica
//! this turns many round trips and statements into one. Each answer is still read after it
//! was asked for, never remembered from an earlier read.

use std::collections::HashMap;
use std::sync::Arc;

use deadpool_postgres::{GenericClient as _, Pool};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::batch::{Batcher, Runner};
use super::{pg_err, pooled};
use crate::domain::WorkerId;
use crate::orchestrator::store::rows::{self, WORKER_COLUMNS};
use crate::orchestrator::store::{StoreError, WorkerRow};

/// Most read queries in flight at once in one process (each on a connection of its own).
/// Two: the reads that wait behind them make the batches (`bench task_market`: one or two
/// beat four by 15 to 30 % with three replicas on two cores).
const READERS: usize = 2;
/// Most workers in one query.
const MAX_BATCH: usize = 256;

/// Worker reads queued for their readers (clones share the queue).
#[derive(Clone)]
pub struct WorkerReads(Arc<Batcher<Reader>>);

pub struct Reader {
    pool: Pool,
}

type Answer = Result<Option<WorkerRow>, StoreError>;

pub struct Read {
    id: WorkerId,
    answer: oneshot::Sender<Answer>,
}

impl WorkerReads {
    pub fn new(pool: Pool) -> Self {
        Self(Batcher::new(Reader { pool }, READERS, MAX_BATCH))
    }

    /// The worker's row, read with whatever reads are waiting with it.
    pub async fn worker(&self, id: WorkerId) -> Answer {
        let (answer, answered) = oneshot::channel();
        self.0.push(Read { id, answer });
        answered.await.unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "the worker read was dropped before it was answered".into(),
            ))
        })
    }
}

impl Runner for Reader {
    type Request = Read;
    fn run(&self, batch: Vec<Read>) -> BoxFuture<'_, ()> {
        async move {
            match self.read(&batch).await {
                Ok(found) => {
                    for read in batch {
                        // A worker asked for twice in one batch: each asker gets the row.
                        let _ = read.answer.send(Ok(found.get(&read.id).cloned()));
                    }
                }
                Err(e) => {
                    for read in batch {
                        let _ = read.answer.send(Err(e.clone()));
                    }
                }
            }
        }
        .boxed()
    }
}

impl Reader {
    async fn read(&self, batch: &[Read]) -> Result<HashMap<WorkerId, WorkerRow>, StoreError> {
        let client = pooled(&self.pool).await?;
        let rows = if let [one] = batch {
            let sql = format!("SELECT {WORKER_COLUMNS} FROM workers WHERE worker_id = $1");
            let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
            client
                .query(&stmt, &[&one.id.as_str()])
                .await
                .map_err(pg_err)?
        } else {
            let mut ids: Vec<&str> = batch.iter().map(|r| r.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            let sql = format!("SELECT {WORKER_COLUMNS} FROM workers WHERE worker_id = ANY($1)");
            let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
            client.query(&stmt, &[&ids]).await.map_err(pg_err)?
        };
        rows.iter()
            .map(|row| rows::worker(row).map(|w| (w.worker_id.clone(), w)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::domain::{Runtime, WorkerId};
    use crate::orchestrator::store::Store;
    use crate::orchestrator::store::contract::tasks::worker;
    use crate::orchestrator::store::postgres::testdb::fresh;

    #[tokio::test]
    async fn reads_waiting_together_each_get_their_own_row() {
        let (_db, store): (_, Arc<dyn Store>) = fresh().await;
        let a = worker(&*store, "w-a", Runtime::Echo).await;
        let b = worker(&*store, "w-b", Runtime::Echo).await;
        let gone = WorkerId::parse("w-gone").unwrap();
        // Asked for together (twice for one worker, once for none): one batch.
        let asked = [&a, &b, &a, &gone, &b];
        let rows = futures::future::try_join_all(asked.map(|id| store.worker(id.clone())))
            .await
            .unwrap();
        let got: Vec<Option<&str>> = rows
            .iter()
            .map(|r| r.as_ref().map(|w| w.worker_id.as_str()))
            .collect();
        assert_eq!(
            got,
            [Some("w-a"), Some("w-b"), Some("w-a"), None, Some("w-b")]
        );
    }
}
