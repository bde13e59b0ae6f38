//! PutImage: the digest is the sha256 of the manifest exactly as sent; every
//! blob the manifest names must have been uploaded to the repository (and
//! every child of a manifest list pushed); tags move between images unless
//! the repository makes them immutable.

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::manifest::Manifest;
use super::{Ctx, image_id, target};
use crate::emulator::error::ApiError;
use crate::emulator::state::{Image, MAX_IMAGES_PER_REPOSITORY, Repository, now_secs};
use crate::emulator::validate;

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
    let text = validate::required("imageManifest", &input.image_manifest)?;
    validate::length("imageManifest", text, 1, 4_194_304)?;
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

    let mut guard = ctx.shared.store();
    let store = &mut *guard;
    let repo = store.repo_mut(registry, name)?;
    let size = check_references(repo, &manifest)?;
    let existing = repo.image_by_digest(&digest);
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
        store.space.reserve(text.len() as u64)?;
    }

    // Checks are done: from here on the request succeeds.
    let seq = store.next_seq();
    let repo = store.repo_mut(registry, name)?;
    if let (Some(tag), Some(from)) = (tag, holder) {
        // The previous holder stays, untagged if this was its last tag.
        repo.images[from].tags.retain(|t| t != tag);
    }
    for blob in manifest.blobs() {
        if let (Some(layer), Some(media_type)) =
            (repo.layers.get_mut(&blob.digest), &blob.media_type)
        {
            layer.media_type = Some(media_type.clone());
        }
    }
    match existing {
        Some(at) => repo.images[at].tags.extend(tag.map(str::to_owned)),
        None => repo.images.push(Image {
            seq,
            digest: digest.clone(),
            manifest: text.clone(),
            media_type: media_type.clone(),
            artifact_media_type: manifest.artifact_media_type.clone(),
            tags: tag.map(str::to_owned).into_iter().collect(),
            pushed_at: now_secs(),
            size,
            references: references(&manifest),
        }),
    }
    Ok(json!({
        "image": {
            "registryId": registry,
            "repositoryName": name,
            "imageId": image_id(Some(&digest), tag),
            "imageManifest": text,
            "imageManifestMediaType": media_type,
        }
    }))
}

/// Checks that what the manifest names exists; returns the image size (the
/// sum of its layer sizes; for a manifest list, its largest child's size).
fn check_references(repo: &Repository, manifest: &Manifest) -> Result<u64, ApiError> {
    let missing: Vec<&str> = manifest
        .blobs()
        .into_iter()
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
    let missing: Vec<&str> = manifest
        .manifests
        .iter()
        .map(|m| m.digest.as_str())
        .filter(|d| repo.image_by_digest(d).is_none())
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
            .filter_map(|m| repo.image_by_digest(&m.digest))
            .map(|at| repo.images[at].size)
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
        .into_iter()
        .chain(&manifest.manifests)
        .map(|d| d.digest.clone())
        .collect()
}
