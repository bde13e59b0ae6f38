//! ECR's input constraints (`shared/ecr-api-reference.md` §2–§6) as the
//! service answers them: the first broken rule becomes an
//! `InvalidParameterException` reading
//! `Invalid parameter at '<member>' failed to satisfy constraint: '<rule>'`.
//!
//! Patterns and limits are the model's ([`crate::model`]), patterns anchored;
//! lengths count characters. Member paths use the wire names, with list
//! positions in brackets (`imageIds[2].imageTag`).

use regex::Regex;

use super::error::ApiError;
/// Most items in any request list (`imageIds`, `layerDigests`, ...).
pub use crate::model::LIST_LIMIT;
use crate::model::{
    EXCLUSION_FILTER, EXCLUSION_FILTER_MAX, EXCLUSION_FILTER_MIN, EXCLUSION_FILTER_PATTERN,
    IMAGE_TAG_MAX, IMAGE_TAG_MIN, LAYER_DIGEST, LAYER_DIGEST_PATTERN, MAX_RESULTS_MAX,
    MAX_RESULTS_MIN, REGISTRY_ID, REGISTRY_ID_PATTERN, REPOSITORY_NAME, REPOSITORY_NAME_MAX,
    REPOSITORY_NAME_MIN, REPOSITORY_NAME_PATTERN, UPLOAD_ID, UPLOAD_ID_PATTERN,
};

/// A required member: `must not be null` when absent.
pub fn required<'a, T>(field: &str, value: &'a Option<T>) -> Result<&'a T, ApiError> {
    value
        .as_ref()
        .ok_or_else(|| ApiError::constraint(field, "must not be null"))
}

/// A string length in characters, `min..=max`.
pub fn length(field: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let chars = value.chars().count();
    if chars < min {
        Err(ApiError::constraint(
            field,
            format!("must have length greater than or equal to {min}"),
        ))
    } else if chars > max {
        Err(ApiError::constraint(
            field,
            format!("must have length less than or equal to {max}"),
        ))
    } else {
        Ok(())
    }
}

fn pattern(field: &str, value: &str, regex: &Regex, shown: &str) -> Result<(), ApiError> {
    if regex.is_match(value) {
        Ok(())
    } else {
        Err(ApiError::constraint(
            field,
            format!("must satisfy regular expression pattern: {shown}"),
        ))
    }
}

/// A list length, `min..=max` items (the model calls this a length too).
pub fn items<T>(field: &str, list: &[T], min: usize, max: usize) -> Result<(), ApiError> {
    length_of(field, list.len(), min, max)
}

fn length_of(field: &str, len: usize, min: usize, max: usize) -> Result<(), ApiError> {
    if len < min {
        Err(ApiError::constraint(
            field,
            format!("must have length greater than or equal to {min}"),
        ))
    } else if len > max {
        Err(ApiError::constraint(
            field,
            format!("must have length less than or equal to {max}"),
        ))
    } else {
        Ok(())
    }
}

/// A number in `min..=max`.
pub fn range(field: &str, value: i64, min: i64, max: i64) -> Result<(), ApiError> {
    if value < min {
        Err(ApiError::constraint(
            field,
            format!("must be greater than or equal to {min}"),
        ))
    } else if value > max {
        Err(ApiError::constraint(
            field,
            format!("must be less than or equal to {max}"),
        ))
    } else {
        Ok(())
    }
}

/// An enum member.
pub fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::constraint(
            field,
            format!("must satisfy enum value set: [{}]", allowed.join(", ")),
        ))
    }
}

/// The optional `registryId`: 12 digits.
pub fn registry_id(field: &str, value: &Option<String>) -> Result<(), ApiError> {
    match value {
        Some(id) => pattern(field, id, &REGISTRY_ID, REGISTRY_ID_PATTERN),
        None => Ok(()),
    }
}

/// A repository name: 2..256 characters matching the model pattern.
pub fn repository_name(field: &str, value: &str) -> Result<(), ApiError> {
    length(field, value, REPOSITORY_NAME_MIN, REPOSITORY_NAME_MAX)?;
    pattern(field, value, &REPOSITORY_NAME, REPOSITORY_NAME_PATTERN)
}

/// The required `repositoryName` member.
pub fn required_repository_name(value: &Option<String>) -> Result<&str, ApiError> {
    let name = required("repositoryName", value)?;
    repository_name("repositoryName", name)?;
    Ok(name)
}

/// A `LayerDigest` (`algorithm:hex`).
pub fn layer_digest(field: &str, value: &str) -> Result<(), ApiError> {
    pattern(field, value, &LAYER_DIGEST, LAYER_DIGEST_PATTERN)
}

/// Whether `value` is shaped like a digest; image digests have no model
/// constraint, so the batch operations report this per item.
pub fn is_digest(value: &str) -> bool {
    LAYER_DIGEST.is_match(value)
}

/// An `UploadId` (UUID form).
pub fn upload_id(field: &str, value: &str) -> Result<(), ApiError> {
    pattern(field, value, &UPLOAD_ID, UPLOAD_ID_PATTERN)
}

/// An image tag mutability exclusion filter value.
pub fn exclusion_filter(field: &str, value: &str) -> Result<(), ApiError> {
    length(field, value, EXCLUSION_FILTER_MIN, EXCLUSION_FILTER_MAX)?;
    pattern(field, value, &EXCLUSION_FILTER, EXCLUSION_FILTER_PATTERN)
}

/// An `ImageTag`: 1..300 characters, no pattern.
pub fn image_tag(field: &str, value: &str) -> Result<(), ApiError> {
    length(field, value, IMAGE_TAG_MIN, IMAGE_TAG_MAX)
}

/// `maxResults`: 1..1000, default page 100.
pub fn max_results(value: Option<i64>) -> Result<usize, ApiError> {
    match value {
        None => Ok(DEFAULT_PAGE),
        Some(n) => {
            range(
                "maxResults",
                n,
                MAX_RESULTS_MIN.into(),
                MAX_RESULTS_MAX.into(),
            )?;
            Ok(usize::try_from(n).unwrap_or(DEFAULT_PAGE))
        }
    }
}

/// Items per page when `maxResults` is omitted.
pub const DEFAULT_PAGE: usize = 100;

/// Doc: `nextToken`/`maxResults` "cannot be used when you specify" `list`.
pub fn not_combined(
    list_field: &str,
    list_given: bool,
    max_results: Option<i64>,
    next_token: &Option<String>,
) -> Result<(), ApiError> {
    if !list_given {
        return Ok(());
    }
    if max_results.is_some() {
        return Err(ApiError::constraint(
            "maxResults",
            format!("must not be combined with {list_field}"),
        ));
    }
    if next_token.is_some() {
        return Err(ApiError::constraint(
            "nextToken",
            format!("must not be combined with {list_field}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<(), ApiError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn repository_name_bounds() {
        assert!(repository_name("repositoryName", "ab").is_ok());
        assert!(message(repository_name("repositoryName", "a")).ends_with(
            "'repositoryName' failed to satisfy constraint: 'must have length greater than or equal to 2'"
        ));
        assert!(repository_name("repositoryName", &"a".repeat(256)).is_ok());
        assert!(
            message(repository_name("repositoryName", &"a".repeat(257)))
                .contains("must have length less than or equal to 256")
        );
    }

    #[test]
    fn repository_name_pattern_is_anchored() {
        for good in ["a.b", "a__b", "a---b", "1abc", "team/app", "a/b/c"] {
            assert!(repository_name("n", good).is_ok(), "{good}");
        }
        for bad in ["a___b", "a._b", "Ab", "a//b", "-ab", "ab-", "ab/", "a b"] {
            assert!(
                message(repository_name("n", bad)).contains("regular expression"),
                "{bad}"
            );
        }
    }

    #[test]
    fn lengths_count_characters() {
        assert!(image_tag("imageTag", &"é".repeat(300)).is_ok());
        assert!(image_tag("imageTag", &"é".repeat(301)).is_err());
        assert!(image_tag("imageTag", "").is_err());
    }

    #[test]
    fn list_and_range_bounds() {
        assert!(items("imageIds", &[0; 1], 1, LIST_LIMIT).is_ok());
        assert!(items("imageIds", &[0; 100], 1, LIST_LIMIT).is_ok());
        assert!(
            message(items("imageIds", &[0; 101], 1, LIST_LIMIT))
                .contains("less than or equal to 100")
        );
        assert!(
            message(items::<u8>("imageIds", &[], 1, LIST_LIMIT))
                .contains("greater than or equal to 1")
        );
        assert_eq!(max_results(None).unwrap(), 100);
        assert_eq!(max_results(Some(1)).unwrap(), 1);
        assert_eq!(max_results(Some(1000)).unwrap(), 1000);
        assert!(message(max_results(Some(0)).map(drop)).contains("greater than or equal to 1"));
        assert!(message(max_results(Some(1001)).map(drop)).contains("less than or equal to 1000"));
    }

    #[test]
    fn registry_ids_are_twelve_digits() {
        assert!(registry_id("registryId", &None).is_ok());
        assert!(registry_id("registryId", &Some("123456789012".into())).is_ok());
        assert!(registry_id("registryId", &Some("12345678901".into())).is_err());
        assert!(registry_id("registryId", &Some("1234567890123".into())).is_err());
    }

    #[test]
    fn digests_uploads_filters_and_enums() {
        assert!(layer_digest("d", "sha256:abcDEF0").is_ok());
        assert!(layer_digest("d", "sha256:xyz").is_err());
        assert!(layer_digest("d", "sha256:").is_err());
        assert!(upload_id("u", "0d5f1c2e-1a2b-4c3d-8e9f-0123456789ab").is_ok());
        assert!(upload_id("u", "0d5f1c2e-1a2b-4c3d-8e9f-0123456789abc").is_err());
        assert!(exclusion_filter("f", "release-*").is_ok());
        assert!(exclusion_filter("f", &"a".repeat(129)).is_err());
        assert!(exclusion_filter("f", "a/b").is_err());
        assert!(one_of("t", "ANY", &["TAGGED", "UNTAGGED", "ANY"]).is_ok());
        assert!(message(one_of("t", "any", &["ANY"])).contains("enum value set: [ANY]"));
        assert!(
            message(required::<String>("repositoryName", &None).map(drop))
                .contains("must not be null")
        );
    }

    #[test]
    fn pagination_members_exclude_explicit_lists() {
        assert!(not_combined("imageIds", false, Some(5), &Some("t".into())).is_ok());
        assert!(not_combined("imageIds", true, None, &None).is_ok());
        assert!(message(not_combined("imageIds", true, Some(5), &None)).contains("'maxResults'"));
        assert!(
            message(not_combined("imageIds", true, None, &Some("t".into())))
                .contains("'nextToken'")
        );
    }
}
