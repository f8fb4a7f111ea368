//! The hub: the workers connected right now over the worker channel, in memory
//! (docs/PROTOCOL.md, "Worker channel" and "Worker registry and presence"). Sessions
//! ([`session`]) attach a [`Live`] per welcomed connection; the gateway asks the hub to route a
//! job to the least busy routable worker serving a model ([`Hub::dispatch`]), or requests wait
//! in [`queue`] for capacity to free up; results are recorded by [`settle`] before the worker
//! gets `job_ack`.
//!
//! Online means: connected, and the last heartbeat younger than `online_window_s` (a
//! disconnected worker is offline at once). Routable means online and `ready`, while the
//! orchestrator is not draining.
//!
//! Architecture invariant: the heartbeat path takes no lock shared between connections and
//! writes nothing to the store; presence reaches the store on connect, on disconnect and in
//! one batched write per [`presence::FLUSH_EVERY`]. The one exception: a heartbeat that makes
//! a worker routable again while requests wait takes the queue's lock to hand them its
//! capacity ([`Hub::heartbeat`]).

mod handle;
mod jobs;
mod live;
pub mod presence;
mod queue;
pub mod session;
mod settle;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;
use tokio::sync::mpsc;

pub use handle::JobHandle;
pub use jobs::{CancelReason, Finished, JobEvent, JobFailure};
pub use live::{Hello, Live, Outbound};
pub use queue::{
    DEFAULT_MAX_QUEUED_PER_MODEL, DEFAULT_QUEUE_TIMEOUT_MS, Lane, QueueFull, QueueSettings, Ticket,
};

use crate::domain::{JobId, WorkerId};
use crate::orchestrator::reservation::Reservation;
use crate::orchestrator::store::KeySha256;

/// What the gateway asks the hub to run.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub model: String,
    /// Only on a worker with this label (`x-basis-worker-label`).
    pub label: Option<String>,
    pub stream: bool,
    /// How long the job may run.
    pub timeout: Duration,
    /// The client key it came with, for its usage and quota.
    pub client_key: Option<KeySha256>,
    /// Its hold on the key's daily tokens, released when the job ends.
    pub reservation: Option<Arc<Reservation>>,
    /// The most prompt tokens the request can take (`metering::prompt_bound`).
    pub prompt_bound: u64,
    /// The most completion tokens it asked for (`metering::completion_limit`).
    pub completion_limit: Option<u64>,
}

impl JobSpec {
    /// The wait queue it joins: its model's, or, with a label, the one for that model and
    /// label (a worker frees capacity to both).
    pub fn queue_key(&self) -> String {
        queue_key(&self.model, self.label.as_deref())
    }
}

/// The wait-queue key of `model` (and `label`).
fn queue_key(model: &str, label: Option<&str>) -> String {
    match label {
        Some(label) => format!("{model}\u{0}label:{label}"),
        None => model.to_owned(),
    }
}
use crate::wire::OrchestratorMessage;
use jobs::JobEntry;

/// Why a job could not be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    /// No routable worker serves the model.
    NoWorker,
    /// Some do, but all are at capacity.
    AllBusy,
    /// The orchestrator is shutting down.
    Draining,
}

/// A connected worker as the registry shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    pub online: bool,
    /// Unix seconds of the last heartbeat.
    pub last_seen: u64,
    pub connected_since: u64,
}

/// The connected workers. Cheap to share (`Arc` inside `AppState`).
#[derive(Debug)]
pub struct Hub {
    workers: RwLock<HashMap<WorkerId, Arc<Live>>>,
    epoch: Instant,
    epoch_unix_ms: u64,
    window_ms: u64,
    next_conn: AtomicU64,
    draining: AtomicBool,
    /// Finished jobs whose outcome is being written.
    settling: AtomicUsize,
    /// Requests waiting for capacity ([`queue`]).
    queues: queue::Queues,
}

impl Hub {
    pub fn new(online_window: Duration) -> Self {
        let epoch_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            workers: RwLock::new(HashMap::new()),
            epoch: Instant::now(),
            epoch_unix_ms,
            window_ms: u64::try_from(online_window.as_millis()).unwrap_or(u64::MAX),
            next_conn: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            settling: AtomicUsize::new(0),
            queues: queue::Queues::default(),
        }
    }

    /// Milliseconds on the hub's monotonic clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A hub-clock time as unix seconds.
    pub fn unix_s(&self, ms: u64) -> u64 {
        self.epoch_unix_ms.saturating_add(ms) / 1000
    }

    pub fn next_conn(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<WorkerId, Arc<Live>>> {
        self.workers.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<WorkerId, Arc<Live>>> {
        self.workers.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a welcomed connection; returns the one it replaces.
    pub fn attach(&self, live: Arc<Live>) -> Option<Arc<Live>> {
        self.write().insert(live.worker_id().clone(), live)
    }

    /// Removes a connection, unless a newer one of the same worker replaced it.
    pub fn detach(&self, live: &Live) {
        let mut map = self.write();
        if map
            .get(live.worker_id())
            .is_some_and(|l| l.conn == live.conn)
        {
            map.remove(live.worker_id());
        }
    }

    pub fn get(&self, id: &WorkerId) -> Option<Arc<Live>> {
        self.read().get(id).cloned()
    }

    pub fn connected(&self) -> usize {
        self.read().len()
    }

    /// The registry's view of a worker, while it is connected.
    pub fn presence(&self, id: &WorkerId) -> Option<Presence> {
        let live = self.get(id)?;
        let now = self.now_ms();
        Some(Presence {
            online: live.is_online(now, self.window_ms),
            last_seen: self.unix_s(live.last_beat_ms()),
            connected_since: live.connected_since,
        })
    }

    /// Whether some worker would take a job now.
    pub fn any_routable(&self) -> bool {
        let now = self.now_ms();
        !self.is_draining()
            && self
                .read()
                .values()
                .any(|l| l.is_routable(now, self.window_ms))
    }

    /// The models routable workers serve, each with the unix second its earliest current
    /// connection opened.
    pub fn models(&self) -> BTreeMap<String, u64> {
        let now = self.now_ms();
        let mut out = BTreeMap::new();
        for live in self.read().values() {
            if live.is_routable(now, self.window_ms) {
                for m in &live.hello.models {
                    let created = out.entry(m.clone()).or_insert(live.connected_since);
                    *created = (*created).min(live.connected_since);
                }
            }
        }
        out
    }

    /// Every connected worker's last heartbeat, as unix seconds (for the batched store write).
    pub fn last_seen_all(&self) -> Vec<(WorkerId, u64)> {
        self.read()
            .values()
            .map(|l| (l.worker_id().clone(), self.unix_s(l.last_beat_ms())))
            .collect()
    }

    /// Picks the least busy routable worker serving `model` and reserves one unit of its
    /// capacity (ties broken at random).
    fn pick(&self, model: &str, label: Option<&str>) -> Result<Arc<Live>, NoRoute> {
        let now = self.now_ms();
        let mut rng = rand::rng();
        for _ in 0..8 {
            let mut serving = 0_usize;
            let mut best: Option<(u32, Arc<Live>)> = None;
            let mut ties = 0_u32;
            for live in self.read().values() {
                if !live.serves(model)
                    || label.is_some_and(|l| !live.has_label(l))
                    || !live.is_routable(now, self.window_ms)
                {
                    continue;
                }
                serving += 1;
                let busy = live.in_flight();
                if busy >= live.hello.capacity {
                    continue;
                }
                match &best {
                    Some((b, _)) if busy > *b => {}
                    Some((b, _)) if busy == *b => {
                        ties += 1;
                        if rng.random_range(0..ties) == 0 {
                            best = Some((busy, Arc::clone(live)));
                        }
                    }
                    _ => {
                        ties = 1;
                        best = Some((busy, Arc::clone(live)));
                    }
                }
            }
            let Some((_, live)) = best else {
                return Err(if serving == 0 {
                    NoRoute::NoWorker
                } else {
                    NoRoute::AllBusy
                });
            };
            if live.try_reserve() {
                return Ok(live);
            }
        }
        Err(NoRoute::AllBusy)
    }

    /// Routes a chat completion: reserves a worker, registers the job on its connection and
    /// sends it `job`. The returned handle yields the job's events.
    pub fn dispatch(&self, spec: &JobSpec, mut request: Value) -> Result<JobHandle, NoRoute> {
        if self.is_draining() {
            return Err(NoRoute::Draining);
        }
        for _ in 0..3 {
            let live = self.pick(&spec.model, spec.label.as_deref())?;
            match self.dispatch_to(live, spec, request) {
                Ok(job) => return Ok(job),
                Err(r) => request = r,
            }
        }
        Err(NoRoute::NoWorker)
    }

    /// Sends the job to `live`, on which one unit of capacity is already reserved for it.
    /// `Err` gives the request back when the connection closed meanwhile (the unit is
    /// released).
    pub fn dispatch_to(
        &self,
        live: Arc<Live>,
        spec: &JobSpec,
        request: Value,
    ) -> Result<JobHandle, Value> {
        let (model, stream, timeout) = (spec.model.as_str(), spec.stream, spec.timeout);
        let job_id = JobId::generate();
        let (sink, events) = mpsc::unbounded_channel();
        let started = Instant::now();
        let started_unix = self.unix_s(self.now_ms());
        live.jobs().insert(
            job_id.clone(),
            JobEntry {
                model: model.to_owned(),
                stream,
                started,
                started_unix,
                deadline: started + timeout,
                sink,
                text: String::new(),
                chunks: 0,
                text_chunks: 0,
                prompt_bound: spec.prompt_bound,
                completion_limit: spec.completion_limit,
                first_chunk: None,
                cancelled: None,
                client_key: spec.client_key,
                reservation: spec.reservation.clone(),
            },
        );
        let frame = OrchestratorMessage::Job {
            job_id: job_id.clone(),
            model: model.to_owned(),
            request,
            deadline_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        };
        match live.send(frame) {
            Ok(()) => {
                tracing::debug!(%job_id, worker_id = %live.worker_id(), model, "job dispatched");
                Ok(JobHandle::new(
                    job_id,
                    model.to_owned(),
                    started_unix,
                    live,
                    events,
                ))
            }
            Err(frame) => {
                // The connection closed meanwhile: take the job back.
                live.finish(&job_id);
                match frame {
                    OrchestratorMessage::Job { request, .. } => Err(request),
                    _ => Err(Value::Null),
                }
            }
        }
    }

    /// Records `live`'s heartbeat. One that makes it routable again (ready after not, or back
    /// within the window) hands its capacity to waiting requests; any other touches nothing
    /// shared between connections.
    pub fn heartbeat(&self, live: &Arc<Live>, ready: bool, in_flight: u32) {
        if live.beat(self.now_ms(), self.window_ms, ready, in_flight) {
            self.freed(live);
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Stops routing, sends waiting requests away, and asks every worker to drain.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
        self.release_waiters();
        for live in self.read().values() {
            let _ = live.send(OrchestratorMessage::Drain);
        }
    }

    /// Jobs dispatched and not yet finished, plus finished ones still being recorded.
    pub fn unfinished_jobs(&self) -> usize {
        let pending: usize = self.read().values().map(|l| l.jobs().len()).sum();
        pending + self.settling.load(Ordering::Acquire)
    }

    /// Closes every connection with `error {code, message}`.
    pub fn close_all(&self, code: &'static str, message: &str) {
        for live in self.read().values() {
            live.close(code, message);
        }
    }

    /// Counts a job outcome being written until the guard drops.
    pub fn settling(&self) -> SettlingGuard<'_> {
        self.settling.fetch_add(1, Ordering::AcqRel);
        SettlingGuard(self)
    }
}

/// See [`Hub::settling`].
#[derive(Debug)]
pub struct SettlingGuard<'a>(&'a Hub);

impl Drop for SettlingGuard<'_> {
    fn drop(&mut self) {
        self.0.settling.fetch_sub(1, Ordering::AcqRel);
    }
}
