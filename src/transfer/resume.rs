//! Pushes that can be resumed: after each part ECR accepts, a push records
//! its upload id, the bytes committed and the sha256 state over exactly
//! those bytes. A caller whose stream broke sends a header with the upload id
//! and continues from the committed byte; the facade goes on hashing from the
//! recorded state, so a resumed push is checked over all its bytes like one
//! that never broke. The table lives in the replica's memory (only that
//! replica can resume the push), holds at most [`CAPACITY`] pushes and
//! forgets one after [`TTL`].

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

/// The resumable pushes, by upload id.
pub struct Table {
    entries: Mutex<HashMap<String, (Instant, Checkpoint)>>,
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

    /// Records (or moves forward) the checkpoint of `upload_id`.
    pub fn record(&self, upload_id: &str, checkpoint: Checkpoint) {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("resume table lock");
        entries.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
        if entries.len() >= self.capacity && !entries.contains_key(upload_id) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(upload_id.to_owned(), (now, checkpoint));
    }

    /// Takes the checkpoint of `upload_id` if it is known, fresh and of the
    /// same registry and repository; the resumed push records it again.
    pub fn take(
        &self,
        upload_id: &str,
        registry_id: Option<&str>,
        repository_name: &str,
    ) -> Option<Checkpoint> {
        let mut entries = self.entries.lock().expect("resume table lock");
        let (at, checkpoint) = entries.get(upload_id)?;
        let same_target = checkpoint.registry_id.as_deref() == registry_id
            && checkpoint.repository_name == repository_name;
        if !same_target {
            return None;
        }
        let fresh = at.elapsed() < self.ttl;
        let (_, checkpoint) = entries.remove(upload_id)?;
        fresh.then_some(checkpoint)
    }

    /// Forgets `upload_id` (its push completed or was refused).
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
    fn a_checkpoint_is_taken_once_and_only_for_its_repository() {
        let table = Table::new(4, TTL);
        table.record("u1", checkpoint("team/app", 20));
        assert!(table.take("u1", None, "team/other").is_none());
        assert!(table.take("u1", Some("123456789012"), "team/app").is_none());
        let taken = table.take("u1", None, "team/app").expect("recorded");
        assert_eq!(taken.committed, 20);
        assert_eq!(
            taken.hasher.finalize().to_vec(),
            Sha256::digest(vec![7u8; 20]).to_vec()
        );
        assert!(table.take("u1", None, "team/app").is_none());
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
        assert!(table.take("u2", None, "a/b").is_none());
        assert_eq!(table.take("u1", None, "a/b").map(|c| c.committed), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn checkpoints_expire() {
        let table = Table::new(4, Duration::from_secs(10));
        table.record("u1", checkpoint("a/b", 1));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(table.take("u1", None, "a/b").is_none());
        table.record("u2", checkpoint("a/b", 1));
        assert_eq!(table.len(), 1, "expired entries are dropped on record");
    }
}
