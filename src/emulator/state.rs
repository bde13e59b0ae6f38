//! The emulated registries, all in memory: repositories with their images,
//! layers and policies; a content-addressed blob store shared by every
//! repository (reference-counted); in-flight layer uploads; and the byte
//! budget everything stored is charged against.
//!
//! The whole store sits behind one `std::sync::Mutex` that is never held
//! across an `.await`; heavy work (hashing, base64) happens outside it.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::error::ApiError;

mod uploads;

pub use uploads::Uploads;

/// Most repositories across all registries (ECR's own quota is higher; this
/// keeps the emulator bounded).
pub const MAX_REPOSITORIES: usize = 10_000;
/// Most images per repository (ECR's quota).
pub const MAX_IMAGES_PER_REPOSITORY: usize = 20_000;
/// Most in-flight uploads; starting one more abandons the oldest.
pub const MAX_UPLOADS: usize = 10_000;

/// Everything the emulator stores.
pub struct Store {
    /// Repositories by registry id, then name (so listings are sorted).
    pub registries: BTreeMap<String, BTreeMap<String, Repository>>,
    /// Layer and config bytes by digest.
    pub blobs: Blobs,
    /// In-flight layer uploads.
    pub uploads: Uploads,
    /// The byte budget: blobs, upload parts and manifests.
    pub space: Space,
    next_seq: u64,
}

/// A repository.
#[derive(Debug, Clone)]
pub struct Repository {
    pub registry_id: String,
    pub name: String,
    pub created_at: f64,
    /// `MUTABLE`, `IMMUTABLE`, `MUTABLE_WITH_EXCLUSION`, `IMMUTABLE_WITH_EXCLUSION`.
    pub mutability: String,
    /// Wildcard filters: tags that behave opposite to `mutability`.
    pub exclusion_filters: Vec<String>,
    pub scan_on_push: bool,
    pub encryption_type: String,
    pub kms_key: Option<String>,
    pub policy: Option<String>,
    /// Images in push order (ascending `seq`).
    pub images: Vec<Image>,
    /// Layers (and config blobs) uploaded to this repository, by digest.
    pub layers: BTreeMap<String, LayerInfo>,
}

/// An image: one manifest, any number of tags.
#[derive(Debug, Clone)]
pub struct Image {
    pub seq: u64,
    pub digest: String,
    pub manifest: String,
    pub media_type: String,
    pub artifact_media_type: Option<String>,
    pub tags: Vec<String>,
    pub pushed_at: f64,
    pub size: u64,
    /// Blob digests the manifest names (config and layers).
    pub references: Vec<String>,
}

/// A layer known to a repository.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInfo {
    pub size: u64,
    /// The media type a pushed manifest gave it, once one did.
    pub media_type: Option<String>,
}

impl Store {
    /// An empty store that may hold `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            registries: BTreeMap::new(),
            blobs: Blobs::default(),
            uploads: Uploads::default(),
            space: Space {
                used: 0,
                max: max_bytes,
            },
            next_seq: 0,
        }
    }

    /// A fresh sequence number (push order, upload age).
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The repository, or `RepositoryNotFoundException`.
    pub fn repo(&self, registry: &str, name: &str) -> Result<&Repository, ApiError> {
        self.registries
            .get(registry)
            .and_then(|repos| repos.get(name))
            .ok_or_else(|| not_found(registry, name))
    }

    /// The repository, mutably, or `RepositoryNotFoundException`.
    pub fn repo_mut(&mut self, registry: &str, name: &str) -> Result<&mut Repository, ApiError> {
        self.registries
            .get_mut(registry)
            .and_then(|repos| repos.get_mut(name))
            .ok_or_else(|| not_found(registry, name))
    }

    /// How many repositories exist in all registries.
    pub fn repository_count(&self) -> usize {
        self.registries.values().map(BTreeMap::len).sum()
    }

    /// Removes a repository with everything it holds, releasing its bytes.
    pub fn remove_repo(&mut self, registry: &str, name: &str) -> Result<Repository, ApiError> {
        let repo = self
            .registries
            .get_mut(registry)
            .and_then(|repos| repos.remove(name))
            .ok_or_else(|| not_found(registry, name))?;
        let mut freed: u64 = repo.images.iter().map(|i| i.manifest.len() as u64).sum();
        for digest in repo.layers.keys() {
            freed += self.blobs.release(digest);
        }
        freed += self.uploads.remove_repository(registry, name);
        self.space.release(freed);
        Ok(repo)
    }
}

impl std::fmt::Debug for Store {
    /// A summary: the contents (blob bytes above all) are too big to show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("repositories", &self.repository_count())
            .field("blobs", &self.blobs.blobs.len())
            .field("uploads", &self.uploads.in_flight())
            .field("used_bytes", &self.space.used)
            .field("max_bytes", &self.space.max)
            .finish()
    }
}

fn not_found(registry: &str, name: &str) -> ApiError {
    ApiError::RepositoryNotFound {
        registry: registry.to_owned(),
        name: name.to_owned(),
    }
}

impl Repository {
    /// Position of the image with this digest.
    pub fn image_by_digest(&self, digest: &str) -> Option<usize> {
        self.images.iter().position(|i| i.digest == digest)
    }

    /// Position of the image carrying this tag.
    pub fn image_by_tag(&self, tag: &str) -> Option<usize> {
        self.images
            .iter()
            .position(|i| i.tags.iter().any(|t| t == tag))
    }

    /// Whether pushing `tag` onto another image must be refused.
    pub fn is_tag_immutable(&self, tag: &str) -> bool {
        let excluded = self.exclusion_filters.iter().any(|f| wildcard(f, tag));
        match self.mutability.as_str() {
            "IMMUTABLE" => true,
            "IMMUTABLE_WITH_EXCLUSION" => !excluded,
            "MUTABLE_WITH_EXCLUSION" => excluded,
            _ => false,
        }
    }

    /// Whether some image's manifest names this blob.
    pub fn is_referenced(&self, digest: &str) -> bool {
        self.images
            .iter()
            .any(|i| i.references.iter().any(|r| r == digest))
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of
/// characters (ECR's `WILDCARD` exclusion filters).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let middle: Vec<&str> = parts.collect();
    let Some((last, middle)) = middle.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The byte budget.
#[derive(Debug)]
pub struct Space {
    used: u64,
    max: u64,
}

impl Space {
    /// Charges `bytes`, or `LimitExceededException` when they do not fit.
    pub fn reserve(&mut self, bytes: u64) -> Result<(), ApiError> {
        match self.used.checked_add(bytes) {
            Some(total) if total <= self.max => {
                self.used = total;
                Ok(())
            }
            _ => Err(ApiError::LimitExceeded(format!(
                "The emulator's storage limit of {} bytes would be exceeded ({} in use, {bytes} more requested)",
                self.max, self.used
            ))),
        }
    }

    /// Gives `bytes` back.
    pub fn release(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.used
    }
}

/// Blob bytes by digest, with the number of repositories holding each.
#[derive(Default)]
pub struct Blobs {
    blobs: HashMap<String, (Bytes, u32)>,
}

impl Blobs {
    /// The bytes of a blob.
    pub fn get(&self, digest: &str) -> Option<Bytes> {
        self.blobs.get(digest).map(|(data, _)| data.clone())
    }

    /// Adds a holder to a stored blob; `false` when it is not stored.
    pub fn add_ref(&mut self, digest: &str) -> bool {
        match self.blobs.get_mut(digest) {
            Some((_, refs)) => {
                *refs += 1;
                true
            }
            None => false,
        }
    }

    /// Stores a new blob with one holder (its bytes are already charged).
    pub fn insert(&mut self, digest: String, data: Bytes) {
        self.blobs.insert(digest, (data, 1));
    }

    /// Drops a holder; returns the bytes freed when it was the last.
    pub fn release(&mut self, digest: &str) -> u64 {
        let Some((data, refs)) = self.blobs.get_mut(digest) else {
            return 0;
        };
        *refs -= 1;
        if *refs > 0 {
            return 0;
        }
        let freed = data.len() as u64;
        self.blobs.remove(digest);
        freed
    }
}

#[cfg(test)]
mod tests;
