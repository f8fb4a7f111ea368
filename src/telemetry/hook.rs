//! The log hook: a `tracing` layer that hands the crate's own events, each value passed through
//! the secrets guard, to in-process listeners (the MCP sessions, which send them to their
//! clients as `notifications/message`).
//!
//! Cheap by construction:
//! - Off until a listener asks for a level ([`Listener::set_level`]): the global hook's filter
//!   then tells `tracing` that no callsite interests it, so a disabled event costs what it
//!   cost before. A level change rebuilds `tracing`'s interest cache once. (A standalone
//!   [`LogHook::new`], for a scoped subscriber, is asked about each event instead: a rebuild
//!   only consults the calling thread's default subscriber when just one is registered.)
//! - Only events whose target is this crate (`basis`, `basis::…`) are taken: never rmcp's,
//!   hyper's or the transport's own, so sending a notification cannot log its way into a loop.
//! - The emitting thread formats the fields, runs the guard and pushes onto a bounded
//!   broadcast channel; it never waits for a listener. A listener that falls behind loses the
//!   oldest records and is told how many ([`Next::Dropped`], [`LogHook::dropped`]).
//!
//! Attribution: events emitted inside [`Listener::scope`] (an MCP session's tool call) go to
//! that listener only; events from anywhere else go to every listener.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use serde_json::{Map, Value};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Filtered;
use tracing_subscriber::layer::{Context, Filter};

use crate::guard;

/// Records the channel holds for a listener that is behind; older ones are dropped.
pub const CAPACITY: usize = 1024;
/// A field value longer than this (in bytes) is replaced by a note of its length.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;
/// Events whose target is this crate or one of its modules are taken.
const CRATE: &str = "basis";

/// One event, ready to send: every string in `data` has passed the secrets guard.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub level: Level,
    /// The event's target (its module path unless the event named one): the MCP `logger`.
    pub target: &'static str,
    /// `message` (when the event has one) and the event's fields.
    pub data: Map<String, Value>,
    /// The listener whose [`Listener::scope`] emitted it; `None` for everyone.
    listener: Option<u64>,
}

/// What a listener gets next.
#[derive(Debug, Clone)]
pub enum Next {
    Record(Arc<LogRecord>),
    /// The listener fell behind and this many records were dropped.
    Dropped(u64),
}

/// The hook: the layer, its filter and the listeners share it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LogHook {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<Arc<LogRecord>>,
    /// The level each listener asked for.
    wanted: Mutex<HashMap<u64, LevelFilter>>,
    /// The most verbose of `wanted`, encoded by [`encode`]; what the filter lets through.
    max: AtomicU8,
    next_id: AtomicU64,
    dropped: AtomicU64,
    /// Callsite interest is cached by `tracing` and rebuilt on a level change (the global
    /// hook); otherwise every event of the crate is checked against the level.
    cached: bool,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogHook")
            .field("max", &decode(self.max.load(Ordering::Relaxed)))
            .field("listeners", &self.tx.receiver_count())
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

static GLOBAL: LazyLock<LogHook> = LazyLock::new(|| LogHook::with_mode(CAPACITY, true));

tokio::task_local! {
    /// The listener a task's events are attributed to (see [`Listener::scope`]).
    static LISTENER: u64;
}

impl LogHook {
    /// A standalone hook whose channel holds `capacity` records per listener (at least one),
    /// for a subscriber of its own (tests); [`LogHook::global`] is the process's.
    pub fn new(capacity: usize) -> Self {
        Self::with_mode(capacity, false)
    }

    fn with_mode(capacity: usize, cached: bool) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            inner: Arc::new(Inner {
                tx,
                wanted: Mutex::new(HashMap::new()),
                max: AtomicU8::new(encode(LevelFilter::OFF)),
                next_id: AtomicU64::new(1),
                dropped: AtomicU64::new(0),
                cached,
            }),
        }
    }

    /// The process's hook, installed by [`super::init`].
    pub fn global() -> &'static Self {
        &GLOBAL
    }

    /// The layer, with its own filter (it never filters what other layers see).
    pub fn layer<S>(&self) -> Filtered<HookLayer, HookFilter, S>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let layer = HookLayer {
            inner: Arc::clone(&self.inner),
        };
        layer.with_filter(HookFilter {
            inner: Arc::clone(&self.inner),
        })
    }

    /// A new listener, at [`LevelFilter::OFF`] until it sets a level.
    pub fn listen(&self) -> Listener {
        Listener {
            inner: Arc::clone(&self.inner),
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            state: Arc::new(ListenerState {
                level: AtomicU8::new(encode(LevelFilter::OFF)),
                closed: CancellationToken::new(),
            }),
        }
    }

    /// Records dropped so far because a listener fell behind (summed over listeners).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn max(&self) -> LevelFilter {
        decode(self.max.load(Ordering::Relaxed))
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max() && is_ours(meta)
    }

    /// Records `id`'s level (`None`: forget it) and, when the most verbose level changes,
    /// has `tracing` ask every callsite again. The lock is held throughout, so concurrent
    /// updates cannot leave a stale level or a stale cache behind (the rebuild only reads
    /// `max`).
    fn update(&self, id: u64, level: Option<LevelFilter>) {
        let mut wanted = self.wanted.lock().unwrap_or_else(PoisonError::into_inner);
        match level {
            Some(level) => wanted.insert(id, level),
            None => wanted.remove(&id),
        };
        let max = encode(wanted.values().copied().max().unwrap_or(LevelFilter::OFF));
        if self.max.swap(max, Ordering::Relaxed) != max && self.cached {
            tracing::callsite::rebuild_interest_cache();
        }
    }
}

/// An event (not a span) of this crate.
fn is_ours(meta: &Metadata<'_>) -> bool {
    meta.is_event()
        && meta
            .target()
            .strip_prefix(CRATE)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

fn encode(level: LevelFilter) -> u8 {
    match level.into_level() {
        None => 0,
        Some(Level::ERROR) => 1,
        Some(Level::WARN) => 2,
        Some(Level::INFO) => 3,
        Some(Level::DEBUG) => 4,
        Some(Level::TRACE) => 5,
    }
}

fn decode(code: u8) -> LevelFilter {
    match code {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// The hook's per-layer filter: the crate's events at or above the most verbose level any
/// listener wants; nothing at all while no listener wants anything.
#[derive(Debug, Clone)]
pub struct HookFilter {
    inner: Arc<Inner>,
}

impl<S> Filter<S> for HookFilter {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.inner.wants(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if !is_ours(meta) {
            Interest::never()
        } else if !self.inner.cached {
            Interest::sometimes()
        } else if self.inner.wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(if self.inner.cached {
            self.inner.max()
        } else {
            LevelFilter::TRACE
        })
    }
}

/// The hook's layer: turns an event into a guarded [`LogRecord`] and broadcasts it.
#[derive(Debug, Clone)]
pub struct HookLayer {
    inner: Arc<Inner>,
}

impl<S: Subscriber> Layer<S> for HookLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if self.inner.tx.receiver_count() == 0 {
            return;
        }
        let meta = event.metadata();
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        let record = LogRecord {
            level: *meta.level(),
            target: meta.target(),
            data: fields.0,
            listener: LISTENER.try_with(|id| *id).ok(),
        };
        // Err only when no listener is left: nobody to tell.
        let _ = self.inner.tx.send(Arc::new(record));
    }
}

/// Collects an event's fields as JSON, each string through [`guarded`].
struct Fields(Map<String, Value>);

impl Fields {
    fn text(&mut self, field: &Field, text: String) {
        let value = guarded(field.name(), text);
        self.0.insert(field.name().to_owned(), Value::String(value));
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        match serde_json::Number::from_f64(value) {
            Some(n) => {
                self.0.insert(field.name().to_owned(), Value::Number(n));
            }
            None => self.text(field, value.to_string()),
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_owned());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format!("{value:?}"));
    }
}

/// `text` if the secrets guard passes it; otherwise a note of what was withheld. A value
/// over [`MAX_VALUE_BYTES`] is withheld unread.
fn guarded(field: &str, text: String) -> String {
    if text.len() > MAX_VALUE_BYTES {
        return format!("[omitted: {} bytes]", text.len());
    }
    match guard::check_text(field, &text) {
        Ok(()) => text,
        Err(refused) => format!("[REDACTED: {}]", refused.kind.as_str()),
    }
}

/// One consumer of the hook (an MCP session). Dropping it ends its [`Records`] and withdraws
/// its level.
#[derive(Debug)]
pub struct Listener {
    inner: Arc<Inner>,
    id: u64,
    state: Arc<ListenerState>,
}

#[derive(Debug)]
struct ListenerState {
    level: AtomicU8,
    closed: CancellationToken,
}

impl Listener {
    /// The least severe level this listener receives; [`LevelFilter::OFF`] for none.
    pub fn set_level(&self, level: LevelFilter) {
        self.state.level.store(encode(level), Ordering::Relaxed);
        let wanted = (level != LevelFilter::OFF).then_some(level);
        self.inner.update(self.id, wanted);
    }

    /// The records for this listener from now on, until it is dropped.
    pub fn records(&self) -> Records {
        Records {
            rx: self.inner.tx.subscribe(),
            id: self.id,
            state: Arc::clone(&self.state),
            inner: Arc::clone(&self.inner),
        }
    }

    /// Runs `future` with its events (on its own task, not on tasks it spawns) attributed to
    /// this listener: other listeners do not see them.
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        LISTENER.scope(self.id, future)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.state.closed.cancel();
        self.inner.update(self.id, None);
    }
}

/// The receiving end of a [`Listener`]: its level and attribution applied.
#[derive(Debug)]
pub struct Records {
    rx: broadcast::Receiver<Arc<LogRecord>>,
    id: u64,
    state: Arc<ListenerState>,
    inner: Arc<Inner>,
}

impl Records {
    /// The next record for this listener; `None` once the listener is dropped.
    pub async fn next(&mut self) -> Option<Next> {
        loop {
            let received = tokio::select! {
                biased;
                () = self.state.closed.cancelled() => return None,
                received = self.rx.recv() => received,
            };
            match received {
                Ok(record) if self.wants(&record) => return Some(Next::Record(record)),
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    self.inner.dropped.fetch_add(n, Ordering::Relaxed);
                    return Some(Next::Dropped(n));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    fn wants(&self, record: &LogRecord) -> bool {
        record.listener.is_none_or(|id| id == self.id)
            && record.level <= decode(self.state.level.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
#[path = "hook_tests.rs"]
mod tests;
