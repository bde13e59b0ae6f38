//! PutImage: the digest is the sha256 of the manifest exactly as sent; every
//! blob the manifest names must have been uploaded to the repository (and
//! every child of a manifest list pushed); tags move between images unless
//! the repository makes them immutable.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::manifest::Manifest;
use super::{Ctx, image_id, target};
use crate::emulator::clock::now_secs;
use crate::emulator::error::ApiError;
use crate::emulator::state::{Image, MAX_IMAGES_PER_REPOSITORY, Repository, Store};
use crate::emulator::validate;
use crate::model::IMAGE_MANIFEST_MAX_CHARS;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutImageInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    image_manifest: Option<String>,
    image_manifest_media_type: Option<String>,
    image_tag: Option<String>,
    image_digest: Option<String>,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub fn put_image(ctx: &Ctx<'_>, input: PutImageInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let sent = Sent::check(&input)?;
    // Everything proportional to the manifest's size (parsing, dropping
    // repeats) is done above and here, before the store is locked; under the
    // lock each distinct digest costs one map lookup.
    let references = references(&sent.manifest);
    let mut guard = ctx.shared.store();
    let store = &mut *guard;
    let place = Place::check(store, registry, name, &sent)?;
    // Checks are done: from here on the request succeeds.
    store_image(store, registry, name, &sent, place, references)?;
    Ok(json!({
        "image": {
            "registryId": registry,
            "repositoryName": name,
            "imageId": image_id(Some(&sent.digest), sent.tag),
            "imageManifest": sent.text,
            "imageManifestMediaType": sent.media_type,
        }
    }))
}

/// The manifest as sent, checked on its own (before the store is locked).
struct Sent<'a> {
    text: &'a String,
    tag: Option<&'a str>,
    /// The sha256 of `text`: the image's digest.
    digest: String,
    manifest: Manifest,
    media_type: String,
}

impl<'a> Sent<'a> {
    /// Parses and checks the manifest, its tag and the digest the caller
    /// gave, and settles its media type (given, else the manifest's own).
    fn check(input: &'a PutImageInput) -> Result<Self, ApiError> {
        let text = validate::required("imageManifest", &input.image_manifest)?;
        validate::length("imageManifest", text, 1, IMAGE_MANIFEST_MAX_CHARS)?;
        let tag = input.image_tag.as_deref();
        if let Some(tag) = tag {
            validate::image_tag("imageTag", tag)?;
        }
        let digest = sha256_digest(text.as_bytes());
        if let Some(given) = &input.image_digest
            && !given.eq_ignore_ascii_case(&digest)
        {
            return Err(ApiError::ImageDigestDoesNotMatch(format!(
                "Invalid parameter at 'imageDigest' failed to satisfy constraint: 'the digest {given} does not match the manifest digest {digest}'"
            )));
        }
        let manifest = Manifest::parse(text)?;
        let media_type = input
            .image_manifest_media_type
            .clone()
            .or_else(|| manifest.media_type.clone())
            .ok_or_else(|| {
                ApiError::constraint(
                    "imageManifestMediaType",
                    "must be provided when the manifest has no mediaType",
                )
            })?;
        Ok(Self {
            text,
            tag,
            digest,
            manifest,
            media_type,
        })
    }
}

/// Where the image goes in its repository, once the push is allowed.
struct Place {
    /// The image's size (see `check_references`).
    size: u64,
    /// The index of the image with the same digest, if pushed before.
    existing: Option<usize>,
    /// The index of the image the tag is on now, if any.
    holder: Option<usize>,
}

impl Place {
    /// Checks the push against the repository — what the manifest names
    /// exists, the image or tag is new, the tag may move, the image fits —
    /// and reserves the space of a new image.
    fn check(
        store: &mut Store,
        registry: &str,
        name: &str,
        sent: &Sent<'_>,
    ) -> Result<Self, ApiError> {
        let tag = sent.tag;
        let digest = &sent.digest;
        let repo = store.repo_mut(registry, name)?;
        let size = check_references(repo, &sent.manifest)?;
        let existing = repo.image_by_digest(digest);
        let holder = tag.and_then(|t| repo.image_by_tag(t));
        if let Some(at) = existing
            && (tag.is_none() || holder == Some(at))
        {
            let shown = tag.map(|t| format!(" and tag '{t}'")).unwrap_or_default();
            return Err(ApiError::ImageAlreadyExists(format!(
                "Image with digest '{digest}'{shown} already exists in the repository with name '{name}' in registry with id '{registry}'"
            )));
        }
        if let (Some(tag), Some(_)) = (tag, holder)
            && repo.is_tag_immutable(tag)
        {
            return Err(ApiError::ImageTagAlreadyExists(format!(
                "The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten because the repository is immutable."
            )));
        }
        if existing.is_none() {
            if repo.images.len() >= MAX_IMAGES_PER_REPOSITORY {
                return Err(ApiError::LimitExceeded(format!(
                    "A repository holds at most {MAX_IMAGES_PER_REPOSITORY} images"
                )));
            }
            store.space.reserve(sent.text.len() as u64)?;
        }
        Ok(Self {
            size,
            existing,
            holder,
        })
    }
}

/// Stores a checked push: the tag moves to the image (new, or pushed
/// before), and the layers learn their media types from the manifest.
fn store_image(
    store: &mut Store,
    registry: &str,
    name: &str,
    sent: &Sent<'_>,
    place: Place,
    references: Vec<String>,
) -> Result<(), ApiError> {
    let tag = sent.tag;
    let seq = store.next_seq();
    let repo = store.repo_mut(registry, name)?;
    if let (Some(tag), Some(from)) = (tag, place.holder) {
        // The previous holder stays, untagged if this was its last tag.
        repo.images[from].tags.retain(|t| t != tag);
    }
    for blob in sent.manifest.blobs() {
        if let (Some(layer), Some(media_type)) =
            (repo.layers.get_mut(&blob.digest), &blob.media_type)
        {
            layer.media_type = Some(media_type.clone());
        }
    }
    match place.existing {
        Some(at) => repo.images[at].tags.extend(tag.map(str::to_owned)),
        None => repo.images.push(Image {
            seq,
            digest: sent.digest.clone(),
            manifest: sent.text.clone(),
            media_type: sent.media_type.clone(),
            artifact_media_type: sent.manifest.artifact_media_type.clone(),
            tags: tag.map(str::to_owned).into_iter().collect(),
            pushed_at: now_secs(),
            size: place.size,
            references,
        }),
    }
    Ok(())
}

/// Checks that what the manifest names exists; returns the image size (the
/// sum of its layer sizes; for a manifest list, its largest child's size).
fn check_references(repo: &Repository, manifest: &Manifest) -> Result<u64, ApiError> {
    let missing: Vec<&str> = manifest
        .blobs()
        .iter()
        .map(|b| b.digest.as_str())
        .filter(|d| !repo.layers.contains_key(*d))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::LayersNotFound(format!(
            "Layers with digests '[{}]' required for pushing image into repository with name '{}' in the registry with id '{}' do not exist",
            missing.join(", "),
            repo.name,
            repo.registry_id
        )));
    }
    // One pass over the images, not one per child: a list may name many.
    let images: HashMap<&str, u64> = match manifest.manifests.is_empty() {
        true => HashMap::new(),
        false => repo
            .images
            .iter()
            .map(|i| (i.digest.as_str(), i.size))
            .collect(),
    };
    let missing: Vec<&str> = manifest
        .manifests
        .iter()
        .map(|m| m.digest.as_str())
        .filter(|d| !images.contains_key(d))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::ReferencedImagesNotFound(format!(
            "Images with digests '[{}]' referenced by the manifest list do not exist in the repository with name '{}'",
            missing.join(", "),
            repo.name
        )));
    }
    if !manifest.manifests.is_empty() {
        // ECR's model: a manifest list's (or index's) size is the largest
        // size of the manifests it names. They exist (checked above) and
        // cannot be deleted while the list names them, so this stays true.
        return Ok(manifest
            .manifests
            .iter()
            .filter_map(|m| images.get(m.digest.as_str()))
            .copied()
            .max()
            .unwrap_or(0));
    }
    Ok(manifest
        .layers
        .iter()
        .filter_map(|l| repo.layers.get(&l.digest))
        .map(|l| l.size)
        .sum())
}

/// Blob and child-manifest digests the image keeps alive.
fn references(manifest: &Manifest) -> Vec<String> {
    manifest
        .blobs()
        .iter()
        .chain(&manifest.manifests)
        .map(|d| d.digest.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::tests::{REPO, emulator, pushed_blobs, put};
    use super::*;
    use crate::emulator::operation::Operation;

    /// A manifest naming `layers` in order (repeats allowed).
    fn manifest_of(config: &str, layers: impl Iterator<Item = String>) -> String {
        let layers: Vec<Value> = layers.map(|d| json!({ "digest": d })).collect();
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config },
            "layers": layers,
        })
        .to_string()
    }

    #[test]
    fn huge_manifests_are_checked_by_distinct_digest() {
        let shared = emulator(16 << 20);
        let (config, one, two) = pushed_blobs(&shared, "MUTABLE");
        // As many layer entries as 4 MiB holds (45,000), two distinct
        // layers: accepted; the image keeps config + 2 blobs alive, each
        // layer counted per entry.
        let repeated = manifest_of(&config, (0..45_000).map(|i| [&one, &two][i % 2].to_owned()));
        assert!(repeated.len() <= 4_194_304);
        put(&shared, REPO, &repeated, Some("big")).unwrap();
        {
            let store = shared.store();
            let repo = store.repo(&shared.config.account_id, REPO).unwrap();
            let image = &repo.images[repo.image_by_tag("big").unwrap()];
            assert_eq!(image.references, [config.clone(), one.clone(), two.clone()]);
            assert_eq!(image.size, 22_500 * (9 + 10));
        }

        // 200,000 distinct (short) digests never uploaded: each named once.
        let absent = |i: usize| format!("d{i}");
        let missing = manifest_of(&config, (0..200_000).map(absent).chain([one.clone()]));
        assert!(missing.len() <= 4_194_304);
        let err = put(&shared, REPO, &missing, None).unwrap_err();
        assert_eq!(err.code(), "LayersNotFoundException");
        let message = err.to_string();
        let named = message
            .split_once("'[")
            .unwrap()
            .1
            .split_once("]'")
            .unwrap()
            .0;
        assert_eq!(named.split(", ").count(), 200_000);
        assert!(named.ends_with(", d199999") && !named.contains(&one));

        // A list naming one image 45,000 times.
        let child = sha256_digest(repeated.as_bytes());
        let entries: Vec<Value> = (0..45_000).map(|_| json!({ "digest": child })).collect();
        let list = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries }).to_string();
        assert!(list.len() <= 4_194_304);
        put(&shared, REPO, &list, Some("list")).unwrap();
        let details = json!({ "repositoryName": REPO, "imageIds": [{ "imageTag": "list" }] });
        let answer = super::super::tests::ok(&shared, Operation::DescribeImages, details);
        assert_eq!(answer["imageDetails"][0]["imageSizeInBytes"], 22_500 * 19);
    }
}
