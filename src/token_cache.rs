//! The GetAuthorizationToken cache.
//!
//! Tokens are cached per registry (the caller's default registry under its own
//! key) and served while they stay valid for at least `min_ttl`, so every
//! caller receives a token good for at least that long. Concurrent misses for
//! one key share one upstream call (single flight), and a request naming
//! several registries fetches only the missing ones, in one call. A token that
//! arrives already inside `min_ttl` is returned but not cached. When a refresh
//! fails while the cached token is still valid for [`STALE_GRACE`], that token
//! is served and the failure logged.
//!
//! The cache holds at most [`MAX_ENTRIES`] registries (callers may name any
//! 12-digit id, so the set of keys is the callers' to choose). When a new
//! registry would pass the cap, entries that can no longer be served — not
//! even as a stale fallback — are dropped first; if that is not enough, the
//! least recently used tenth goes. The default registry and registries with
//! a fetch under way are never evicted.
//!
//! The upstream call runs in its own task, so a caller that goes away does not
//! waste a fetch other callers are waiting for. The lock is a std `Mutex`
//! never held across `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::time::Instant;

use crate::error::{Error, UpstreamError, UpstreamErrorKind};
use crate::metrics::{Metrics, TokenEvent};
use crate::model::Action;
use crate::pb::AuthorizationData;

mod answer;
mod eviction;

use answer::{assign, remaining_validity};

/// A cached token still valid for this long is served when a refresh fails.
pub const STALE_GRACE: Duration = Duration::from_secs(5 * 60);

/// Most registries cached at once. A deployment addresses a handful; a
/// token entry is a few KiB, so the cap bounds the cache to a few MiB.
pub const MAX_ENTRIES: usize = 1024;

/// Where tokens come from: ECR in production, a counting double in tests.
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches tokens for `registry_ids` (empty: the default registry).
    fn fetch(
        &self,
        registry_ids: Vec<String>,
    ) -> BoxFuture<'static, Result<Vec<AuthorizationData>, Error>>;
}

/// Cache key: one registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// The caller's default registry (no registry id in the request).
    Default,
    /// An explicit 12-digit registry id.
    Registry(String),
}

/// The cache's counters (kept in [`Metrics`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Keys answered from the cache.
    pub hits: u64,
    /// Keys that needed an upstream answer.
    pub misses: u64,
    /// Upstream calls made.
    pub fetches: u64,
    /// Upstream calls that failed.
    pub fetch_failures: u64,
    /// Times a still-valid token was served because a refresh failed.
    pub stale_served: u64,
}

type FetchResult = Result<Arc<HashMap<Key, Vec<AuthorizationData>>>, Error>;
type Flight = Shared<BoxFuture<'static, FetchResult>>;

#[derive(Clone)]
struct Cached {
    data: Vec<AuthorizationData>,
    valid_until: Instant,
}

struct Slot {
    cached: Option<Cached>,
    inflight: Option<Flight>,
    /// When a request last asked for this registry (eviction order).
    last_used: Instant,
}

impl Slot {
    fn new(now: Instant) -> Self {
        Self {
            cached: None,
            inflight: None,
            last_used: now,
        }
    }
}

struct Inner {
    source: Arc<dyn TokenSource>,
    min_ttl: Duration,
    max_entries: usize,
    slots: Mutex<HashMap<Key, Slot>>,
    metrics: Arc<Metrics>,
}

/// The token cache; cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

/// What one request needs for one key.
enum Plan {
    Ready(Vec<AuthorizationData>),
    Wait {
        flight: Flight,
        stale: Option<Cached>,
    },
}

impl TokenCache {
    /// A cache serving tokens valid for at least `min_ttl`, counting its
    /// events in `metrics`.
    pub fn new(source: Arc<dyn TokenSource>, min_ttl: Duration, metrics: Arc<Metrics>) -> Self {
        Self::with_max_entries(source, min_ttl, MAX_ENTRIES, metrics)
    }

    /// [`new`](Self::new) holding at most `max_entries` (at least 1)
    /// registries.
    pub fn with_max_entries(
        source: Arc<dyn TokenSource>,
        min_ttl: Duration,
        max_entries: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                min_ttl,
                max_entries: max_entries.max(1),
                slots: Mutex::new(HashMap::new()),
                metrics,
            }),
        }
    }

    /// Registries held (cached or being fetched).
    pub fn entries(&self) -> usize {
        self.inner.slots.lock().expect("token cache lock").len()
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let count = |event| self.inner.metrics.token_events(event);
        Stats {
            hits: count(TokenEvent::Hit),
            misses: count(TokenEvent::Miss),
            fetches: count(TokenEvent::Refresh),
            fetch_failures: count(TokenEvent::RefreshFailure),
            stale_served: count(TokenEvent::StaleServed),
        }
    }

    /// Tokens for `registry_ids` (empty: the default registry), in request
    /// order.
    pub async fn get(&self, registry_ids: &[String]) -> Result<Vec<AuthorizationData>, Error> {
        let keys = keys_for(registry_ids);
        let plans = self.plan(&keys);
        let mut out = Vec::with_capacity(keys.len());
        for (key, plan) in keys.iter().zip(plans) {
            match plan {
                Plan::Ready(data) => out.extend(data),
                Plan::Wait { flight, stale } => match flight.await {
                    Ok(fetched) => out.extend(fetched.get(key).cloned().unwrap_or_default()),
                    Err(err) => out.extend(self.stale_or(err, key, stale)?),
                },
            }
        }
        Ok(out)
    }

    /// Under the lock: serve what is fresh, join flights under way, and start
    /// one flight for every key left.
    fn plan(&self, keys: &[Key]) -> Vec<Plan> {
        let now = Instant::now();
        let mut slots = self.inner.slots.lock().expect("token cache lock");
        let mut missing = Vec::new();
        let mut plans: Vec<Option<Plan>> = Vec::with_capacity(keys.len());
        // Room first, for every new key at once: evicting while the loop
        // creates slots could drop one this request just created.
        let new_keys = keys.iter().filter(|k| !slots.contains_key(*k)).count();
        eviction::make_room(&mut slots, now, new_keys, &self.inner);
        for key in keys {
            let slot = slots.entry(key.clone()).or_insert_with(|| Slot::new(now));
            slot.last_used = now;
            let fresh = slot
                .cached
                .as_ref()
                .filter(|c| c.valid_until.saturating_duration_since(now) >= self.inner.min_ttl);
            if let Some(cached) = fresh {
                self.inner.metrics.token_event(TokenEvent::Hit);
                plans.push(Some(Plan::Ready(cached.data.clone())));
            } else if let Some(flight) = &slot.inflight {
                self.inner.metrics.token_event(TokenEvent::Miss);
                plans.push(Some(Plan::Wait {
                    flight: flight.clone(),
                    stale: slot.cached.clone(),
                }));
            } else {
                self.inner.metrics.token_event(TokenEvent::Miss);
                missing.push(key.clone());
                plans.push(None);
            }
        }
        if !missing.is_empty() {
            let flight = self.start_flight(missing.clone());
            for key in &missing {
                slots.get_mut(key).expect("slot created above").inflight = Some(flight.clone());
            }
            for (key, plan) in keys.iter().zip(plans.iter_mut()) {
                if plan.is_none() {
                    *plan = Some(Plan::Wait {
                        flight: flight.clone(),
                        stale: slots.get(key).and_then(|s| s.cached.clone()),
                    });
                }
            }
        }
        drop(slots);
        plans
            .into_iter()
            .map(|p| p.expect("every key planned"))
            .collect()
    }

    /// Spawns the upstream call for `keys`; the task files the answer into the
    /// cache itself, so it completes even if every waiter goes away.
    fn start_flight(&self, keys: Vec<Key>) -> Flight {
        let inner = Arc::clone(&self.inner);
        let orphaned = Arc::clone(&self.inner);
        let flight_keys = keys.clone();
        let task = tokio::spawn(async move {
            let registry_ids = keys
                .iter()
                .filter_map(|k| match k {
                    Key::Registry(id) => Some(id.clone()),
                    Key::Default => None,
                })
                .collect();
            let result = inner.source.fetch(registry_ids).await;
            inner.file(&keys, result)
        });
        async move {
            match task.await {
                Ok(result) => result,
                Err(_) => {
                    // The fetch panicked (or the runtime is going away): its
                    // flight must not stay attached to these registries.
                    orphaned.file(&flight_keys, Err(fetch_died()))
                }
            }
        }
        .boxed()
        .shared()
    }

    fn stale_or(
        &self,
        err: Error,
        key: &Key,
        stale: Option<Cached>,
    ) -> Result<Vec<AuthorizationData>, Error> {
        let still_valid = stale
            .filter(|c| c.valid_until.saturating_duration_since(Instant::now()) >= STALE_GRACE);
        match still_valid {
            Some(cached) => {
                tracing::warn!(registry = ?key, error = %err, "token refresh failed; serving the cached token while it stays valid");
                self.inner.metrics.token_event(TokenEvent::StaleServed);
                Ok(cached.data)
            }
            None => Err(err),
        }
    }
}

impl Inner {
    /// Files an upstream answer: caches what stays valid for `min_ttl` and
    /// clears the flights of `keys`.
    fn file(&self, keys: &[Key], result: Result<Vec<AuthorizationData>, Error>) -> FetchResult {
        self.metrics.token_event(TokenEvent::Refresh);
        if result.is_err() {
            self.metrics.token_event(TokenEvent::RefreshFailure);
        }
        let by_key = result.map(|data| assign(keys, data));
        let now = Instant::now();
        let mut slots = self.slots.lock().expect("token cache lock");
        for key in keys {
            let slot = slots.entry(key.clone()).or_insert_with(|| Slot::new(now));
            slot.inflight = None;
            let data = by_key.as_ref().ok().and_then(|by_key| by_key.get(key));
            let Some(data) = data else {
                // Nothing to keep: no entry per registry id ever asked for.
                if slot.cached.is_none() {
                    slots.remove(key);
                }
                continue;
            };
            let valid_until = now + remaining_validity(data);
            if valid_until.saturating_duration_since(now) >= self.min_ttl {
                slot.cached = Some(Cached {
                    data: data.clone(),
                    valid_until,
                });
            } else {
                tracing::debug!(registry = ?key, "token arrived inside the minimum ttl; not cached");
            }
        }
        by_key.map(Arc::new)
    }
}

fn fetch_died() -> Error {
    tracing::error!("the authorization-token fetch task died");
    Error::Upstream(UpstreamError {
        action: Action::GetAuthorizationToken.name(),
        kind: UpstreamErrorKind::Other,
        request_id: None,
    })
}

fn keys_for(registry_ids: &[String]) -> Vec<Key> {
    if registry_ids.is_empty() {
        return vec![Key::Default];
    }
    let mut keys: Vec<Key> = Vec::with_capacity(registry_ids.len());
    for id in registry_ids {
        let key = Key::Registry(id.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

#[cfg(test)]
mod tests;
