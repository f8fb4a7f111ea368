//! [`Batcher`]: requests that arrive while earlier ones are being served wait in a queue, and
//! the next free runner takes every waiting one (up to a limit) as one batch, so that a busy
//! store answers many requests with one round trip to the database. Alone, a request is run at
//! once: batching adds no wait, only a task hop. Used for the market's grouped changes
//! (`group`) and for worker reads (`reads`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::future::BoxFuture;

/// What serves a batch; it answers each request itself (through a channel in the request).
pub trait Runner: Send + Sync + 'static {
    type Request: Send + 'static;
    fn run(&self, batch: Vec<Self::Request>) -> BoxFuture<'_, ()>;
}

/// The queue and its runners.
pub struct Batcher<R: Runner> {
    runner: R,
    queue: Mutex<Queue<R::Request>>,
    /// Most runners at once: few, so that what waits while they work makes large batches.
    runners: usize,
    /// Most requests in one batch.
    max_batch: usize,
}

struct Queue<T> {
    waiting: VecDeque<T>,
    /// Runners running now.
    running: usize,
}

impl<R: Runner> Batcher<R> {
    pub fn new(runner: R, runners: usize, max_batch: usize) -> Arc<Self> {
        Arc::new(Self {
            runner,
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                running: 0,
            }),
            runners: runners.max(1),
            max_batch: max_batch.max(1),
        })
    }

    #[cfg(test)]
    pub fn runner(&self) -> &R {
        &self.runner
    }

    fn queue(&self) -> MutexGuard<'_, Queue<R::Request>> {
        // Every change to the queue is complete before its guard drops: a panic elsewhere
        // cannot leave it half-changed.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `request` for the next batch, starting a runner if there is room for one.
    pub fn push(self: &Arc<Self>, request: R::Request) {
        let start = {
            let mut q = self.queue();
            q.waiting.push_back(request);
            let start = q.running < self.runners;
            if start {
                q.running += 1;
            }
            start
        };
        if start {
            tokio::spawn(Running(Arc::clone(self)).serve());
        }
    }
}

/// One runner: takes batches until the queue is empty.
struct Running<R: Runner>(Arc<Batcher<R>>);

impl<R: Runner> Running<R> {
    async fn serve(self) {
        loop {
            let batch: Vec<R::Request> = {
                let mut q = self.0.queue();
                let n = q.waiting.len().min(self.0.max_batch);
                if n == 0 {
                    return;
                }
                q.waiting.drain(..n).collect()
            };
            self.0.runner.run(batch).await;
        }
    }
}

impl<R: Runner> Drop for Running<R> {
    fn drop(&mut self) {
        let mut q = self.0.queue();
        q.running = q.running.saturating_sub(1);
        // A request queued after this runner found the queue empty (but before it was
        // counted out) found no room to start one; so did any left by a runner that stopped
        // early (its task cancelled): start one now.
        if !q.waiting.is_empty()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            q.running += 1;
            runtime.spawn(Running(Arc::clone(&self.0)).serve());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt as _;
    use tokio::sync::oneshot;

    use super::*;

    /// Answers each request with the size of its batch, after a short wait (a round trip).
    struct Sizes(AtomicUsize);

    impl Runner for Sizes {
        type Request = oneshot::Sender<usize>;
        fn run(&self, batch: Vec<Self::Request>) -> BoxFuture<'_, ()> {
            async move {
                self.0.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let n = batch.len();
                for answer in batch {
                    let _ = answer.send(n);
                }
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn waiting_requests_share_a_batch_and_every_one_is_answered() {
        let b = Batcher::new(Sizes(AtomicUsize::new(0)), 1, 8);
        let ask = || {
            let (tx, rx) = oneshot::channel();
            b.push(tx);
            rx
        };
        let mut asks = vec![ask()];
        // The runner takes the first alone; the rest arrive while it works.
        tokio::task::yield_now().await;
        asks.extend((1..20).map(|_| ask()));
        let sizes: Vec<usize> = futures::future::try_join_all(asks).await.unwrap();
        // The first went alone; the 19 that waited went in batches of at most 8.
        assert_eq!(sizes[0], 1);
        assert!(sizes[1..].iter().all(|&n| n > 1 && n <= 8), "{sizes:?}");
        assert_eq!(b.runner().0.load(Ordering::SeqCst), 4);
        // All runners gone; a later request starts one again.
        let (tx, rx) = oneshot::channel();
        b.push(tx);
        assert_eq!(rx.await.unwrap(), 1);
    }
}
