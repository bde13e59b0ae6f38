//! CreateRepository, DeleteRepository, DescribeRepositories and the
//! repository policy operations.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Ctx, policy, repository_json, target};
use crate::emulator::clock::now_secs;
use crate::emulator::error::ApiError;
use crate::emulator::operation::Operation;
use crate::emulator::pagination::page;
use crate::emulator::secret::random_bytes;
use crate::emulator::state::{MAX_REPOSITORIES, Repository};
use crate::emulator::validate;
use crate::model::{
    EXCLUSION_FILTERS_MAX, EXCLUSION_FILTERS_MIN, KMS_KEY_MAX, KMS_KEY_MIN, POLICY_TEXT_MAX_CHARS,
    TAG_KEY_MAX, TAG_KEY_MIN, TAG_VALUE_MAX, TAGS_MAX,
};

const MUTABILITIES: &[&str] = &[
    "MUTABLE",
    "IMMUTABLE",
    "IMMUTABLE_WITH_EXCLUSION",
    "MUTABLE_WITH_EXCLUSION",
];
const ENCRYPTION_TYPES: &[&str] = &["AES256", "KMS", "KMS_DSSE"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    tags: Option<Vec<TagInput>>,
    image_tag_mutability: Option<String>,
    image_tag_mutability_exclusion_filters: Option<Vec<FilterInput>>,
    image_scanning_configuration: Option<ScanInput>,
    encryption_configuration: Option<EncryptionInput>,
}

#[derive(Debug, Deserialize)]
pub struct TagInput {
    #[serde(rename = "Key")]
    key: Option<String>,
    #[serde(rename = "Value")]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterInput {
    filter_type: Option<String>,
    filter: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanInput {
    scan_on_push: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionInput {
    encryption_type: Option<String>,
    kms_key: Option<String>,
}

pub fn create(ctx: &Ctx<'_>, input: CreateInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    // Tags are checked as ECR does; nothing in the 17 operations reads them.
    check_tags(input.tags.as_deref().unwrap_or_default())?;
    let mutability = input.image_tag_mutability.as_deref().unwrap_or("MUTABLE");
    validate::one_of("imageTagMutability", mutability, MUTABILITIES)?;
    let filters = check_filters(mutability, &input.image_tag_mutability_exclusion_filters)?;
    let (encryption_type, kms_key) = match &input.encryption_configuration {
        None => ("AES256".to_owned(), None),
        Some(enc) => check_encryption(ctx, registry, enc)?,
    };

    let mut store = ctx.shared.store();
    if store.repo(registry, name).is_ok() {
        return Err(ApiError::RepositoryAlreadyExists {
            registry: registry.to_owned(),
            name: name.to_owned(),
        });
    }
    if store.repository_count() >= MAX_REPOSITORIES {
        return Err(ApiError::LimitExceeded(format!(
            "The emulator holds at most {MAX_REPOSITORIES} repositories"
        )));
    }
    let repo = Repository {
        registry_id: registry.to_owned(),
        name: name.to_owned(),
        created_at: now_secs(),
        mutability: mutability.to_owned(),
        exclusion_filters: filters,
        scan_on_push: input
            .image_scanning_configuration
            .and_then(|s| s.scan_on_push)
            .unwrap_or(false),
        encryption_type,
        kms_key,
        policy: None,
        images: Vec::new(),
        layers: BTreeMap::new(),
    };
    let answer = json!({ "repository": repository_json(&repo, ctx.region()) });
    store
        .registries
        .entry(registry.to_owned())
        .or_default()
        .insert(name.to_owned(), repo);
    Ok(answer)
}

fn check_tags(tags: &[TagInput]) -> Result<(), ApiError> {
    let mut checked = Vec::with_capacity(tags.len());
    for (i, tag) in tags.iter().enumerate() {
        let key = validate::required(&format!("tags[{i}].Key"), &tag.key)?;
        let value = validate::required(&format!("tags[{i}].Value"), &tag.value)?;
        checked.push((key.clone(), value.clone()));
    }
    if checked.len() > TAGS_MAX {
        return Err(ApiError::TooManyTags(format!(
            "A repository can have at most {TAGS_MAX} tags; {} were given",
            checked.len()
        )));
    }
    for (key, value) in &checked {
        let key_chars = key.chars().count();
        if !(TAG_KEY_MIN..=TAG_KEY_MAX).contains(&key_chars) || key.starts_with("aws:") {
            return Err(ApiError::InvalidTagParameter(format!(
                "Tag key '{key}' must be {TAG_KEY_MIN} to {TAG_KEY_MAX} characters and must not start with 'aws:'"
            )));
        }
        if value.chars().count() > TAG_VALUE_MAX {
            return Err(ApiError::InvalidTagParameter(format!(
                "The value of tag '{key}' must be at most {TAG_VALUE_MAX} characters"
            )));
        }
    }
    Ok(())
}

fn check_filters(
    mutability: &str,
    filters: &Option<Vec<FilterInput>>,
) -> Result<Vec<String>, ApiError> {
    const FIELD: &str = "imageTagMutabilityExclusionFilters";
    let mut checked = Vec::new();
    if let Some(filters) = filters {
        validate::items(FIELD, filters, EXCLUSION_FILTERS_MIN, EXCLUSION_FILTERS_MAX)?;
        for (i, filter) in filters.iter().enumerate() {
            let kind =
                validate::required(&format!("{FIELD}[{i}].filterType"), &filter.filter_type)?;
            validate::one_of(&format!("{FIELD}[{i}].filterType"), kind, &["WILDCARD"])?;
            let field = format!("{FIELD}[{i}].filter");
            let value = validate::required(&field, &filter.filter)?;
            validate::exclusion_filter(&field, value)?;
            checked.push(value.clone());
        }
    }
    // Doc: exclusion filters belong to the *_WITH_EXCLUSION modes only.
    let with_exclusion = mutability.ends_with("_WITH_EXCLUSION");
    if with_exclusion && checked.is_empty() {
        return Err(ApiError::constraint(
            FIELD,
            format!("must be provided when imageTagMutability is {mutability}"),
        ));
    }
    if !with_exclusion && !checked.is_empty() {
        return Err(ApiError::constraint(
            FIELD,
            format!("must not be provided when imageTagMutability is {mutability}"),
        ));
    }
    Ok(checked)
}

fn check_encryption(
    ctx: &Ctx<'_>,
    registry: &str,
    enc: &EncryptionInput,
) -> Result<(String, Option<String>), ApiError> {
    const FIELD: &str = "encryptionConfiguration.encryptionType";
    let kind = validate::required(FIELD, &enc.encryption_type)?;
    validate::one_of(FIELD, kind, ENCRYPTION_TYPES)?;
    if let Some(key) = &enc.kms_key {
        validate::length(
            "encryptionConfiguration.kmsKey",
            key,
            KMS_KEY_MIN,
            KMS_KEY_MAX,
        )?;
    }
    let key = match (kind.as_str(), &enc.kms_key) {
        ("AES256", Some(_)) => {
            return Err(ApiError::constraint(
                "encryptionConfiguration.kmsKey",
                "must not be provided when encryptionType is AES256",
            ));
        }
        ("AES256", None) => None,
        (_, Some(key)) => Some(key.clone()),
        // Doc: without a key, the AWS managed key for ECR is used.
        (_, None) => {
            let id = uuid::Builder::from_random_bytes(random_bytes()).into_uuid();
            Some(format!("arn:aws:kms:{}:{registry}:key/{id}", ctx.region()))
        }
    };
    Ok((kind.clone(), key))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    force: Option<bool>,
}

pub fn delete(ctx: &Ctx<'_>, input: DeleteInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let mut store = ctx.shared.store();
    let repo = store.repo(registry, name)?;
    if !repo.images.is_empty() && !input.force.unwrap_or(false) {
        return Err(ApiError::RepositoryNotEmpty {
            registry: registry.to_owned(),
            name: name.to_owned(),
        });
    }
    let repo = store.remove_repo(registry, name)?;
    Ok(json!({ "repository": repository_json(&repo, ctx.region()) }))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeInput {
    registry_id: Option<String>,
    repository_names: Option<Vec<String>>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

pub fn describe(ctx: &Ctx<'_>, input: DescribeInput) -> Result<Value, ApiError> {
    validate::registry_id("registryId", &input.registry_id)?;
    if let Some(names) = &input.repository_names {
        validate::items("repositoryNames", names, 1, validate::LIST_LIMIT)?;
        for (i, name) in names.iter().enumerate() {
            validate::repository_name(&format!("repositoryNames[{i}]"), name)?;
        }
    }
    let max = validate::max_results(input.max_results)?;
    validate::not_combined(
        "repositoryNames",
        input.repository_names.is_some(),
        input.max_results,
        &input.next_token,
    )?;
    let registry = ctx.registry(&input.registry_id);
    let store = ctx.shared.store();

    if let Some(names) = &input.repository_names {
        let mut seen = HashSet::new();
        let mut repositories = Vec::new();
        for name in names.iter().filter(|n| seen.insert(n.as_str())) {
            repositories.push(repository_json(store.repo(registry, name)?, ctx.region()));
        }
        return Ok(json!({ "repositories": repositories }));
    }

    let op = Operation::DescribeRepositories;
    let after = match &input.next_token {
        Some(token) => Some(ctx.shared.tokens.redeem(op, registry, token)?),
        None => None,
    };
    let entries = store
        .registries
        .get(registry)
        .into_iter()
        .flat_map(|repos| repos.iter())
        .map(|(name, repo)| (name.clone(), repo));
    let page = page(entries, after.as_deref(), max);
    let repositories: Vec<Value> = page
        .items
        .into_iter()
        .map(|repo| repository_json(repo, ctx.region()))
        .collect();
    let mut answer = json!({ "repositories": repositories });
    if let Some(last) = page.more_after {
        answer["nextToken"] = json!(ctx.shared.tokens.issue(op, registry, &last));
    }
    Ok(answer)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyInput {
    registry_id: Option<String>,
    repository_name: Option<String>,
    policy_text: Option<String>,
    #[allow(dead_code)] // accepted; the emulator checks no lock-out rule
    force: Option<bool>,
}

pub fn set_policy(ctx: &Ctx<'_>, input: PolicyInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let text = validate::required("policyText", &input.policy_text)?;
    validate::length("policyText", text, 0, POLICY_TEXT_MAX_CHARS)?;
    policy::check(text)?;
    let mut store = ctx.shared.store();
    store.repo_mut(registry, name)?.policy = Some(text.clone());
    Ok(policy_json(registry, name, text))
}

pub fn get_policy(ctx: &Ctx<'_>, input: PolicyInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let store = ctx.shared.store();
    let policy = store.repo(registry, name)?.policy.clone();
    let text = policy.ok_or_else(|| policy_not_found(registry, name))?;
    Ok(policy_json(registry, name, &text))
}

pub fn delete_policy(ctx: &Ctx<'_>, input: PolicyInput) -> Result<Value, ApiError> {
    let (registry, name) = target(ctx, &input.registry_id, &input.repository_name)?;
    let mut store = ctx.shared.store();
    let policy = store.repo_mut(registry, name)?.policy.take();
    let text = policy.ok_or_else(|| policy_not_found(registry, name))?;
    Ok(policy_json(registry, name, &text))
}

fn policy_json(registry: &str, name: &str, text: &str) -> Value {
    json!({ "registryId": registry, "repositoryName": name, "policyText": text })
}

fn policy_not_found(registry: &str, name: &str) -> ApiError {
    ApiError::RepositoryPolicyNotFound {
        registry: registry.to_owned(),
        name: name.to_owned(),
    }
}
