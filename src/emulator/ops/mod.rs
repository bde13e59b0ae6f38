//! The 17 operations: each parses its input shape, validates it as ECR does
//! (first broken rule wins), then works on the store and builds the output
//! shape as JSON.

mod auth;
mod convert;
mod images;
mod layers;
mod manifest;
mod policy;
mod put_image;
mod repositories;

pub use put_image::sha256_digest;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::operation::Operation;
use super::server::Shared;
use super::state::Repository;
use super::validate;

/// What an operation needs besides its input.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    /// `http://host:port` the caller reached the emulator at.
    pub base_url: &'a str,
}

impl Ctx<'_> {
    /// The registry a request addresses: its `registryId` or the default.
    fn registry<'a>(&'a self, registry_id: &'a Option<String>) -> &'a str {
        registry_id
            .as_deref()
            .unwrap_or(&self.shared.config.account_id)
    }

    fn region(&self) -> &str {
        &self.shared.config.region
    }
}

/// Runs `op` on a raw request body.
pub fn dispatch(ctx: &Ctx<'_>, op: Operation, body: &[u8]) -> Result<Value, ApiError> {
    use Operation as Op;
    match op {
        Op::BatchCheckLayerAvailability => layers::batch_check(ctx, input(body)?),
        Op::BatchDeleteImage => images::batch_delete(ctx, input(body)?),
        Op::BatchGetImage => images::batch_get(ctx, input(body)?),
        Op::CompleteLayerUpload => layers::complete(ctx, input(body)?),
        Op::CreateRepository => repositories::create(ctx, input(body)?),
        Op::DeleteRepository => repositories::delete(ctx, input(body)?),
        Op::DeleteRepositoryPolicy => repositories::delete_policy(ctx, input(body)?),
        Op::DescribeImages => images::describe(ctx, input(body)?),
        Op::DescribeRepositories => repositories::describe(ctx, input(body)?),
        Op::GetAuthorizationToken => auth::get_token(ctx, input(body)?),
        Op::GetDownloadUrlForLayer => layers::download_url(ctx, input(body)?),
        Op::GetRepositoryPolicy => repositories::get_policy(ctx, input(body)?),
        Op::InitiateLayerUpload => layers::initiate(ctx, input(body)?),
        Op::ListImages => images::list(ctx, input(body)?),
        Op::PutImage => put_image::put_image(ctx, input(body)?),
        Op::SetRepositoryPolicy => repositories::set_policy(ctx, input(body)?),
        Op::UploadLayerPart => layers::upload_part(ctx, input(body)?),
    }
}

/// Parses an input shape; the body must be a JSON object (empty means `{}`).
fn input<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let text = body.trim_ascii();
    let text = if text.is_empty() { &b"{}"[..] } else { text };
    if !text.starts_with(b"{") {
        return Err(ApiError::Serialization(
            "the request body must be a JSON object".into(),
        ));
    }
    serde_json::from_slice(text)
        .map_err(|err| ApiError::Serialization(format!("malformed request: {err}")))
}

/// Validates `registryId` and the required `repositoryName`; returns
/// `(registry, repository)` with the default registry filled in.
fn target<'a>(
    ctx: &'a Ctx<'_>,
    registry_id: &'a Option<String>,
    repository_name: &'a Option<String>,
) -> Result<(&'a str, &'a str), ApiError> {
    validate::registry_id("registryId", registry_id)?;
    let name = validate::required_repository_name(repository_name)?;
    Ok((ctx.registry(registry_id), name))
}

/// An `ImageIdentifier` as sent.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageIdInput {
    image_digest: Option<String>,
    image_tag: Option<String>,
}

impl ImageIdInput {
    /// The identifier echoed back (only the members that were sent).
    fn to_json(&self) -> Value {
        image_id(self.image_digest.as_deref(), self.image_tag.as_deref())
    }
}

/// Validates an `imageIds` list: 1..100 items, tags 1..300 characters.
fn check_image_ids(ids: &[ImageIdInput]) -> Result<(), ApiError> {
    validate::items("imageIds", ids, 1, validate::LIST_LIMIT)?;
    for (i, id) in ids.iter().enumerate() {
        if let Some(tag) = &id.image_tag {
            validate::image_tag(&format!("imageIds[{i}].imageTag"), tag)?;
        }
    }
    Ok(())
}

/// An `ImageIdentifier` output.
fn image_id(digest: Option<&str>, tag: Option<&str>) -> Value {
    let mut id = Map::new();
    if let Some(digest) = digest {
        id.insert("imageDigest".into(), json!(digest));
    }
    if let Some(tag) = tag {
        id.insert("imageTag".into(), json!(tag));
    }
    Value::Object(id)
}

/// A `Repository` output.
fn repository_json(repo: &Repository, region: &str) -> Value {
    let registry = &repo.registry_id;
    let name = &repo.name;
    let mut encryption = json!({ "encryptionType": repo.encryption_type });
    if let Some(key) = &repo.kms_key {
        encryption["kmsKey"] = json!(key);
    }
    let mut out = json!({
        "repositoryArn": format!("arn:aws:ecr:{region}:{registry}:repository/{name}"),
        "registryId": registry,
        "repositoryName": name,
        "repositoryUri": format!("{registry}.dkr.ecr.{region}.amazonaws.com/{name}"),
        "createdAt": repo.created_at,
        "imageTagMutability": repo.mutability,
        "imageScanningConfiguration": { "scanOnPush": repo.scan_on_push },
        "encryptionConfiguration": encryption,
    });
    if !repo.exclusion_filters.is_empty() {
        let filters: Vec<Value> = repo
            .exclusion_filters
            .iter()
            .map(|f| json!({ "filterType": "WILDCARD", "filter": f }))
            .collect();
        out["imageTagMutabilityExclusionFilters"] = Value::Array(filters);
    }
    out
}

#[cfg(test)]
mod media_tests;
#[cfg(test)]
mod tests;
