//! Keeping the token cache under its cap: which registries go when a new
//! one arrives and the cache is full.

use std::collections::HashMap;

use tokio::time::Instant;

use super::{Inner, Key, STALE_GRACE, Slot};

/// Makes room for `new_keys` more registries when the cache is full: drops the
/// entries nothing can be served from, then, if still full, the least
/// recently used tenth. Never the default registry or one being fetched
/// (its flight files into the slot), so in-flight fetches — bounded by
/// the concurrent RPCs — may briefly take the count past the cap.
pub(super) fn make_room(
    slots: &mut HashMap<Key, Slot>,
    now: Instant,
    new_keys: usize,
    cache: &Inner,
) {
    let (max_entries, min_ttl) = (cache.max_entries, cache.min_ttl);
    if slots.len() + new_keys <= max_entries {
        return;
    }
    // Below this a token is neither served fresh nor as a stale fallback.
    let useful = min_ttl.min(STALE_GRACE);
    let evictable = |key: &Key, slot: &Slot| slot.inflight.is_none() && *key != Key::Default;
    slots.retain(|key, slot| {
        !evictable(key, slot)
            || slot
                .cached
                .as_ref()
                .is_some_and(|c| c.valid_until.saturating_duration_since(now) >= useful)
    });
    if slots.len() + new_keys <= max_entries {
        return;
    }
    // Down to 90 % of the cap at once, so a flood of new registries
    // pays for one scan per tenth of the cap rather than per registry.
    let target = max_entries.saturating_sub((max_entries / 10).max(new_keys));
    let mut candidates: Vec<(Instant, Key)> = slots
        .iter()
        .filter(|(key, slot)| evictable(key, slot))
        .map(|(key, slot)| (slot.last_used, key.clone()))
        .collect();
    let excess = slots.len().saturating_sub(target).min(candidates.len());
    if excess == 0 {
        return;
    }
    candidates.select_nth_unstable_by_key(excess - 1, |(used, _)| *used);
    for (_, key) in &candidates[..excess] {
        slots.remove(key);
    }
    tracing::debug!(
        evicted = excess,
        "token cache full; least recently used registries evicted"
    );
}
