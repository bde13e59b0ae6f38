//! The cache stays under its cap whatever registries callers name: expired
//! entries go first, then the least recently used.

use super::*;

fn registry(i: usize) -> String {
    format!("{i:012}")
}

/// Asks for `ids` and returns how many upstream calls that took.
async fn fetches_for(cache: &TokenCache, source: &FakeSource, ids: &[String]) -> usize {
    let before = source.calls();
    cache.get(ids).await.unwrap();
    source.calls() - before
}

#[tokio::test(start_paused = true)]
async fn fifty_thousand_registries_stay_under_the_cap() {
    let source = FakeSource::new(12 * HOUR);
    let cache = TokenCache::new(source.clone(), MIN_TTL, Metrics::new());
    cache.get(&[]).await.unwrap();
    let ids: Vec<String> = (0..50_000).map(registry).collect();
    // Ten registries a request, ECR's most.
    for chunk in ids.chunks(10) {
        cache.get(chunk).await.unwrap();
        assert!(
            cache.entries() <= MAX_ENTRIES,
            "{} entries",
            cache.entries()
        );
    }
    assert!(
        cache.entries() > MAX_ENTRIES / 2,
        "the cap is used, not emptied"
    );
    // The default registry is never evicted; the flood's oldest ids are.
    assert_eq!(fetches_for(&cache, &source, &[]).await, 0);
    assert_eq!(fetches_for(&cache, &source, &ids[..1]).await, 1);
    assert_eq!(fetches_for(&cache, &source, &ids[49_999..]).await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_cache_evicts_the_least_recently_used() {
    let source = FakeSource::new(12 * HOUR);
    let cache = TokenCache::with_max_entries(source.clone(), MIN_TTL, 10, Metrics::new());
    for i in 0..10 {
        cache.get(&[registry(i)]).await.unwrap();
    }
    assert_eq!(cache.entries(), 10);
    // Registry 0 is used again: registry 1 is now the least recently used.
    assert_eq!(fetches_for(&cache, &source, &[registry(0)]).await, 0);
    assert_eq!(fetches_for(&cache, &source, &[registry(10)]).await, 1);
    assert_eq!(cache.entries(), 10);
    assert_eq!(fetches_for(&cache, &source, &[registry(0)]).await, 0);
    assert_eq!(fetches_for(&cache, &source, &[registry(2)]).await, 0);
    assert_eq!(fetches_for(&cache, &source, &[registry(1)]).await, 1);
}

#[tokio::test(start_paused = true)]
async fn expired_entries_go_before_live_ones() {
    let source = FakeSource::new(12 * HOUR);
    let cache = TokenCache::with_max_entries(source.clone(), MIN_TTL, 10, Metrics::new());
    for i in 0..5 {
        cache.get(&[registry(i)]).await.unwrap();
    }
    // The five most recently used expire first.
    *source.validity.lock().unwrap() = 7 * HOUR;
    for i in 5..10 {
        cache.get(&[registry(i)]).await.unwrap();
    }
    tokio::time::advance(7 * HOUR + Duration::from_secs(1)).await;
    cache.get(&[registry(10)]).await.unwrap();
    // LRU alone would have dropped one entry (registry 0); dropping what
    // can no longer be served frees five and keeps the older live tokens,
    // which still serve as a stale fallback.
    assert_eq!(cache.entries(), 6);
    source.fail(true);
    for i in 0..5 {
        let served = cache.get(&[registry(i)]).await.unwrap();
        assert_eq!(
            tokens(&served),
            [format!("token-{}-{}", registry(i), i + 1)]
        );
    }
    assert_eq!(cache.stats().stale_served, 5);
}
