//! The calls whose unary answer is ready but not yet taken by their client,
//! oldest first, and their cap.
//!
//! Why: such a call gives its global slot back (its work is done, see
//! `Slot::answer_ready`), so the global limit no longer bounds how many
//! answers wait in memory for clients that do not read — only the
//! connection caps would (`--max-connections` × per-connection cap, 128,000
//! at the defaults). Past the cap, the oldest waiting answer's call is ended
//! and its connection closed: its client has gone longest without reading,
//! and a client that reads takes its answer within milliseconds, so under a
//! flood of unread answers it is the flood that is cut, and the global slots
//! stay free for the others.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::{Inner, Slot, lock};

pub(super) struct UnsentShared {
    entries: Mutex<BTreeMap<u64, Weak<Inner>>>,
    next_id: AtomicU64,
    cap: usize,
}

/// A call's place among the waiting answers (removed when the call ends).
pub(super) type UnsentEntry = (Weak<UnsentShared>, u64);

/// The waiting answers of one server.
#[derive(Clone)]
pub(crate) struct Unsent(Arc<UnsentShared>);

impl std::fmt::Debug for Unsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsent")
            .field("cap", &self.0.cap)
            .finish_non_exhaustive()
    }
}

impl Unsent {
    /// At most `cap` answers wait at once.
    pub(crate) fn new(cap: usize) -> Self {
        Unsent(Arc::new(UnsentShared {
            entries: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            cap: cap.max(1),
        }))
    }

    /// Adds `slot`'s answer, ending the oldest waiting calls past the cap.
    pub(super) fn push(&self, slot: &Slot) {
        let shared = &self.0;
        let key = shared.next_id.fetch_add(1, Ordering::Relaxed);
        *lock(&slot.0.unsent) = Some((Arc::downgrade(shared), key));
        let evicted: Vec<_> = {
            let mut entries = lock(&shared.entries);
            entries.insert(key, Arc::downgrade(&slot.0));
            let excess = entries.len().saturating_sub(shared.cap);
            (0..excess)
                .filter_map(|_| entries.pop_first().map(|(_, call)| call))
                .collect()
        };
        // Ended outside the lock: ending a call removes it from the map.
        for call in evicted.iter().filter_map(Weak::upgrade) {
            Slot(call).expire("too many answers wait for clients that do not read; closing the connection of the oldest");
        }
        // A call that ended meanwhile must not stay in the map.
        if lock(&slot.0.ending).is_none() {
            lock(&shared.entries).remove(&key);
        }
    }

    /// Removes an ended call's entry.
    pub(super) fn forget(entry: UnsentEntry) {
        if let Some(shared) = entry.0.upgrade() {
            lock(&shared.entries).remove(&entry.1);
        }
    }

    /// Answers waiting (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        lock(&self.0.entries).len()
    }
}
