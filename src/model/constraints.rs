//! ECR's patterns and numeric limits (`shared/ecr-api-reference.md`), each
//! named once: the facade's validation and the emulator's both read them.
//! Lengths count characters, list bounds items.

use std::sync::LazyLock;

use regex::Regex;

/// Most items in any request list (`imageIds`, `layerDigests`,
/// `repositoryNames`, `acceptedMediaTypes`), and so the size of one upstream
/// BatchCheckLayerAvailability batch.
pub const LIST_LIMIT: usize = 100;

/// RepositoryName length.
pub const REPOSITORY_NAME_MIN: usize = 2;
/// RepositoryName length.
pub const REPOSITORY_NAME_MAX: usize = 256;
/// ImageTag length.
pub const IMAGE_TAG_MIN: usize = 1;
/// ImageTag length.
pub const IMAGE_TAG_MAX: usize = 300;
/// `maxResults` of the paginated operations.
pub const MAX_RESULTS_MIN: i32 = 1;
/// `maxResults` of the paginated operations.
pub const MAX_RESULTS_MAX: i32 = 1000;
/// A KMS key id or ARN (`encryptionConfiguration.kmsKey`).
pub const KMS_KEY_MIN: usize = 1;
/// A KMS key id or ARN (`encryptionConfiguration.kmsKey`).
pub const KMS_KEY_MAX: usize = 2048;
/// One image tag mutability exclusion filter value.
pub const EXCLUSION_FILTER_MIN: usize = 1;
/// One image tag mutability exclusion filter value.
pub const EXCLUSION_FILTER_MAX: usize = 128;
/// Exclusion filters on one repository.
pub const EXCLUSION_FILTERS_MIN: usize = 1;
/// Exclusion filters on one repository.
pub const EXCLUSION_FILTERS_MAX: usize = 5;
/// GetAuthorizationToken's `registryIds`.
pub const REGISTRY_IDS_MIN: usize = 1;
/// GetAuthorizationToken's `registryIds`.
pub const REGISTRY_IDS_MAX: usize = 10;
/// A BatchedOperationLayerDigest (BatchCheckLayerAvailability's digests).
pub const BATCHED_LAYER_DIGEST_MAX: usize = 1000;
/// One UploadLayerPart blob (LayerPartBlob, decoded bytes): 20 MiB.
pub const LAYER_PART_MAX_BYTES: usize = 20 * 1024 * 1024;
/// An image manifest (ImageManifest, characters).
pub const IMAGE_MANIFEST_MAX_CHARS: usize = 4_194_304;
/// A repository policy (RepositoryPolicyText, characters).
pub const POLICY_TEXT_MAX_CHARS: usize = 10_240;
/// Tag key length (1..=128).
pub const TAG_KEY_MIN: usize = 1;
/// Tag key length (1..=128).
pub const TAG_KEY_MAX: usize = 128;
/// Tag value length (0..=256).
pub const TAG_VALUE_MAX: usize = 256;
/// Tags on one repository (more: TooManyTagsException).
pub const TAGS_MAX: usize = 50;

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
/// The ImageTagMutabilityExclusionFilterValue pattern (anchored in the model).
pub const EXCLUSION_FILTER_PATTERN: &str = "^[0-9a-zA-Z._*-]{1,128}$";

fn anchored(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("ECR model patterns compile")
}

// The patterns, anchored as ECR applies them (whole value).
/// [`REPOSITORY_NAME_PATTERN`], anchored.
pub static REPOSITORY_NAME: LazyLock<Regex> = LazyLock::new(|| anchored(REPOSITORY_NAME_PATTERN));
/// [`REGISTRY_ID_PATTERN`], anchored.
pub static REGISTRY_ID: LazyLock<Regex> = LazyLock::new(|| anchored(REGISTRY_ID_PATTERN));
/// [`LAYER_DIGEST_PATTERN`], anchored.
pub static LAYER_DIGEST: LazyLock<Regex> = LazyLock::new(|| anchored(LAYER_DIGEST_PATTERN));
/// [`UPLOAD_ID_PATTERN`], anchored.
pub static UPLOAD_ID: LazyLock<Regex> = LazyLock::new(|| anchored(UPLOAD_ID_PATTERN));
/// [`SHA256_DIGEST_PATTERN`], anchored.
pub static SHA256_DIGEST: LazyLock<Regex> = LazyLock::new(|| anchored(SHA256_DIGEST_PATTERN));
/// [`EXCLUSION_FILTER_PATTERN`], anchored.
pub static EXCLUSION_FILTER: LazyLock<Regex> = LazyLock::new(|| anchored(EXCLUSION_FILTER_PATTERN));
