//! Pushes that can be resumed: after each part ECR accepts, a push records
//! its upload id, the bytes committed and the sha256 state over exactly
//! those bytes. A caller whose stream broke sends a header with the upload id
//! and continues from the committed byte; the facade goes on hashing from the
//! recorded state, so a resumed push is checked over all its bytes like one
//! that never broke. The table lives in the replica's memory (only that
//! replica can resume the push), holds at most [`CAPACITY`] pushes and
//! forgets one after [`TTL`].
//!
//! A push *leases* its entry while its stream runs: a second stream naming
//! the same upload is told to retry rather than race it, and when the
//! stream ends in any way short of completion the lease is released with
//! the last recorded checkpoint in place — a resumed push that breaks again
//! before its next part can be resumed again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::Sha256;
use tokio::time::Instant;

/// Most resumable pushes remembered at once; the oldest goes first.
pub const CAPACITY: usize = 1024;
/// How long a broken push can be resumed.
pub const TTL: Duration = Duration::from_secs(3600);

/// Where a push stands, as far as ECR has accepted it.
#[derive(Clone)]
pub struct Checkpoint {
    /// Registry the push addressed (`None`: the default one).
    pub registry_id: Option<String>,
    /// Repository of the push.
    pub repository_name: String,
    /// ECR's part size for the upload.
    pub part_size: usize,
    /// Bytes ECR has accepted.
    pub committed: u64,
    /// sha256 state over the committed bytes.
    pub hasher: Sha256,
}

/// One resumable push: when it was last recorded, where it stands, and
/// whether a stream is pushing it now.
struct Entry {
    at: Instant,
    checkpoint: Checkpoint,
    leased: bool,
}

/// Why an upload cannot be resumed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresumable {
    /// Unknown to this replica, expired, or of another registry or
    /// repository.
    Unknown,
    /// Another stream is pushing it at this moment.
    InUse,
}

/// The resumable pushes, by upload id.
pub struct Table {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
    ttl: Duration,
}

impl Table {
    /// An empty table of at most `capacity` pushes, each kept for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            ttl,
        }
    }

    /// Records (or moves forward) the checkpoint of `upload_id`, leased by
    /// the push that records it.
    pub fn record(&self, upload_id: &str, checkpoint: Checkpoint) {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("resume table lock");
        entries.retain(|_, entry| now.duration_since(entry.at) < self.ttl);
        if entries.len() >= self.capacity && !entries.contains_key(upload_id) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, entry)| entry.at)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        let entry = Entry {
            at: now,
            checkpoint,
            leased: true,
        };
        entries.insert(upload_id.to_owned(), entry);
    }

    /// Leases the checkpoint of `upload_id` if it is known, fresh, of the
    /// same registry and repository, and not leased already; the entry stays
    /// (with its checkpoint) until [`Table::release`] or [`Table::forget`].
    pub fn lease(
        &self,
        upload_id: &str,
        registry_id: Option<&str>,
        repository_name: &str,
    ) -> Result<Checkpoint, Unresumable> {
        let mut entries = self.entries.lock().expect("resume table lock");
        let entry = entries.get_mut(upload_id).ok_or(Unresumable::Unknown)?;
        let same_target = entry.checkpoint.registry_id.as_deref() == registry_id
            && entry.checkpoint.repository_name == repository_name;
        if !same_target || entry.at.elapsed() >= self.ttl {
            return Err(Unresumable::Unknown);
        }
        if entry.leased {
            return Err(Unresumable::InUse);
        }
        entry.leased = true;
        Ok(entry.checkpoint.clone())
    }

    /// Ends the lease on `upload_id` (its stream ended short of completion):
    /// the last recorded checkpoint can be resumed.
    pub fn release(&self, upload_id: &str) {
        if let Some(entry) = self
            .entries
            .lock()
            .expect("resume table lock")
            .get_mut(upload_id)
        {
            entry.leased = false;
        }
    }

    /// Forgets `upload_id` (its push completed or can never complete).
    pub fn forget(&self, upload_id: &str) {
        self.entries
            .lock()
            .expect("resume table lock")
            .remove(upload_id);
    }

    /// Pushes remembered now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().expect("resume table lock").len()
    }
}

#[cfg(test)]
mod tests {
    use sha2::Digest;

    use super::*;

    fn checkpoint(repository: &str, committed: u64) -> Checkpoint {
        let mut hasher = Sha256::new();
        hasher.update(vec![7u8; committed as usize]);
        Checkpoint {
            registry_id: None,
            repository_name: repository.to_owned(),
            part_size: 10,
            committed,
            hasher,
        }
    }

    #[test]
    fn a_checkpoint_is_leased_once_and_only_for_its_repository() {
        let table = Table::new(4, TTL);
        table.record("u1", checkpoint("team/app", 20));
        table.release("u1");
        let other = table.lease("u1", None, "team/other");
        assert_eq!(other.err(), Some(Unresumable::Unknown));
        let elsewhere = table.lease("u1", Some("123456789012"), "team/app");
        assert_eq!(elsewhere.err(), Some(Unresumable::Unknown));
        let leased = table.lease("u1", None, "team/app").expect("recorded");
        assert_eq!(leased.committed, 20);
        assert_eq!(
            leased.hasher.finalize().to_vec(),
            Sha256::digest(vec![7u8; 20]).to_vec()
        );
        let again = table.lease("u1", None, "team/app");
        assert_eq!(again.err(), Some(Unresumable::InUse));
        assert_eq!(
            table.lease("u9", None, "team/app").err(),
            Some(Unresumable::Unknown)
        );
    }

    #[test]
    fn a_released_lease_keeps_the_last_checkpoint_until_forgotten() {
        let table = Table::new(4, TTL);
        table.record("u1", checkpoint("a/b", 10));
        // Recorded by a running push: leased.
        assert_eq!(
            table.lease("u1", None, "a/b").err(),
            Some(Unresumable::InUse)
        );
        table.release("u1");
        // Resumed, then broken before its next part: the checkpoint stays.
        table.lease("u1", None, "a/b").unwrap();
        table.release("u1");
        assert_eq!(table.lease("u1", None, "a/b").unwrap().committed, 10);
        table.record("u1", checkpoint("a/b", 20));
        table.release("u1");
        assert_eq!(table.lease("u1", None, "a/b").unwrap().committed, 20);
        table.forget("u1");
        table.release("u1");
        assert_eq!(
            table.lease("u1", None, "a/b").err(),
            Some(Unresumable::Unknown)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_goes_when_full() {
        let table = Table::new(2, TTL);
        let tick = || tokio::time::advance(Duration::from_secs(1));
        table.record("u1", checkpoint("a/b", 1));
        tick().await;
        table.record("u2", checkpoint("a/b", 1));
        tick().await;
        table.record("u1", checkpoint("a/b", 2));
        tick().await;
        table.record("u3", checkpoint("a/b", 1));
        assert_eq!(table.len(), 2);
        table.release("u1");
        table.release("u2");
        assert_eq!(
            table.lease("u2", None, "a/b").err(),
            Some(Unresumable::Unknown)
        );
        assert_eq!(table.lease("u1", None, "a/b").map(|c| c.committed), Ok(2));
    }

    #[tokio::test(start_paused = true)]
    async fn checkpoints_expire() {
        let table = Table::new(4, Duration::from_secs(10));
        table.record("u1", checkpoint("a/b", 1));
        table.release("u1");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(
            table.lease("u1", None, "a/b").err(),
            Some(Unresumable::Unknown)
        );
        table.record("u2", checkpoint("a/b", 1));
        assert_eq!(table.len(), 1, "expired entries are dropped on record");
    }
}
