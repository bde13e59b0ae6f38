//! In-flight layer uploads: parts received so far, by upload id, bounded
//! by [`MAX_UPLOADS`] (the oldest is abandoned first).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::MAX_UPLOADS;
use crate::emulator::error::ApiError;

/// An in-flight layer upload.
pub struct Upload {
    pub registry_id: String,
    pub repository: String,
    pub parts: Vec<Bytes>,
    /// Bytes received so far (the next part starts here).
    pub received: u64,
    seq: u64,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("registry_id", &self.registry_id)
            .field("repository", &self.repository)
            .field("parts", &self.parts.len())
            .field("received", &self.received)
            .finish()
    }
}

/// In-flight uploads by id, oldest first evicted beyond [`MAX_UPLOADS`].
#[derive(Default)]
pub struct Uploads {
    by_id: HashMap<String, Upload>,
    by_age: BTreeMap<u64, String>,
}

impl Uploads {
    /// Registers a new upload; returns the bytes of an evicted one (to
    /// release).
    pub fn start(&mut self, id: String, registry: &str, repository: &str, seq: u64) -> u64 {
        let mut freed = 0;
        while self.by_id.len() >= MAX_UPLOADS {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            freed += self.by_id.remove(&oldest).map_or(0, |u| u.received);
        }
        self.by_age.insert(seq, id.clone());
        let upload = Upload {
            registry_id: registry.to_owned(),
            repository: repository.to_owned(),
            parts: Vec::new(),
            received: 0,
            seq,
        };
        self.by_id.insert(id, upload);
        freed
    }

    /// The upload `id` of this repository, or `UploadNotFoundException`.
    pub fn get_mut(
        &mut self,
        id: &str,
        registry: &str,
        repository: &str,
    ) -> Result<&mut Upload, ApiError> {
        match self.by_id.get_mut(id) {
            Some(u) if u.registry_id == registry && u.repository == repository => Ok(u),
            _ => Err(ApiError::UploadNotFound {
                registry: registry.to_owned(),
                name: repository.to_owned(),
                upload_id: id.to_owned(),
            }),
        }
    }

    /// Removes and returns the upload `id` of this repository.
    pub fn take(&mut self, id: &str, registry: &str, repository: &str) -> Result<Upload, ApiError> {
        self.get_mut(id, registry, repository)?;
        let upload = self.by_id.remove(id).expect("checked above");
        self.by_age.remove(&upload.seq);
        Ok(upload)
    }

    /// Drops a repository's uploads; returns their bytes.
    pub(super) fn remove_repository(&mut self, registry: &str, repository: &str) -> u64 {
        let mut freed = 0;
        self.by_id.retain(|_, u| {
            let keep = u.registry_id != registry || u.repository != repository;
            if !keep {
                freed += u.received;
            }
            keep
        });
        let by_id = &self.by_id;
        self.by_age.retain(|_, id| by_id.contains_key(id));
        freed
    }

    /// How many uploads are in flight.
    pub fn in_flight(&self) -> usize {
        self.by_id.len()
    }
}
