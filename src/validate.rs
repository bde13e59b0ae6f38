//! ECR's request constraints (`shared/ecr-api-reference.md`), checked before
//! any upstream call.
//!
//! Each request type implements [`Validate`], which records **every**
//! violation with its proto field path (`image_ids[3].image_tag`); [`check`]
//! turns a non-empty list into `Error::InvalidRequest` (INVALID_ARGUMENT with a
//! `google.rpc.BadRequest`). Patterns are anchored, lengths count characters.

use regex::Regex;
use tonic_types::FieldViolation;

use crate::error::Error;
use crate::model::{
    BATCHED_LAYER_DIGEST_MAX, EXCLUSION_FILTER, EXCLUSION_FILTER_MAX, EXCLUSION_FILTER_MIN,
    EXCLUSION_FILTER_PATTERN, EXCLUSION_FILTERS_MAX, EXCLUSION_FILTERS_MIN,
    IMAGE_MANIFEST_MAX_CHARS, IMAGE_TAG_MAX, IMAGE_TAG_MIN, KMS_KEY_MAX, KMS_KEY_MIN, LAYER_DIGEST,
    LAYER_DIGEST_PATTERN, LAYER_PART_MAX_BYTES, LIST_LIMIT, MAX_RESULTS_MAX, MAX_RESULTS_MIN,
    POLICY_TEXT_MAX_CHARS, REGISTRY_ID, REGISTRY_ID_PATTERN, REGISTRY_IDS_MAX, REGISTRY_IDS_MIN,
    REPOSITORY_NAME, REPOSITORY_NAME_MAX, REPOSITORY_NAME_MIN, REPOSITORY_NAME_PATTERN,
    SHA256_DIGEST, SHA256_DIGEST_PATTERN, TAG_KEY_MAX, TAG_KEY_MIN, TAG_VALUE_MAX, TAGS_MAX,
    UPLOAD_ID, UPLOAD_ID_PATTERN,
};
use crate::pb;

/// String bounds ECR's model leaves open: the facade's own, far above any
/// real value, so that no string of any size is forwarded. (ECR's own
/// bounds are in [`crate::model`].)
pub mod bounds {
    /// A pagination token (ECR's are a few hundred characters).
    pub const NEXT_TOKEN: usize = 8192;
    /// A media type (RFC 6838: type and subtype of up to 127 characters).
    pub const MEDIA_TYPE: usize = 255;
    /// A digest of an image or a layer (as ECR's batched layer digest).
    pub const DIGEST: usize = crate::model::BATCHED_LAYER_DIGEST_MAX;
}

/// Limits that are the facade's own rather than ECR's.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most digests one BatchCheckLayerAvailability request may carry (the
    /// facade splits them into upstream batches of [`LIST_LIMIT`]).
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
            self.length(field, tag, IMAGE_TAG_MIN, IMAGE_TAG_MAX);
        }
    }

    /// A page request: `max_results` (ECR's 1–1000) and `next_token`.
    fn page(&mut self, max_results: Option<i32>, next_token: Option<&str>) {
        self.range("max_results", max_results, MAX_RESULTS_MIN, MAX_RESULTS_MAX);
        self.next_token("next_token", next_token);
    }

    /// An images filter (DescribeImages', ListImages'): two optional enums.
    fn image_filter(&mut self, tag_status: i32, image_status: i32) {
        self.enumeration::<pb::TagStatus>("filter.tag_status", tag_status, false);
        self.enumeration::<pb::ImageStatusFilter>("filter.image_status", image_status, false);
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
            self.length(field, value, REPOSITORY_NAME_MIN, REPOSITORY_NAME_MAX);
            self.pattern(field, value, &REPOSITORY_NAME, REPOSITORY_NAME_PATTERN);
        }
    }

    fn image_ids(&mut self, field: &str, ids: &[pb::ImageIdentifier], required: bool) {
        self.items(field, ids.len(), 1, LIST_LIMIT, required);
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
        self.items(field, tags.len(), 1, TAGS_MAX, false);
        for (i, tag) in tags.iter().enumerate() {
            // Tag.Key and Tag.Value are both required by the model; an empty
            // value is a value, an empty key is not.
            let key = format!("{field}[{i}].key");
            if self.required(&key, &tag.key) {
                self.length(&key, &tag.key, TAG_KEY_MIN, TAG_KEY_MAX);
            }
            self.length(&format!("{field}[{i}].value"), &tag.value, 0, TAG_VALUE_MAX);
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

/// Requests whose only members are `registry_id` and `repository_name`.
macro_rules! registry_and_repository {
    ($($request:ident),+ $(,)?) => {$(
        impl Validate for pb::$request {
            fn validate(&self, _: &Limits, v: &mut Violations) {
                v.registry_id("registry_id", self.registry_id.as_deref());
                v.repository_name("repository_name", &self.repository_name);
            }
        }
    )+};
}

registry_and_repository!(
    DeleteRepositoryRequest,
    DeleteRepositoryPolicyRequest,
    GetRepositoryPolicyRequest,
    InitiateLayerUploadRequest,
);

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
            if let Some(why) = length_violation(digest, 0, BATCHED_LAYER_DIGEST_MAX) {
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
            LIST_LIMIT,
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
            LIST_LIMIT,
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
            EXCLUSION_FILTERS_MIN,
            EXCLUSION_FILTERS_MAX,
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
                v.length(
                    &field,
                    &filter.filter,
                    EXCLUSION_FILTER_MIN,
                    EXCLUSION_FILTER_MAX,
                );
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
                v.length(
                    "encryption_configuration.kms_key",
                    key,
                    KMS_KEY_MIN,
                    KMS_KEY_MAX,
                );
            }
        }
    }
}

impl Validate for pb::DescribeImagesRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.image_ids("image_ids", &self.image_ids, false);
        v.page(self.max_results, self.next_token.as_deref());
        if let Some(filter) = &self.filter {
            v.image_filter(filter.tag_status, filter.image_status);
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
            LIST_LIMIT,
            false,
        );
        for (i, name) in self.repository_names.iter().enumerate() {
            v.repository_name(&format!("repository_names[{i}]"), name);
        }
        v.page(self.max_results, self.next_token.as_deref());
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
        v.items(
            "registry_ids",
            self.registry_ids.len(),
            REGISTRY_IDS_MIN,
            REGISTRY_IDS_MAX,
            false,
        );
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

impl Validate for pb::ListImagesRequest {
    fn validate(&self, _: &Limits, v: &mut Violations) {
        v.registry_id("registry_id", self.registry_id.as_deref());
        v.repository_name("repository_name", &self.repository_name);
        v.page(self.max_results, self.next_token.as_deref());
        if let Some(filter) = &self.filter {
            v.image_filter(filter.tag_status, filter.image_status);
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
