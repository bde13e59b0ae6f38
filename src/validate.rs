//! ECR's request constraints (`shared/ecr-api-reference.md`), checked before
//! any upstream call.
//!
//! Each request type implements [`Validate`], which records **every**
//! violation with its proto field path (`image_ids[3].image_tag`); [`check`]
//! turns a non-empty list into `Error::InvalidRequest` (INVALID_ARGUMENT with a
//! `google.rpc.BadRequest`). Patterns are anchored, lengths count characters.

use std::sync::LazyLock;

use regex::Regex;
use tonic_types::FieldViolation;

use crate::error::Error;
use crate::pb;

/// ECR's limit on digests in one upstream BatchCheckLayerAvailability call,
/// and on the items of every other request list.
pub const ECR_LIST_LIMIT: usize = 100;

/// The RepositoryName pattern, verbatim from the ECR model.
pub const REPOSITORY_NAME_PATTERN: &str =
    r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*";
/// The RegistryId pattern.
pub const REGISTRY_ID_PATTERN: &str = "[0-9]{12}";
/// The LayerDigest pattern.
pub const LAYER_DIGEST_PATTERN: &str = "[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+";
/// The UploadId pattern.
pub const UPLOAD_ID_PATTERN: &str =
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
/// The facade's own digest pattern for layers it hashes itself (PushLayer).
pub const SHA256_DIGEST_PATTERN: &str = "sha256:[a-f0-9]{64}";
/// ECR's limit on one UploadLayerPart blob (LayerPartBlob, decoded bytes).
pub const LAYER_PART_MAX_BYTES: usize = 20_971_520;
/// ECR's limit on an image manifest (ImageManifest, characters).
pub const IMAGE_MANIFEST_MAX_CHARS: usize = 4_194_304;
/// ECR's limit on a repository policy (RepositoryPolicyText, characters).
pub const POLICY_TEXT_MAX_CHARS: usize = 10_240;
/// The ImageTagMutabilityExclusionFilterValue pattern (anchored in the model).
pub const EXCLUSION_FILTER_PATTERN: &str = "^[0-9a-zA-Z._*-]{1,128}$";

/// String bounds. ECR documents the tag ones; for the strings its model
/// leaves unbounded, these are the facade's own, far above any real value,
/// so that no string of any size is forwarded.
pub mod bounds {
    /// Tag key length (ECR: 1–128).
    pub const TAG_KEY: usize = 128;
    /// Tag value length (ECR: 0–256).
    pub const TAG_VALUE: usize = 256;
    /// Tags on one repository (ECR: at most 50, else TooManyTagsException).
    pub const TAGS: usize = 50;
    /// A pagination token (ECR's are a few hundred characters).
    pub const NEXT_TOKEN: usize = 8192;
    /// A media type (RFC 6838: type and subtype of up to 127 characters).
    pub const MEDIA_TYPE: usize = 255;
    /// A digest of an image or a layer (as ECR's batched layer digest).
    pub const DIGEST: usize = 1000;
}

fn anchored(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("ECR model patterns compile")
}

// The patterns, anchored as ECR applies them (whole value); the emulator
// checks its requests with the same ones.
pub(crate) static REPOSITORY_NAME: LazyLock<Regex> =
    LazyLock::new(|| anchored(REPOSITORY_NAME_PATTERN));
pub(crate) static REGISTRY_ID: LazyLock<Regex> = LazyLock::new(|| anchored(REGISTRY_ID_PATTERN));
pub(crate) static LAYER_DIGEST: LazyLock<Regex> = LazyLock::new(|| anchored(LAYER_DIGEST_PATTERN));
pub(crate) static UPLOAD_ID: LazyLock<Regex> = LazyLock::new(|| anchored(UPLOAD_ID_PATTERN));
pub(crate) static SHA256_DIGEST: LazyLock<Regex> =
    LazyLock::new(|| anchored(SHA256_DIGEST_PATTERN));
pub(crate) static EXCLUSION_FILTER: LazyLock<Regex> =
    LazyLock::new(|| anchored(EXCLUSION_FILTER_PATTERN));

/// Limits that are the facade's own rather than ECR's.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most digests one BatchCheckLayerAvailability request may carry (the
    /// facade splits them into upstream batches of [`ECR_LIST_LIMIT`]).
    pub max_layer_digests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Worst case 8 MB on the wire: a quarter of the default budget
            // of request bytes in flight (see `crate::budget`).
            max_layer_digests: 2_000,
        }
    }
}

/// A request whose fields can be checked against ECR's constraints.
pub trait Validate {
    /// Records every violation into `violations`.
    fn validate(&self, limits: &Limits, violations: &mut Violations);
}

/// Checks `request`; `Err(Error::InvalidRequest)` lists every violation.
pub fn check<R: Validate>(request: &R, limits: &Limits) -> Result<(), Error> {
    let mut violations = Violations::default();
    request.validate(limits, &mut violations);
    if violations.0.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidRequest(violations.0))
    }
}

/// The violations found so far.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    fn required(&mut self, field: &str, value: &str) -> bool {
        if value.is_empty() {
            self.add(field, "is required");
            false
        } else {
            true
        }
    }

    fn length(&mut self, field: &str, value: &str, min: usize, max: usize) {
        if let Some(why) = length_violation(value, min, max) {
            self.add(field, why);
        }
    }

    fn pattern(&mut self, field: &str, value: &str, regex: &Regex, shown: &str) {
        if !regex.is_match(value) {
            self.add(field, format!("must match pattern {shown}"));
        }
    }

    /// A list with bounds `min..=max` items; an empty optional list counts as
    /// omitted (protobuf cannot tell the two apart).
    fn items(&mut self, field: &str, len: usize, min: usize, max: usize, required: bool) {
        if len == 0 {
            if required {
                self.add(field, "is required");
            }
        } else if len < min {
            self.add(field, format!("must have at least {min} items"));
        } else if len > max {
            self.add(field, format!("must have at most {max} items"));
        }
    }

    fn range(&mut self, field: &str, value: Option<i32>, min: i32, max: i32) {
        match value {
            Some(v) if v < min => {
                self.add(field, format!("must be greater than or equal to {min}"))
            }
            Some(v) if v > max => self.add(field, format!("must be less than or equal to {max}")),
            _ => {}
        }
    }

    /// A byte position or size (ECR's PartSize: int64 ≥ 0).
    fn non_negative(&mut self, field: &str, value: Option<i64>, required: bool) {
        match value {
            None if required => self.add(field, "is required"),
            Some(v) if v < 0 => self.add(field, "must be greater than or equal to 0"),
            _ => {}
        }
    }

    fn upload_id(&mut self, field: &str, value: &str) {
        if self.required(field, value) {
            self.pattern(field, value, &UPLOAD_ID, UPLOAD_ID_PATTERN);
        }
    }

    fn image_tag(&mut self, field: &str, value: Option<&str>) {
        if let Some(tag) = value {
            self.length(field, tag, 1, 300);
        }
    }

    fn enumeration<E>(&mut self, field: &str, value: i32, required: bool)
    where
        E: TryFrom<i32>,
    {
        if value == 0 {
            if required {
                self.add(field, "is required");
            }
        } else if E::try_from(value).is_err() {
            self.add(field, format!("{value} is not a known value of this enum"));
        }
    }

    fn registry_id(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.pattern(field, value, &REGISTRY_ID, REGISTRY_ID_PATTERN);
        }
    }

    fn repository_name(&mut self, field: &str, value: &str) {
        if self.required(field, value) {
            self.length(field, value, 2, 256);
            self.pattern(field, value, &REPOSITORY_NAME, REPOSITORY_NAME_PATTERN);
        }
    }

    fn image_ids(&mut self, field: &str, ids: &[pb::ImageIdentifier], required: bool) {
        self.items(field, ids.len(), 1, ECR_LIST_LIMIT, required);
        for (i, id) in ids.iter().enumerate() {
            self.image_tag(&format!("{field}[{i}].image_tag"), id.image_tag.as_deref());
            if let Some(digest) = &id.image_digest {
                let path = format!("{field}[{i}].image_digest");
                self.length(&path, digest, 0, bounds::DIGEST);
            }
        }
    }

    fn layer_digest(&mut self, field: &str, value: &str) {
        if self.required(field, value) {
            // Length first: no pattern match over an arbitrarily long value.
            match length_violation(value, 0, bounds::DIGEST) {
                Some(why) => self.add(field, why),
                None => self.pattern(field, value, &LAYER_DIGEST, LAYER_DIGEST_PATTERN),
            }
        }
    }

    fn next_token(&mut self, field: &str, value: Option<&str>) {
        if let Some(token) = value {
            self.length(field, token, 1, bounds::NEXT_TOKEN);
        }
    }

    fn tags(&mut self, field: &str, tags: &[pb::Tag]) {
        self.items(field, tags.len(), 1, bounds::TAGS, false);
        for (i, tag) in tags.iter().enumerate() {
            // Tag.Key and Tag.Value are both required by the model; an empty
            // value is a value, an empty key is not.
            let key = format!("{field}[{i}].key");
            if self.required(&key, &tag.key) {
                self.length(&key, &tag.key, 1, bounds::TAG_KEY);
            }
            self.length(
                &format!("{field}[{i}].value"),
                &tag.value,
                0,
                bounds::TAG_VALUE,
            );
        }
    }
}

fn length_violation(value: &str, min: usize, max: usize) -> Option<String> {
    // Lengths are in characters (ASCII: one byte each).
    let chars = if value.is_ascii() {
        value.len()
    } else {
        value.chars().count()
    };
    if chars < min {
        Some(format!("must have length greater than or equal to {min}"))
    } else if chars > max {
        Some(format!("must have length less than or equal to {max}"))
    } else {
        None
    }
}

impl Validate for pb::BatchCheckLayerAvailabilityRequest {
    fn validate(&self, limits: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.items(
            "layer_digests",
            self.layer_digests.len(),
            1,
            limits.max_layer_digests,
            true,
        );
        for (i, digest) in self.layer_digests.iter().enumerate() {
            if let Some(why) = length_violation(digest, 0, 1000) {
                v.add(format!("layer_digests[{i}]"), why);
            }
        }
    }
}

impl Validate for pb::BatchDeleteImageRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.image_ids("image_ids", &self.image_ids, true);
    }
}

impl Validate for pb::BatchGetImageRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.image_ids("image_ids", &self.image_ids, true);
        v.items(
            "accepted_media_types",
            self.accepted_media_types.len(),
            1,
            ECR_LIST_LIMIT,
            false,
        );
        for (i, media_type) in self.accepted_media_types.iter().enumerate() {
            let field = format!("accepted_media_types[{i}]");
            v.length(&field, media_type, 1, bounds::MEDIA_TYPE);
        }
    }
}

impl Validate for pb::CompleteLayerUploadRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.upload_id("upload_id", &self.upload_id);
        v.items(
            "layer_digests",
            self.layer_digests.len(),
            1,
            ECR_LIST_LIMIT,
            true,
        );
        for (i, digest) in self.layer_digests.iter().enumerate() {
            v.layer_digest(&format!("layer_digests[{i}]"), digest);
        }
    }
}

impl Validate for pb::CreateRepositoryRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.tags("tags", &self.tags);
        v.enumeration::<pb::ImageTagMutability>(
            "image_tag_mutability",
            self.image_tag_mutability,
            false,
        );
        let filters = &self.image_tag_mutability_exclusion_filters;
        v.items(
            "image_tag_mutability_exclusion_filters",
            filters.len(),
            1,
            5,
            false,
        );
        for (i, filter) in filters.iter().enumerate() {
            let path = format!("image_tag_mutability_exclusion_filters[{i}]");
            v.enumeration::<pb::ImageTagMutabilityExclusionFilterType>(
                &format!("{path}.filter_type"),
                filter.filter_type,
                true,
            );
            let field = format!("{path}.filter");
            if v.required(&field, &filter.filter) {
                v.length(&field, &filter.filter, 1, 128);
                v.pattern(
                    &field,
                    &filter.filter,
                    &EXCLUSION_FILTER,
                    EXCLUSION_FILTER_PATTERN,
                );
            }
        }
        if let Some(encryption) = &self.encryption_configuration {
            v.enumeration::<pb::EncryptionType>(
                "encryption_configuration.encryption_type",
                encryption.encryption_type,
                true,
            );
            if let Some(key) = &encryption.kms_key {
                v.length("encryption_configuration.kms_key", key, 1, 2048);
            }
        }
    }
}

impl Validate for pb::DeleteRepositoryRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
    }
}

impl Validate for pb::DeleteRepositoryPolicyRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
    }
}

impl Validate for pb::DescribeImagesRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.image_ids("image_ids", &self.image_ids, false);
        v.range("max_results", self.max_results, 1, 1000);
        v.next_token("next_token", self.next_token.as_deref());
        if let Some(filter) = &self.filter {
            v.enumeration::<pb::TagStatus>("filter.tag_status", filter.tag_status, false);
            v.enumeration::<pb::ImageStatusFilter>(
                "filter.image_status",
                filter.image_status,
                false,
            );
        }
        // Doc: "This option cannot be used when you specify images with imageIds."
        if !self.image_ids.is_empty() {
            if self.max_results.is_some() {
                v.add("max_results", "must not be combined with image_ids");
            }
            if self.next_token.is_some() {
                v.add("next_token", "must not be combined with image_ids");
            }
        }
    }
}

impl Validate for pb::DescribeRepositoriesRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.items(
            "repository_names",
            self.repository_names.len(),
            1,
            ECR_LIST_LIMIT,
            false,
        );
        for (i, name) in self.repository_names.iter().enumerate() {
            v.repository_name(&format!("repository_names[{i}]"), name);
        }
        v.range("max_results", self.max_results, 1, 1000);
        v.next_token("next_token", self.next_token.as_deref());
        // Doc: "This option cannot be used when you specify repositories with
        // repositoryNames."
        if !self.repository_names.is_empty() {
            if self.max_results.is_some() {
                v.add("max_results", "must not be combined with repository_names");
            }
            if self.next_token.is_some() {
                v.add("next_token", "must not be combined with repository_names");
            }
        }
    }
}

impl Validate for pb::GetAuthorizationTokenRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.items("registry_ids", self.registry_ids.len(), 1, 10, false);
        for (i, id) in self.registry_ids.iter().enumerate() {
            let field = format!("registry_ids[{i}]");
            v.pattern(&field, id, &REGISTRY_ID, REGISTRY_ID_PATTERN);
        }
    }
}

impl Validate for pb::GetDownloadUrlForLayerRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.layer_digest("layer_digest", &self.layer_digest);
    }
}

impl Validate for pb::GetRepositoryPolicyRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
    }
}

impl Validate for pb::InitiateLayerUploadRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
    }
}

impl Validate for pb::ListImagesRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.range("max_results", self.max_results, 1, 1000);
        v.next_token("next_token", self.next_token.as_deref());
        if let Some(filter) = &self.filter {
            v.enumeration::<pb::TagStatus>("filter.tag_status", filter.tag_status, false);
            v.enumeration::<pb::ImageStatusFilter>(
                "filter.image_status",
                filter.image_status,
                false,
            );
        }
    }
}

impl Validate for pb::PullLayerRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.layer_digest("layer_digest", &self.layer_digest);
        v.non_negative("offset", self.offset, false);
    }
}

/// PushLayer's header; its fields are reported under `header.`.
impl Validate for pb::PushLayerHeader {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("header.registry_id", self.registry_id.as_deref());
        v.repository_name("header.repository_name", &self.repository_name);
        if let Some(digest) = &self.expected_digest {
            // The facade hashes the bytes itself, with sha256.
            v.pattern(
                "header.expected_digest",
                digest,
                &SHA256_DIGEST,
                SHA256_DIGEST_PATTERN,
            );
        }
        v.non_negative("header.total_size", self.total_size, false);
        if let Some(upload_id) = &self.upload_id {
            v.upload_id("header.upload_id", upload_id);
        }
    }
}

impl Validate for pb::PutImageRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        if v.required("image_manifest", &self.image_manifest) {
            v.length(
                "image_manifest",
                &self.image_manifest,
                1,
                IMAGE_MANIFEST_MAX_CHARS,
            );
        }
        v.image_tag("image_tag", self.image_tag.as_deref());
        if let Some(media_type) = &self.image_manifest_media_type {
            v.length(
                "image_manifest_media_type",
                media_type,
                1,
                bounds::MEDIA_TYPE,
            );
        }
        if let Some(digest) = &self.image_digest {
            v.length("image_digest", digest, 0, bounds::DIGEST);
        }
    }
}

impl Validate for pb::SetRepositoryPolicyRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        // Required, but the model allows an empty text (ECR then refuses it
        // as a policy): only the length is the facade's to check.
        v.length("policy_text", &self.policy_text, 0, POLICY_TEXT_MAX_CHARS);
    }
}

impl Validate for pb::UploadLayerPartRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.upload_id("upload_id", &self.upload_id);
        v.non_negative("part_first_byte", self.part_first_byte, true);
        v.non_negative("part_last_byte", self.part_last_byte, true);
        if self.layer_part_blob.len() > LAYER_PART_MAX_BYTES {
            v.add(
                "layer_part_blob",
                format!("must have at most {LAYER_PART_MAX_BYTES} bytes"),
            );
        }
    }
}

#[cfg(test)]
mod tests;
