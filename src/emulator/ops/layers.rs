//! Layer uploads (InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload),
//! BatchCheckLayerAvailability and GetDownloadUrlForLayer.
//!
//! Parts must be contiguous: a part starts at the number of bytes received
//! so far and `partLastByte` is its last byte's position (inclusive). The
//! emulator does not enforce ECR's 5 MiB minimum part size
//! (`LayerPartTooSmallException`). CompleteLayerUpload hashes the assembled
//! bytes outside the store lock; the upload is consumed by the attempt, also
//! when it fails with `InvalidLayerException` or `LayerAlreadyExistsException`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::put_image::sha256_digest;
use super::{Ctx, target};
use crate::emulator::clock::now_secs;
use crate::emulator::error::ApiError;
use crate::emulator::secret::random_bytes;
use crate::emulator::state::LayerInfo;
use crate::emulator::validate;
use crate::model::{BATCHED_LAYER_DIGEST_MAX, LAYER_PART_MAX_BYTES};

/// The part size InitiateLayerUpload advises (ECR does not enforce it).
pub const PART_SIZE: u64 = 10 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiateInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
}

pub fn initiate(ctx: &Ctx<'_>, input: InitiateInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let upload_id = uuid::Builder::from_random_bytes(random_bytes())
        .into_uuid()
        .to_string();
    let mut guard = ctx.shared.store();
    let store = &mut *guard;
    store.repo(registry, name)?;
    let seq = store.next_seq();
    let abandoned = store.uploads.start(upload_id.clone(), registry, name, seq);
    store.space.release(abandoned);
    Ok(json!({ "uploadId": upload_id, "partSize": PART_SIZE }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadPartInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    upload_id: Option<String>,
    part_first_byte: Option<i64>,
    part_last_byte: Option<i64>,
    layer_part_blob: Option<String>,
}

pub fn upload_part(ctx: &Ctx<'_>, input: UploadPartInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let upload_id = validate::required("uploadId", &input.upload_id)?;
    validate::upload_id("uploadId", upload_id)?;
    let first = *validate::required("partFirstByte", &input.part_first_byte)?;
    validate::range("partFirstByte", first, 0, i64::MAX)?;
    let last = *validate::required("partLastByte", &input.part_last_byte)?;
    validate::range("partLastByte", last, 0, i64::MAX)?;
    let blob = validate::required("layerPartBlob", &input.layer_part_blob)?;
    let blob = STANDARD
        .decode(blob)
        .map_err(|_| ApiError::Serialization("layerPartBlob is not valid base64".into()))?;
    if blob.len() > LAYER_PART_MAX_BYTES {
        return Err(ApiError::constraint(
            "layerPartBlob",
            format!("must have length less than or equal to {LAYER_PART_MAX_BYTES}"),
        ));
    }

    let mut guard = ctx.shared.store();
    let store = &mut *guard;
    store.repo(registry, name)?;
    let upload = store.uploads.get_mut(upload_id, registry, name)?;
    let len = blob.len() as i64;
    let received = upload.received as i64;
    if len == 0 || first != received || last != first + len - 1 {
        return Err(ApiError::InvalidLayerPart {
            registry: registry.to_owned(),
            name: name.to_owned(),
            upload_id: upload_id.clone(),
            last_valid: received - 1,
        });
    }
    store.space.reserve(blob.len() as u64)?;
    let upload = store.uploads.get_mut(upload_id, registry, name)?;
    upload.received += blob.len() as u64;
    upload.parts.push(Bytes::from(blob));
    Ok(json!({
        "registryId": registry,
        "repositoryName": name,
        "uploadId": upload_id,
        "lastByteReceived": last,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompleteInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    upload_id: Option<String>,
    layer_digests: Option<Vec<String>>,
}

pub fn complete(ctx: &Ctx<'_>, input: CompleteInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let upload_id = validate::required("uploadId", &input.upload_id)?;
    validate::upload_id("uploadId", upload_id)?;
    let digests = validate::required("layerDigests", &input.layer_digests)?;
    validate::items("layerDigests", digests, 1, validate::LIST_LIMIT)?;
    for (i, digest) in digests.iter().enumerate() {
        validate::layer_digest(&format!("layerDigests[{i}]"), digest)?;
    }

    let upload = {
        let mut store = ctx.shared.store();
        store.repo(registry, name)?;
        if store.uploads.get_mut(upload_id, registry, name)?.received == 0 {
            return Err(ApiError::EmptyUpload(format!(
                "The upload with id '{upload_id}' has no layer parts"
            )));
        }
        store.uploads.take(upload_id, registry, name)?
    };
    let data = Bytes::from(upload.parts.concat());
    let size = data.len() as u64;
    let computed = sha256_digest(&data);

    let mut guard = ctx.shared.store();
    let store = &mut *guard;
    let outcome = if !digests.iter().any(|d| d.eq_ignore_ascii_case(&computed)) {
        Err(ApiError::InvalidLayer(format!(
            "The layer digest calculated for the upload with id '{upload_id}' ({computed}) does not match the expected digests [{}]",
            digests.join(", ")
        )))
    } else {
        match store.repo(registry, name) {
            Err(err) => Err(err),
            Ok(repo) if repo.layers.contains_key(&computed) => {
                Err(ApiError::LayerAlreadyExists(format!(
                    "The layer with digest '{computed}' already exists in the repository with name '{name}' in the registry with id '{registry}'"
                )))
            }
            Ok(_) => Ok(()),
        }
    };
    if let Err(err) = outcome {
        store.space.release(size);
        return Err(err);
    }
    if store.blobs.add_ref(&computed) {
        // Another repository stored the same bytes already.
        store.space.release(size);
    } else {
        store.blobs.insert(computed.clone(), data);
    }
    let info = LayerInfo {
        size,
        media_type: None,
    };
    store
        .repo_mut(registry, name)?
        .layers
        .insert(computed.clone(), info);
    Ok(json!({
        "registryId": registry,
        "repositoryName": name,
        "uploadId": upload_id,
        "layerDigest": computed,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchCheckInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    layer_digests: Option<Vec<String>>,
}

/// Malformed digests (empty included) fail with `InvalidLayerDigest`,
/// unknown ones with `MissingLayerDigest`.
pub fn batch_check(ctx: &Ctx<'_>, input: BatchCheckInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let digests = validate::required("layerDigests", &input.layer_digests)?;
    validate::items("layerDigests", digests, 1, validate::LIST_LIMIT)?;
    for (i, digest) in digests.iter().enumerate() {
        validate::length(
            &format!("layerDigests[{i}]"),
            digest,
            0,
            BATCHED_LAYER_DIGEST_MAX,
        )?;
    }
    let store = ctx.shared.store();
    let repo = store.repo(registry, name)?;
    let mut layers = Vec::new();
    let mut failures = Vec::new();
    for digest in digests {
        if !validate::is_digest(digest) {
            failures.push(json!({
                "layerDigest": digest,
                "failureCode": "InvalidLayerDigest",
                "failureReason": format!("Invalid layer digest '{digest}'"),
            }));
            continue;
        }
        match repo.layers.get(digest) {
            Some(info) => {
                let mut layer = json!({
                    "layerDigest": digest,
                    "layerAvailability": "AVAILABLE",
                    "layerSize": info.size,
                });
                if let Some(media_type) = &info.media_type {
                    layer["mediaType"] = json!(media_type);
                }
                layers.push(layer);
            }
            None => failures.push(json!({
                "layerDigest": digest,
                "failureCode": "MissingLayerDigest",
                "failureReason": format!("Layer digest '{digest}' could not be found"),
            })),
        }
    }
    Ok(json!({ "layers": layers, "failures": failures }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadUrlInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    layer_digest: Option<String>,
}

/// Doc: only layers some image references can be downloaded.
pub fn download_url(ctx: &Ctx<'_>, input: DownloadUrlInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let digest = validate::required("layerDigest", &input.layer_digest)?;
    validate::layer_digest("layerDigest", digest)?;
    let store = ctx.shared.store();
    let repo = store.repo(registry, name)?;
    if !repo.layers.contains_key(digest) {
        return Err(ApiError::LayersNotFound(format!(
            "The layer with digest '{digest}' does not exist in the repository with name '{name}' in the registry with id '{registry}'"
        )));
    }
    if !repo.is_referenced(digest) {
        return Err(ApiError::LayerInaccessible(format!(
            "The layer with digest '{digest}' is not referenced by any image in the repository with name '{name}'"
        )));
    }
    let url = ctx
        .shared
        .signer
        .url(ctx.base_url, registry, name, digest, now_secs() as u64);
    Ok(json!({ "downloadUrl": url, "layerDigest": digest }))
}
