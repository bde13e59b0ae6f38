use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use prost_types::Timestamp;

use super::*;
use crate::error::UpstreamErrorKind;
use answer::registry_of_endpoint;

const HOUR: Duration = Duration::from_secs(3600);
const MIN_TTL: Duration = Duration::from_secs(6 * 3600);

/// A token source that counts calls, answers after `delay`, and gives tokens
/// valid for `validity` from the (real) wall clock at answer time.
struct FakeSource {
    calls: AtomicUsize,
    asked: Mutex<Vec<Vec<String>>>,
    validity: Mutex<Duration>,
    failing: Mutex<bool>,
    delay: Duration,
}

impl FakeSource {
    fn new(validity: Duration) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            asked: Mutex::new(Vec::new()),
            validity: Mutex::new(validity),
            failing: Mutex::new(false),
            delay: Duration::from_millis(50),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn fail(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }
}

fn token_for(registry: &str, serial: usize, validity: Duration) -> AuthorizationData {
    let expiry = SystemTime::now() + validity;
    let since_epoch = expiry.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    AuthorizationData {
        authorization_token: Some(format!("token-{registry}-{serial}")),
        expires_at: Some(Timestamp {
            seconds: since_epoch.as_secs() as i64,
            nanos: 0,
        }),
        proxy_endpoint: Some(format!(
            "https://{registry}.dkr.ecr.us-east-1.amazonaws.com"
        )),
    }
}

impl TokenSource for FakeSource {
    fn fetch(
        &self,
        registry_ids: Vec<String>,
    ) -> BoxFuture<'static, Result<Vec<AuthorizationData>, Error>> {
        let serial = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.asked.lock().unwrap().push(registry_ids.clone());
        let validity = *self.validity.lock().unwrap();
        let failing = *self.failing.lock().unwrap();
        let delay = self.delay;
        async move {
            tokio::time::sleep(delay).await;
            if failing {
                return Err(Error::Upstream(UpstreamError {
                    action: "GetAuthorizationToken",
                    kind: UpstreamErrorKind::Unreachable,
                    request_id: None,
                }));
            }
            let ids = if registry_ids.is_empty() {
                vec!["123456789012".to_owned()]
            } else {
                registry_ids
            };
            Ok(ids
                .iter()
                .map(|id| token_for(id, serial, validity))
                .collect())
        }
        .boxed()
    }
}

fn tokens(data: &[AuthorizationData]) -> Vec<String> {
    data.iter()
        .map(|d| d.authorization_token.clone().unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_fresh_token_is_served_from_the_cache() {
    let source = FakeSource::new(12 * HOUR);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    let first = cache.get(&[]).await.unwrap();
    let second = cache.get(&[]).await.unwrap();
    assert_eq!(tokens(&first), tokens(&second));
    assert_eq!(source.calls(), 1);
    assert_eq!(cache.stats().hits, 1);
    assert_eq!(cache.stats().misses, 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_make_one_upstream_call() {
    let source = FakeSource::new(12 * HOUR);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    let calls = (0..50).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get(&[]).await })
    });
    let results = futures::future::join_all(calls).await;
    for result in results {
        assert_eq!(tokens(&result.unwrap().unwrap()), ["token-123456789012-1"]);
    }
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_token_inside_the_min_ttl_is_refreshed() {
    let source = FakeSource::new(12 * HOUR);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    cache.get(&[]).await.unwrap();
    // 5h59m later the token still has 6h01m: served from the cache.
    tokio::time::advance(6 * HOUR - Duration::from_secs(61)).await;
    assert_eq!(
        tokens(&cache.get(&[]).await.unwrap()),
        ["token-123456789012-1"]
    );
    assert_eq!(source.calls(), 1);
    // Past 6h it has less than the min ttl left: fetched anew.
    tokio::time::advance(Duration::from_secs(120)).await;
    assert_eq!(
        tokens(&cache.get(&[]).await.unwrap()),
        ["token-123456789012-2"]
    );
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_returned_but_not_cached() {
    // moto answers tokens that expired in 2015.
    let source = FakeSource::new(Duration::ZERO);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    assert_eq!(
        tokens(&cache.get(&[]).await.unwrap()),
        ["token-123456789012-1"]
    );
    assert_eq!(
        tokens(&cache.get(&[]).await.unwrap()),
        ["token-123456789012-2"]
    );
    assert_eq!(source.calls(), 2);
    // Likewise a token valid for less than the min ttl on arrival.
    *source.validity.lock().unwrap() = 5 * HOUR;
    cache.get(&[]).await.unwrap();
    cache.get(&[]).await.unwrap();
    assert_eq!(source.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_serves_the_cached_token_while_it_stays_valid() {
    let source = FakeSource::new(12 * HOUR);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    cache.get(&[]).await.unwrap();
    source.fail(true);
    // 11h50m in: 10 minutes of validity left, inside the min ttl.
    tokio::time::advance(12 * HOUR - Duration::from_secs(600)).await;
    assert_eq!(
        tokens(&cache.get(&[]).await.unwrap()),
        ["token-123456789012-1"]
    );
    assert_eq!(cache.stats().stale_served, 1);
    assert_eq!(cache.stats().fetch_failures, 1);
    // With under 5 minutes left the failure is the caller's answer.
    tokio::time::advance(Duration::from_secs(360)).await;
    let err = cache.get(&[]).await.unwrap_err();
    assert!(matches!(err, Error::Upstream(_)));
    // Once the upstream recovers, a fresh token is cached again.
    source.fail(false);
    assert_eq!(
        tokens(&cache.get(&[]).await.unwrap()),
        ["token-123456789012-4"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_without_a_cached_token_is_returned() {
    let source = FakeSource::new(12 * HOUR);
    source.fail(true);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    assert!(cache.get(&[]).await.is_err());
    assert!(cache.get(&[]).await.is_err());
    assert_eq!(source.calls(), 2, "failures are not cached");
}

#[tokio::test(start_paused = true)]
async fn several_registries_fetch_only_the_missing_ones() {
    let source = FakeSource::new(12 * HOUR);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    let a = "111111111111".to_owned();
    let b = "222222222222".to_owned();
    let c = "333333333333".to_owned();
    cache.get(std::slice::from_ref(&a)).await.unwrap();
    let got = cache
        .get(&[a.clone(), b.clone(), c.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(
        tokens(&got),
        [
            "token-111111111111-1",
            "token-222222222222-2",
            "token-333333333333-2"
        ]
    );
    assert_eq!(
        *source.asked.lock().unwrap(),
        [vec![a.clone()], vec![b.clone(), c.clone()]]
    );
    // The default registry has a key of its own.
    cache.get(&[]).await.unwrap();
    assert_eq!(source.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn overlapping_requests_share_flights_per_registry() {
    let source = FakeSource::new(12 * HOUR);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    let first = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get(&["111111111111".to_owned(), "222222222222".to_owned()])
                .await
        })
    };
    tokio::task::yield_now().await;
    let second = cache
        .get(&["222222222222".to_owned(), "333333333333".to_owned()])
        .await
        .unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(source.calls(), 2);
    assert_eq!(
        tokens(&second),
        ["token-222222222222-1", "token-333333333333-2"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_goes_away_does_not_cancel_the_shared_fetch() {
    let source = FakeSource::new(12 * HOUR);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    let abandoned = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get(&[]).await })
    };
    tokio::task::yield_now().await;
    abandoned.abort();
    tokio::time::advance(Duration::from_secs(1)).await;
    cache.get(&[]).await.unwrap();
    assert_eq!(source.calls(), 1);
}

#[test]
fn proxy_endpoints_name_their_registry() {
    assert_eq!(
        registry_of_endpoint("https://123456789012.dkr.ecr.us-east-1.amazonaws.com"),
        Some("123456789012")
    );
    assert_eq!(registry_of_endpoint("http://127.0.0.1:5000"), None);
}

#[tokio::test(start_paused = true)]
async fn failed_fetches_leave_no_entry_behind() {
    let source = FakeSource::new(12 * HOUR);
    source.fail(true);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    for i in 0..20 {
        let id = format!("{:012}", 100_000 + i);
        assert!(cache.get(&[id]).await.is_err());
    }
    assert_eq!(cache.inner.slots.lock().unwrap().len(), 0);
}

/// A source whose fetch panics once, then answers.
struct PanicsOnce(AtomicUsize);

impl TokenSource for PanicsOnce {
    fn fetch(&self, _: Vec<String>) -> BoxFuture<'static, Result<Vec<AuthorizationData>, Error>> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        async move {
            assert!(n > 0, "a bug in the first fetch");
            Ok(vec![token_for("123456789012", n, 12 * HOUR)])
        }
        .boxed()
    }
}

#[tokio::test]
async fn a_fetch_that_panics_does_not_poison_its_registry() {
    let source = Arc::new(PanicsOnce(AtomicUsize::new(0)));
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    assert!(cache.get(&[]).await.is_err());
    let data = cache
        .get(&[])
        .await
        .expect("a new fetch after the dead one");
    assert_eq!(tokens(&data), ["token-123456789012-1"]);
    assert_eq!(source.0.load(Ordering::SeqCst), 2);
}

mod bounded;
