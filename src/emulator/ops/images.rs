//! BatchGetImage, BatchDeleteImage, DescribeImages and ListImages.
//!
//! An image id resolves per item (the batch calls report failures in
//! `failures`): neither member → `MissingDigestAndTag`; a digest not shaped
//! `algorithm:hex` → `InvalidImageDigest`; a tag and digest naming different
//! images → `ImageTagDoesNotMatchDigest`; nothing found → `ImageNotFound`.
//!
//! BatchGetImage with `acceptedMediaTypes`: an image whose manifest media
//! type is not accepted is, when asked for by tag (no digest), translated as
//! ECR documents (`convert`: Docker v2 schema 2 ↔ OCI) into the first
//! accepted type it translates to; the answer carries the translated bytes,
//! their media type and — ECR does not document this — their own sha256 as
//! `imageDigest`, so the manifest verifies against its id. Otherwise (by
//! digest, or no documented translation, including schema 2 → schema 1) it
//! is a failure with code `ImageNotFound` (the image does not exist in any
//! accepted form). `UnsupportedImageType` is not an `ImageFailureCode`, so
//! SDKs could not decode it.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Ctx, ImageIdInput, check_image_ids, convert, image_id, sha256_digest, target};
use crate::emulator::error::ApiError;
use crate::emulator::operation::Operation;
use crate::emulator::pagination::{page, seq_key};
use crate::emulator::state::{Image, Repository};
use crate::emulator::validate;

/// A per-item failure: `(failureCode, failureReason)`.
type Failure = (&'static str, String);

fn resolve(repo: &Repository, id: &ImageIdInput) -> Result<usize, Failure> {
    let not_found = || ("ImageNotFound", "Requested image not found".to_owned());
    if let Some(digest) = &id.image_digest
        && !validate::is_digest(digest)
    {
        return Err((
            "InvalidImageDigest",
            "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'".to_owned(),
        ));
    }
    match (&id.image_digest, &id.image_tag) {
        (None, None) => Err((
            "MissingDigestAndTag",
            "Invalid request parameters: both tag and digest cannot be null".to_owned(),
        )),
        (Some(digest), None) => repo.image_by_digest(digest).ok_or_else(not_found),
        (None, Some(tag)) => repo.image_by_tag(tag).ok_or_else(not_found),
        (Some(digest), Some(tag)) => {
            let at = repo.image_by_digest(digest).ok_or_else(not_found)?;
            if repo.images[at].tags.contains(tag) {
                Ok(at)
            } else {
                Err((
                    "ImageTagDoesNotMatchDigest",
                    "Invalid request parameters: image tag does not match digest".to_owned(),
                ))
            }
        }
    }
}

fn failure(id: &ImageIdInput, (code, reason): Failure) -> Value {
    json!({ "imageId": id.to_json(), "failureCode": code, "failureReason": reason })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchGetInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    image_ids: Option<Vec<ImageIdInput>>,
    accepted_media_types: Option<Vec<String>>,
}

pub fn batch_get(ctx: &Ctx<'_>, input: BatchGetInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let ids = validate::required("imageIds", &input.image_ids)?;
    check_image_ids(ids)?;
    if let Some(types) = &input.accepted_media_types {
        validate::items("acceptedMediaTypes", types, 1, validate::LIST_LIMIT)?;
    }
    let store = ctx.shared.store();
    let repo = store.repo(registry, name)?;
    let mut images = Vec::new();
    let mut failures = Vec::new();
    for id in ids {
        let image = match resolve(repo, id) {
            Ok(at) => &repo.images[at],
            Err(why) => {
                failures.push(failure(id, why));
                continue;
            }
        };
        let (manifest, media_type, digest) = match &input.accepted_media_types {
            Some(types) if !types.contains(&image.media_type) => {
                match translated(image, id, types) {
                    Some(found) => found,
                    None => {
                        let reason = format!(
                            "Requested image not found in the accepted media types: its manifest is {}",
                            image.media_type
                        );
                        failures.push(failure(id, ("ImageNotFound", reason)));
                        continue;
                    }
                }
            }
            _ => (
                image.manifest.clone(),
                image.media_type.clone(),
                image.digest.clone(),
            ),
        };
        images.push(json!({
            "registryId": registry,
            "repositoryName": name,
            "imageId": image_id(Some(&digest), id.image_tag.as_deref()),
            "imageManifest": manifest,
            "imageManifestMediaType": media_type,
        }));
    }
    Ok(json!({ "images": images, "failures": failures }))
}

/// `(manifest, media type, digest)` of `image` translated into the first of
/// `accepted` that ECR translates it to; only for pulls by tag.
fn translated(
    image: &Image,
    id: &ImageIdInput,
    accepted: &[String],
) -> Option<(String, String, String)> {
    if id.image_digest.is_some() {
        return None;
    }
    accepted.iter().find_map(|to| {
        let text = convert::convert(&image.manifest, &image.media_type, to)?;
        let digest = sha256_digest(text.as_bytes());
        Some((text, to.clone(), digest))
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchDeleteInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    image_ids: Option<Vec<ImageIdInput>>,
}

/// Doc: deleting by tag removes that tag, and the image with its last tag;
/// deleting by digest removes the image and all its tags.
pub fn batch_delete(ctx: &Ctx<'_>, input: BatchDeleteInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let ids = validate::required("imageIds", &input.image_ids)?;
    check_image_ids(ids)?;
    let mut guard = ctx.shared.store();
    let store = &mut *guard;
    let repo = store.repo_mut(registry, name)?;
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    let mut freed = 0;
    for id in ids {
        let at = match resolve(repo, id) {
            Ok(at) => at,
            Err(why) => {
                failures.push(failure(id, why));
                continue;
            }
        };
        let image = &repo.images[at];
        let removes_image = id.image_tag.is_none() || image.tags.len() == 1;
        if removes_image && let Some(parent) = referencing_list(repo, &image.digest) {
            let reason = format!("Requested image referenced by manifest list: [{parent}]");
            failures.push(failure(id, ("ImageReferencedByManifestList", reason)));
            continue;
        }
        let digest = image.digest.clone();
        match &id.image_tag {
            Some(tag) => {
                repo.images[at].tags.retain(|t| t != tag);
                deleted.push(image_id(Some(&digest), Some(tag)));
            }
            None if image.tags.is_empty() => deleted.push(image_id(Some(&digest), None)),
            None => deleted.extend(image.tags.iter().map(|t| image_id(Some(&digest), Some(t)))),
        }
        if removes_image {
            freed += repo.images.remove(at).manifest.len() as u64;
        }
    }
    store.space.release(freed);
    Ok(json!({ "imageIds": deleted, "failures": failures }))
}

/// The digest of a manifest list in `repo` that names `digest`.
fn referencing_list(repo: &Repository, digest: &str) -> Option<String> {
    repo.images
        .iter()
        .find(|i| i.digest != digest && i.references.iter().any(|r| r == digest))
        .map(|i| i.digest.clone())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    tag_status: Option<String>,
    image_status: Option<String>,
}

impl Filter {
    /// Validates the members; returns the predicate they define.
    fn check(filter: &Option<Filter>) -> Result<impl Fn(&Image) -> bool + use<>, ApiError> {
        let default = Filter::default();
        let filter = filter.as_ref().unwrap_or(&default);
        let tag_status = filter.tag_status.clone().unwrap_or_else(|| "ANY".into());
        validate::one_of(
            "filter.tagStatus",
            &tag_status,
            &["TAGGED", "UNTAGGED", "ANY"],
        )?;
        let image_status = filter.image_status.as_deref().unwrap_or("ACTIVE");
        let statuses = ["ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"];
        validate::one_of("filter.imageStatus", image_status, &statuses)?;
        // Every emulated image is ACTIVE: nothing is ever archived.
        let any_active = matches!(image_status, "ACTIVE" | "ANY");
        Ok(move |image: &Image| {
            any_active
                && match tag_status.as_str() {
                    "TAGGED" => !image.tags.is_empty(),
                    "UNTAGGED" => image.tags.is_empty(),
                    _ => true,
                }
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    image_ids: Option<Vec<ImageIdInput>>,
    next_token: Option<String>,
    max_results: Option<i64>,
    filter: Option<Filter>,
}

pub fn describe(ctx: &Ctx<'_>, input: DescribeInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    if let Some(ids) = &input.image_ids {
        check_image_ids(ids)?;
    }
    let max = validate::max_results(input.max_results)?;
    validate::not_combined(
        "imageIds",
        input.image_ids.is_some(),
        input.max_results,
        &input.next_token,
    )?;
    let keep = Filter::check(&input.filter)?;
    let store = ctx.shared.store();
    let repo = store.repo(registry, name)?;

    if let Some(ids) = &input.image_ids {
        let mut seen = HashSet::new();
        let mut details = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let at = resolve(repo, id).map_err(|(code, reason)| match code {
                "ImageNotFound" | "ImageTagDoesNotMatchDigest" => {
                    ApiError::ImageNotFound(format!(
                        "The image with imageId {} does not exist within the repository with name '{name}' in the registry with id '{registry}'",
                        id.to_json()
                    ))
                }
                _ => ApiError::constraint(&format!("imageIds[{i}]"), reason),
            })?;
            if seen.insert(at) {
                details.push(detail(repo, &repo.images[at]));
            }
        }
        return Ok(json!({ "imageDetails": details }));
    }

    let op = Operation::DescribeImages;
    let scope = format!("{registry}/{name}");
    let after = match &input.next_token {
        Some(token) => Some(ctx.shared.tokens.redeem(op, &scope, token)?),
        None => None,
    };
    let entries = repo
        .images
        .iter()
        .filter(|i| keep(i))
        .map(|i| (seq_key(i.seq), i));
    let page = page(entries, after.as_deref(), max);
    let details: Vec<Value> = page.items.iter().map(|i| detail(repo, i)).collect();
    let mut answer = json!({ "imageDetails": details });
    if let Some(last) = page.more_after {
        answer["nextToken"] = json!(ctx.shared.tokens.issue(op, &scope, &last));
    }
    Ok(answer)
}

/// An `ImageDetail` (no `imageTags` member when untagged, as ECR).
fn detail(repo: &Repository, image: &Image) -> Value {
    let mut out = json!({
        "registryId": repo.registry_id,
        "repositoryName": repo.name,
        "imageDigest": image.digest,
        "imageSizeInBytes": image.size,
        "imagePushedAt": image.pushed_at,
        "imageManifestMediaType": image.media_type,
    });
    if !image.tags.is_empty() {
        out["imageTags"] = json!(image.tags);
    }
    if let Some(artifact) = &image.artifact_media_type {
        out["artifactMediaType"] = json!(artifact);
    }
    out
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    next_token: Option<String>,
    max_results: Option<i64>,
    filter: Option<Filter>,
}

/// One entry per tag (an untagged image: one digest-only entry), in push
/// order, tags of one image sorted.
pub fn list(ctx: &Ctx<'_>, input: ListInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let max = validate::max_results(input.max_results)?;
    let keep = Filter::check(&input.filter)?;
    let store = ctx.shared.store();
    let repo = store.repo(registry, name)?;
    let op = Operation::ListImages;
    let scope = format!("{registry}/{name}");
    let after = match &input.next_token {
        Some(token) => Some(ctx.shared.tokens.redeem(op, &scope, token)?),
        None => None,
    };
    let mut entries = Vec::new();
    for image in repo.images.iter().filter(|i| keep(i)) {
        let seq = seq_key(image.seq);
        if image.tags.is_empty() {
            entries.push((format!("{seq}/"), image_id(Some(&image.digest), None)));
        }
        let mut tags: Vec<&String> = image.tags.iter().collect();
        tags.sort();
        for tag in tags {
            entries.push((
                format!("{seq}/{tag}"),
                image_id(Some(&image.digest), Some(tag)),
            ));
        }
    }
    let page = page(entries, after.as_deref(), max);
    let mut answer = json!({ "imageIds": page.items });
    if let Some(last) = page.more_after {
        answer["nextToken"] = json!(ctx.shared.tokens.issue(op, &scope, &last));
    }
    Ok(answer)
}
