//! The gateway's wait queue: requests that found every worker serving their model at capacity
//! wait here, per model, for a freed unit of capacity instead of getting 503 at once.
//!
//! Fairness: within a model, waiters are grouped in lanes (one per client key; per client
//! address with `--open`; per forwarding replica), and lanes take turns (round robin): a lane
//! with one waiter is served within one turn of every other lane, however many waiters a
//! flooding lane has queued. Within a lane, first come first served.
//!
//! Hand-off: capacity freed on a worker (a job ended, the worker became routable again, a
//! worker connected) is reserved on the worker *before* a waiter is told, and the waiter receives the
//! worker with that unit already reserved ([`super::Hub::freed`]), so a request arriving
//! meanwhile cannot take it: queued requests go first. A waiter that went away (its client
//! disconnected: its [`Ticket`] was dropped) leaves its lane at once; a unit handed to it as it
//! left is handed on.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::Hub;
use super::live::Live;

/// Who a waiting request belongs to, for fairness: a digest of its client key, its client
/// address (`--open`), or the replica that forwarded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lane(pub [u8; 32]);

/// `queue_timeout_ms` and `max_queued_per_model` from orchestrator.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long a request may wait for a worker; zero: no queue (503 at once, as before).
    pub timeout: Duration,
    /// Waiting requests per model at most; past it a request gets 503 at once.
    pub max_per_model: usize,
}

pub const DEFAULT_QUEUE_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_MAX_QUEUED_PER_MODEL: usize = 256;

impl QueueSettings {
    pub fn resolve(timeout_ms: Option<u64>, max_per_model: Option<usize>) -> Result<Self, String> {
        let timeout_ms = timeout_ms.unwrap_or(DEFAULT_QUEUE_TIMEOUT_MS);
        if timeout_ms > 600_000 {
            return Err("queue_timeout_ms must be at most 600000 (10 minutes)".into());
        }
        let max_per_model = max_per_model.unwrap_or(DEFAULT_MAX_QUEUED_PER_MODEL);
        if !(1..=100_000).contains(&max_per_model) {
            return Err("max_queued_per_model must be between 1 and 100000".into());
        }
        Ok(Self {
            timeout: Duration::from_millis(timeout_ms),
            max_per_model,
        })
    }

    pub fn enabled(&self) -> bool {
        !self.timeout.is_zero()
    }
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(DEFAULT_QUEUE_TIMEOUT_MS),
            max_per_model: DEFAULT_MAX_QUEUED_PER_MODEL,
        }
    }
}

struct Waiter {
    id: u64,
    tx: oneshot::Sender<Arc<Live>>,
}

/// One model's waiters, in lanes taking turns.
#[derive(Default)]
struct ModelQueue {
    /// Lanes with waiters, in turn order.
    turns: VecDeque<Lane>,
    lanes: HashMap<Lane, VecDeque<Waiter>>,
    len: usize,
}

impl ModelQueue {
    fn push(&mut self, lane: Lane, waiter: Waiter) {
        let waiters = self.lanes.entry(lane).or_default();
        if waiters.is_empty() {
            self.turns.push_back(lane);
        }
        waiters.push_back(waiter);
        self.len += 1;
    }

    /// The next waiter: the first of the lane whose turn it is (that lane goes to the back).
    fn pop(&mut self) -> Option<Waiter> {
        let lane = self.turns.pop_front()?;
        let waiters = self.lanes.get_mut(&lane)?;
        let waiter = waiters.pop_front();
        if waiters.is_empty() {
            self.lanes.remove(&lane);
        } else {
            self.turns.push_back(lane);
        }
        if waiter.is_some() {
            self.len -= 1;
        }
        waiter
    }

    fn remove(&mut self, lane: Lane, id: u64) -> bool {
        let Some(waiters) = self.lanes.get_mut(&lane) else {
            return false;
        };
        let before = waiters.len();
        waiters.retain(|w| w.id != id);
        let removed = waiters.len() < before;
        if waiters.is_empty() {
            self.lanes.remove(&lane);
            self.turns.retain(|l| *l != lane);
        }
        if removed {
            self.len -= 1;
        }
        removed
    }
}

/// Every model's queue.
#[derive(Default)]
pub struct Queues {
    models: Mutex<HashMap<String, ModelQueue>>,
    next_id: AtomicU64,
    /// Waiters over all models (read without the lock on the hot path).
    waiting: AtomicUsize,
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("waiting", &self.waiting())
            .finish_non_exhaustive()
    }
}

/// The model's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

impl Queues {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, ModelQueue>> {
        self.models.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Requests waiting now, over all models.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    fn push(
        &self,
        model: &str,
        lane: Lane,
        max: usize,
    ) -> Result<(u64, oneshot::Receiver<Arc<Live>>), QueueFull> {
        let mut models = self.lock();
        let queue = models.entry(model.to_owned()).or_default();
        if queue.len >= max {
            return Err(QueueFull);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        queue.push(lane, Waiter { id, tx });
        self.waiting.fetch_add(1, Ordering::AcqRel);
        Ok((id, rx))
    }

    fn pop(&self, model: &str) -> Option<oneshot::Sender<Arc<Live>>> {
        let mut models = self.lock();
        let queue = models.get_mut(model)?;
        let waiter = queue.pop();
        if queue.len == 0 {
            models.remove(model);
        }
        drop(models);
        waiter.map(|w| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            w.tx
        })
    }

    /// Lets every waiter go without a worker (the orchestrator is draining).
    fn release_all(&self) {
        let drained: Vec<ModelQueue> = self.lock().drain().map(|(_, q)| q).collect();
        let n: usize = drained.iter().map(|q| q.len).sum();
        self.waiting.fetch_sub(n, Ordering::AcqRel);
        // Dropping the senders wakes each waiter with nothing.
        drop(drained);
    }

    fn remove(&self, model: &str, lane: Lane, id: u64) {
        let mut models = self.lock();
        let Some(queue) = models.get_mut(model) else {
            return;
        };
        if queue.remove(lane, id) {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        if queue.len == 0 {
            models.remove(model);
        }
    }
}

/// A request's place in its model's queue. Dropping it leaves the queue (and hands on a unit
/// of capacity that reached it too late).
#[derive(Debug)]
pub struct Ticket<'h> {
    hub: &'h Hub,
    model: String,
    lane: Lane,
    id: u64,
    rx: Option<oneshot::Receiver<Arc<Live>>>,
}

impl Ticket<'_> {
    /// Waits for a worker with one unit of capacity reserved for this request; `None` when
    /// the hub stopped handing work out (shutting down).
    pub async fn worker(&mut self) -> Option<Arc<Live>> {
        let rx = self.rx.as_mut()?;
        let live = rx.await.ok();
        self.rx = None;
        live
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        self.hub.queues.remove(&self.model, self.lane, self.id);
        // Handed a worker in the instant this request gave up: give the unit to the next one.
        if let Ok(live) = rx.try_recv() {
            live.release();
            self.hub.freed(&live);
        }
    }
}

impl Hub {
    /// A place in `model`'s queue for a request of `lane`, unless `max` already wait there.
    pub fn enqueue(&self, model: &str, lane: Lane, max: usize) -> Result<Ticket<'_>, QueueFull> {
        let (id, rx) = self.queues.push(model, lane, max)?;
        Ok(Ticket {
            hub: self,
            model: model.to_owned(),
            lane,
            id,
            rx: Some(rx),
        })
    }

    /// Requests waiting for a worker now.
    pub fn queued(&self) -> usize {
        self.queues.waiting()
    }

    /// Sends every waiting request away without a worker (they answer
    /// `ORCHESTRATOR_DRAINING`); called when the drain begins.
    pub(super) fn release_waiters(&self) {
        self.queues.release_all();
    }

    /// Hands `live`'s free capacity to the requests waiting for the models it serves, as long
    /// as it is routable and has capacity: each gets one unit, reserved before it is told.
    /// Called whenever capacity may have appeared: a job ended, the worker became routable
    /// again ([`Hub::heartbeat`]), a connection opened.
    pub fn freed(&self, live: &Arc<Live>) {
        if self.queues.waiting() == 0 || self.is_draining() {
            return;
        }
        let now = self.now_ms();
        // Requests asking for one of its labels first (fewer workers can take them).
        let keys = live.hello.models.iter().flat_map(|m| {
            live.hello
                .labels
                .iter()
                .map(|l| super::queue_key(m, Some(l)))
                .chain(std::iter::once(m.clone()))
        });
        for model in keys {
            loop {
                if !live.is_routable(now, self.window_ms) || !live.try_reserve() {
                    return;
                }
                let Some(waiter) = self.queues.pop(&model) else {
                    live.release();
                    break;
                };
                if let Err(unsent) = waiter.send(Arc::clone(live)) {
                    // That request is gone (its ticket is being dropped): the next one.
                    unsent.release();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(n: u8) -> Lane {
        Lane([n; 32])
    }

    fn waiter(id: u64) -> Waiter {
        Waiter {
            id,
            tx: oneshot::channel().0,
        }
    }

    #[test]
    fn lanes_take_turns_and_a_lane_is_first_come_first_served() {
        let mut q = ModelQueue::default();
        // A flooding lane queues ten, then a light lane one.
        for id in 0..10 {
            q.push(lane(1), waiter(id));
        }
        q.push(lane(2), waiter(100));
        let order: Vec<u64> = std::iter::from_fn(|| q.pop().map(|w| w.id)).collect();
        assert_eq!(order, vec![0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(q.len, 0);
        assert!(q.turns.is_empty() && q.lanes.is_empty());
    }

    #[test]
    fn a_removed_waiter_leaves_its_lane_and_its_turn() {
        let mut q = ModelQueue::default();
        q.push(lane(1), waiter(1));
        q.push(lane(2), waiter(2));
        q.push(lane(1), waiter(3));
        assert!(q.remove(lane(2), 2));
        assert!(!q.remove(lane(2), 2), "only once");
        assert_eq!(q.len, 2);
        let order: Vec<u64> = std::iter::from_fn(|| q.pop().map(|w| w.id)).collect();
        assert_eq!(order, vec![1, 3]);
    }

    #[tokio::test]
    async fn a_drain_sends_the_waiters_away_without_a_worker() {
        let hub = Hub::new(Duration::from_secs(30));
        let mut a = hub.enqueue("m", lane(1), 8).unwrap();
        let mut b = hub.enqueue("other", lane(2), 8).unwrap();
        assert_eq!(hub.queued(), 2);
        hub.begin_drain();
        assert_eq!(hub.queued(), 0);
        assert!(a.worker().await.is_none());
        assert!(b.worker().await.is_none());
        assert!(
            hub.enqueue("m", lane(1), 1).is_ok(),
            "a full queue was emptied"
        );
    }

    #[test]
    fn settings_are_bounded() {
        assert_eq!(
            QueueSettings::resolve(None, None),
            Ok(QueueSettings::default())
        );
        assert!(!QueueSettings::resolve(Some(0), None).unwrap().enabled());
        assert!(QueueSettings::resolve(Some(600_001), None).is_err());
        assert!(QueueSettings::resolve(None, Some(0)).is_err());
    }
}
