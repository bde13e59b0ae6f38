//! One call's slot — what it holds (the global, per-connection and
//! per-caller permits) and how it ends, exactly once — and the watchdog that
//! ends calls whose deadline passed (by [`SEND_GRACE`]) while nobody polls
//! them.
//!
//! Why a watchdog: once a handler has answered, hyper polls the response
//! body only when the client's flow-control window has room. A client that
//! advertises a zero window (or never reads) leaves the body unpolled
//! forever, so nothing inside the body can notice the deadline; without an
//! outside timer its permits would never come back. The watchdog is one task
//! per server, sleeping until the earliest deadline of the calls it watches
//! (a spawned timer per call would cost a task spawn and abort on every
//! call, where this costs two `BTreeMap` operations).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant as StdInstant};

use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;
use tracing::{Span, field};

use crate::listener::ConnInfo;
use crate::metrics::Metrics;

mod unsent;
pub(crate) use unsent::Unsent;

/// What one call holds until it ends, and what ending it records.
pub(crate) struct Ending {
    pub span: Span,
    pub start: StdInstant,
    pub method: &'static str,
    pub stream: bool,
    pub metrics: Arc<Metrics>,
    pub _global: Option<OwnedSemaphorePermit>,
    pub _connection: Option<OwnedSemaphorePermit>,
    /// Held for the call by a layer inside this one (the caller's share of
    /// `caller_share`), released when the call ends (the global permit may
    /// go earlier, see [`Slot::answer_ready`]).
    pub caller: Option<Box<dyn Send + Sync>>,
    /// The connection the call came on (closed when its client does not
    /// take the answer by the deadline).
    pub conn: Option<ConnInfo>,
}

impl Ending {
    fn finish(self, code: tonic::Code) {
        let elapsed = self.start.elapsed();
        self.metrics
            .rpc_finished(self.method, code, elapsed, self.stream);
        self.span.record("code", field::debug(code));
        self.span
            .record("latency_ms", elapsed.as_secs_f64() * 1000.0);
        match code {
            // Probes call every few seconds per pod: their successes are
            // debug-level noise.
            tonic::Code::Ok if self.method.starts_with("/grpc.health.") => {
                tracing::debug!(parent: &self.span, "rpc finished")
            }
            tonic::Code::Ok => tracing::info!(parent: &self.span, "rpc finished"),
            _ => tracing::warn!(parent: &self.span, "rpc failed"),
        }
        // The permits go back here, when `self` drops.
    }
}

/// How long past its deadline a call's answer may still be waiting for the
/// client to read before the watchdog ends it. A client that reads gets the
/// answer — or the handler's own DEADLINE_EXCEEDED — well within it.
pub const SEND_GRACE: Duration = Duration::from_secs(1);

/// A call's place in the watchdog: the watchdog and the entry's key
/// (deadline, then a sequence number, as two calls may share a deadline).
type WatchEntry = (Weak<WatchShared>, (Instant, u64));

struct Inner {
    ending: Mutex<Option<Ending>>,
    /// `None` for health and reflection, which have no slot to lose.
    deadline: Option<Instant>,
    /// The request body failed: the client reset the stream or the
    /// connection broke mid-request.
    client_gone: AtomicBool,
    /// The watchdog ended the call at its deadline.
    expired: AtomicBool,
    /// The watchdog entry, removed when the call ends.
    watched: Mutex<Option<WatchEntry>>,
    /// The entry among the answers waiting for their client.
    unsent: Mutex<Option<unsent::UnsentEntry>>,
}

/// A handle on one call's slot (cheap to clone; request extensions carry
/// one so inner layers can attach their permits).
#[derive(Clone)]
pub struct Slot(Arc<Inner>);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("deadline", &self.0.deadline)
            .finish_non_exhaustive()
    }
}

impl Slot {
    pub(crate) fn new(ending: Ending, deadline: Option<Instant>) -> Self {
        Slot(Arc::new(Inner {
            ending: Mutex::new(Some(ending)),
            deadline,
            client_gone: AtomicBool::new(false),
            expired: AtomicBool::new(false),
            watched: Mutex::new(None),
            unsent: Mutex::new(None),
        }))
    }

    /// When the call must be over (`None`: health and reflection).
    pub fn deadline(&self) -> Option<Instant> {
        self.0.deadline
    }

    /// Holds the global `permit` until the call ends (released at once if
    /// it has).
    pub(crate) fn attach_global(&self, permit: OwnedSemaphorePermit) {
        if let Some(ending) = lock(&self.0.ending).as_mut() {
            ending._global = Some(permit);
        }
    }

    /// The call's unary answer is ready: its global permit goes back before
    /// the call ends, as what is left is sending bytes already in memory —
    /// no work the global limit bounds. A client that does not read (a zero
    /// receive window) then holds only its connection's slots and its
    /// caller's share; the send watchdog still ends the call and closes its
    /// connection, and `unsent` caps how many such answers wait at once.
    pub(crate) fn answer_ready(&self, unsent: &Unsent) {
        let permit = lock(&self.0.ending)
            .as_mut()
            .and_then(|ending| ending._global.take());
        drop(permit);
        unsent.push(self);
    }

    /// Holds `guard` until the call ends (released at once if it has).
    pub fn hold_until_end(&self, guard: impl Send + Sync + 'static) {
        if let Some(ending) = lock(&self.0.ending).as_mut() {
            ending.caller = Some(Box::new(guard));
        }
    }

    /// Notes that the client went away mid-request, so the call counts as
    /// CANCELLED whatever status tonic makes of the broken body.
    pub(crate) fn client_gone(&self) {
        self.0.client_gone.store(true, Ordering::Relaxed);
    }

    /// Whether the watchdog ended the call.
    pub(crate) fn expired(&self) -> bool {
        self.0.expired.load(Ordering::Acquire)
    }

    /// Ends the call with `code` (later calls are no-ops): the log line,
    /// the metrics, and every permit back.
    pub(crate) fn finish(&self, code: tonic::Code) {
        let Some(ending) = lock(&self.0.ending).take() else {
            return;
        };
        if let Some((watchdog, key)) = lock(&self.0.watched).take()
            && let Some(watchdog) = watchdog.upgrade()
        {
            lock(&watchdog.entries).remove(&key);
        }
        if let Some(entry) = lock(&self.0.unsent).take() {
            Unsent::forget(entry);
        }
        let client_failed = matches!(code, tonic::Code::Unknown | tonic::Code::Internal);
        let code = if client_failed && self.0.client_gone.load(Ordering::Relaxed) {
            tonic::Code::Cancelled
        } else {
            code
        };
        ending.finish(code);
    }

    /// The deadline passed while the answer was still being sent: the
    /// call's slots come back, and its connection is closed — hyper polls a
    /// response body only when the client's window has room, so the stream
    /// cannot be ended on its own while the client does not read.
    fn expire(&self, why: &'static str) {
        self.0.expired.store(true, Ordering::Release);
        let conn = lock(&self.0.ending).as_mut().and_then(|ending| {
            tracing::warn!(parent: &ending.span, "{why}");
            ending.conn.take()
        });
        self.finish(tonic::Code::DeadlineExceeded);
        if let Some(conn) = conn {
            conn.close();
        }
    }
}

/// Ends its call as CANCELLED when dropped before the call ended otherwise
/// (the response future or body was dropped: the client went away).
pub(crate) struct EndGuard(pub Slot);

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.0.finish(tonic::Code::Cancelled);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data
    // (each critical section is a single take/insert/remove).
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct WatchShared {
    entries: Mutex<BTreeMap<(Instant, u64), Weak<Inner>>>,
    next_id: AtomicU64,
    wake: Arc<Notify>,
    started: Once,
}

impl Drop for WatchShared {
    fn drop(&mut self) {
        // Lets the sweeper notice the server is gone and stop.
        self.wake.notify_one();
    }
}

/// Ends watched calls at their deadlines (one sweeper task per server).
#[derive(Clone)]
pub(crate) struct Watchdog(Arc<WatchShared>);

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog").finish_non_exhaustive()
    }
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog(Arc::new(WatchShared {
            entries: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            wake: Arc::new(Notify::new()),
            started: Once::new(),
        }))
    }
}

impl Watchdog {
    /// Ends `slot` at its deadline unless it ends before,
    /// or, when `send_by` is given, unless its answer is taken by then —
    /// each plus [`SEND_GRACE`].
    pub(crate) fn watch(&self, slot: &Slot, send_by: Option<Instant>) {
        let Some(deadline) = slot.0.deadline else {
            return;
        };
        let shared = &self.0;
        shared.started.call_once(|| {
            tokio::spawn(sweep(Arc::downgrade(shared), Arc::clone(&shared.wake)));
        });
        let until = send_by.map_or(deadline, |send_by| send_by.min(deadline));
        let key = (
            until + SEND_GRACE,
            shared.next_id.fetch_add(1, Ordering::Relaxed),
        );
        *lock(&slot.0.watched) = Some((Arc::downgrade(shared), key));
        let earliest = {
            let mut entries = lock(&shared.entries);
            entries.insert(key, Arc::downgrade(&slot.0));
            entries.first_key_value().map(|(first, _)| *first) == Some(key)
        };
        if earliest {
            shared.wake.notify_one();
        }
        // A call that ended meanwhile must not stay in the map.
        if lock(&slot.0.ending).is_none() {
            lock(&shared.entries).remove(&key);
        }
    }

    /// Calls being watched (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.0.entries).len()
    }
}

async fn sweep(shared: Weak<WatchShared>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let now = Instant::now();
            let mut due = Vec::new();
            let next = {
                let mut entries = lock(&shared.entries);
                while let Some(entry) = entries.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    due.push(entry.remove());
                }
                entries.first_key_value().map(|(key, _)| key.0)
            };
            for call in due.iter().filter_map(Weak::upgrade) {
                Slot(call)
                    .expire("the client did not take the answer in time; closing its connection");
            }
            next
        };
        match next {
            Some(at) => tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = wake.notified() => {}
            },
            None => wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    fn slot(metrics: &Arc<Metrics>, limiter: &Arc<Semaphore>, budget: Duration) -> Slot {
        let ending = Ending {
            span: Span::none(),
            start: StdInstant::now(),
            method: "unknown",
            stream: false,
            metrics: Arc::clone(metrics),
            _global: Some(Arc::clone(limiter).try_acquire_owned().unwrap()),
            _connection: None,
            caller: None,
            conn: None,
        };
        metrics.rpc_started(false);
        Slot::new(ending, Some(Instant::now() + budget))
    }

    #[tokio::test(start_paused = true)]
    async fn an_unpolled_call_gives_its_permit_back_at_its_deadline() {
        let metrics = Metrics::new();
        let limiter = Arc::new(Semaphore::new(2));
        let watchdog = Watchdog::default();
        let late = slot(&metrics, &limiter, Duration::from_secs(5));
        let early = slot(&metrics, &limiter, Duration::from_secs(1));
        watchdog.watch(&late, None);
        watchdog.watch(&early, None);
        assert_eq!(limiter.available_permits(), 0);
        tokio::time::sleep(Duration::from_millis(1500) + SEND_GRACE).await;
        assert!(early.expired() && !late.expired());
        assert_eq!(limiter.available_permits(), 1);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(late.expired());
        assert_eq!(limiter.available_permits(), 2);
        assert_eq!(watchdog.len(), 0);
        assert_eq!(metrics.rpcs_in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_not_taken_by_its_send_bound_is_ended_before_the_deadline() {
        let metrics = Metrics::new();
        let limiter = Arc::new(Semaphore::new(1));
        let watchdog = Watchdog::default();
        let call = slot(&metrics, &limiter, Duration::from_secs(60));
        watchdog.watch(&call, Some(Instant::now() + Duration::from_secs(1)));
        tokio::time::sleep(Duration::from_millis(900) + SEND_GRACE).await;
        assert!(!call.expired());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(call.expired());
        assert_eq!(limiter.available_permits(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_ends_first_is_forgotten_and_ends_once() {
        let metrics = Metrics::new();
        let limiter = Arc::new(Semaphore::new(1));
        let watchdog = Watchdog::default();
        let call = slot(&metrics, &limiter, Duration::from_secs(1));
        watchdog.watch(&call, None);
        call.finish(tonic::Code::Ok);
        assert_eq!(watchdog.len(), 0);
        assert_eq!(limiter.available_permits(), 1);
        tokio::time::sleep(Duration::from_secs(2) + SEND_GRACE).await;
        assert!(!call.expired());
        drop(EndGuard(call.clone()));
        assert_eq!(metrics.rpcs_in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answered_call_gives_its_global_permit_back_but_stays_watched() {
        let metrics = Metrics::new();
        let limiter = Arc::new(Semaphore::new(1));
        let connection = Arc::new(Semaphore::new(1));
        let watchdog = Watchdog::default();
        let unsent = Unsent::new(8);
        let call = slot(&metrics, &limiter, Duration::from_secs(60));
        if let Some(ending) = lock(&call.0.ending).as_mut() {
            ending._connection = Some(Arc::clone(&connection).try_acquire_owned().unwrap());
        }
        watchdog.watch(&call, Some(Instant::now() + Duration::from_secs(1)));
        call.answer_ready(&unsent);
        // Another call can start while the answer waits for its client...
        assert_eq!(limiter.available_permits(), 1);
        // ...but the connection's slot and the call itself are still held.
        assert_eq!(connection.available_permits(), 0);
        assert_eq!(metrics.rpcs_in_flight(), 1);
        assert_eq!(unsent.len(), 1);
        tokio::time::sleep(Duration::from_millis(1100) + SEND_GRACE).await;
        assert!(call.expired());
        assert_eq!(connection.available_permits(), 1);
        assert_eq!(metrics.rpcs_in_flight(), 0);
        assert_eq!(unsent.len(), 0);
    }

    #[tokio::test]
    async fn past_the_cap_the_oldest_waiting_answer_is_ended() {
        let metrics = Metrics::new();
        let limiter = Arc::new(Semaphore::new(3));
        let unsent = Unsent::new(2);
        let calls: Vec<_> = (0..3)
            .map(|_| slot(&metrics, &limiter, Duration::from_secs(60)))
            .collect();
        calls[0].answer_ready(&unsent);
        calls[1].answer_ready(&unsent);
        assert!(!calls[0].expired());
        calls[2].answer_ready(&unsent);
        assert!(calls[0].expired());
        assert!(!calls[1].expired() && !calls[2].expired());
        assert_eq!(unsent.len(), 2);
        assert_eq!(metrics.rpcs_in_flight(), 2);
        // An answer taken leaves the queue.
        calls[1].finish(tonic::Code::Ok);
        assert_eq!(unsent.len(), 1);
        assert_eq!(limiter.available_permits(), 3);
    }

    #[tokio::test]
    async fn a_broken_request_body_counts_as_cancelled() {
        let metrics = Metrics::new();
        let limiter = Arc::new(Semaphore::new(1));
        let call = slot(&metrics, &limiter, Duration::from_secs(1));
        call.client_gone();
        call.finish(tonic::Code::Unknown);
        let text = metrics.encode();
        assert!(
            text.contains(r#"ecr_facade_rpc_requests_total{method="unknown",code="Cancelled"} 1"#),
            "{text}"
        );
    }
}
