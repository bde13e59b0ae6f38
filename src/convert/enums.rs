//! Protobuf enum numbers ⇄ aws-sdk-ecr enums.
//!
//! Variant names coincide on both sides (prost strips the `ENUM_NAME_`
//! prefix, the SDK camel-cases ECR's value), so one macro pairs them. Values
//! the SDK does not know (newer than its model) are matched by name; values
//! neither side knows become `*_UNSPECIFIED` instead of failing the call.

use aws_sdk_ecr::types as sdk;

use crate::pb;

/// An SDK enum with a protobuf twin.
pub trait EnumPair: Sized {
    /// The protobuf number for this value (`0` = unspecified/unknown).
    fn to_pb(&self) -> i32;
    /// The SDK value for a protobuf number; `None` for unspecified or unknown.
    fn from_pb(value: i32) -> Option<Self>;
}

/// `InvalidImageDigest` → `INVALID_IMAGE_DIGEST`, `MUTABLE` → `MUTABLE`.
fn upper_snake(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let mut previous_lower = false;
    for c in value.chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c.to_ascii_uppercase());
    }
    out
}

macro_rules! enum_pair {
    ($sdk:ident, $pb:ident, $prefix:literal, [$($variant:ident),+ $(,)?]) => {
        impl EnumPair for sdk::$sdk {
            fn to_pb(&self) -> i32 {
                match self {
                    $(sdk::$sdk::$variant => pb::$pb::$variant as i32,)+
                    other => {
                        let name = format!(concat!($prefix, "{}"), upper_snake(other.as_str()));
                        pb::$pb::from_str_name(&name).map_or(0, |v| v as i32)
                    }
                }
            }

            fn from_pb(value: i32) -> Option<Self> {
                match pb::$pb::try_from(value).ok()? {
                    $(pb::$pb::$variant => Some(sdk::$sdk::$variant),)+
                    pb::$pb::Unspecified => None,
                    #[allow(unreachable_patterns)]
                    other => Some(sdk::$sdk::from(
                        other.as_str_name().trim_start_matches($prefix),
                    )),
                }
            }
        }
    };
}

enum_pair!(
    ImageTagMutability,
    ImageTagMutability,
    "IMAGE_TAG_MUTABILITY_",
    [
        Mutable,
        Immutable,
        ImmutableWithExclusion,
        MutableWithExclusion
    ]
);
enum_pair!(
    ImageTagMutabilityExclusionFilterType,
    ImageTagMutabilityExclusionFilterType,
    "IMAGE_TAG_MUTABILITY_EXCLUSION_FILTER_TYPE_",
    [Wildcard]
);
enum_pair!(
    EncryptionType,
    EncryptionType,
    "ENCRYPTION_TYPE_",
    [Aes256, Kms, KmsDsse]
);
enum_pair!(TagStatus, TagStatus, "TAG_STATUS_", [Tagged, Untagged, Any]);
enum_pair!(
    ImageStatusFilter,
    ImageStatusFilter,
    "IMAGE_STATUS_FILTER_",
    [Active, Archived, Activating, Any]
);
enum_pair!(
    ImageStatus,
    ImageStatus,
    "IMAGE_STATUS_",
    [Active, Archived, Activating]
);
enum_pair!(
    LayerAvailability,
    LayerAvailability,
    "LAYER_AVAILABILITY_",
    [Available, Unavailable, Archived]
);
enum_pair!(
    ScanStatus,
    ScanStatus,
    "SCAN_STATUS_",
    [
        InProgress,
        Complete,
        Failed,
        UnsupportedImage,
        Active,
        Pending,
        ScanEligibilityExpired,
        FindingsUnavailable,
        LimitExceeded,
        ImageArchived,
    ]
);
enum_pair!(
    ImageFailureCode,
    ImageFailureCode,
    "IMAGE_FAILURE_CODE_",
    [
        InvalidImageDigest,
        InvalidImageTag,
        ImageTagDoesNotMatchDigest,
        ImageNotFound,
        MissingDigestAndTag,
        ImageReferencedByManifestList,
        KmsError,
        UpstreamAccessDenied,
        UpstreamTooManyRequests,
        UpstreamUnavailable,
        ImageInaccessible,
    ]
);
enum_pair!(
    LayerFailureCode,
    LayerFailureCode,
    "LAYER_FAILURE_CODE_",
    [InvalidLayerDigest, MissingLayerDigest]
);

/// Protobuf number of an optional SDK enum (`0` when absent).
pub fn to_pb<E: EnumPair>(value: Option<&E>) -> i32 {
    value.map_or(0, EnumPair::to_pb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_round_trip() {
        for value in [
            sdk::ImageTagMutability::Mutable,
            sdk::ImageTagMutability::ImmutableWithExclusion,
        ] {
            assert_eq!(sdk::ImageTagMutability::from_pb(value.to_pb()), Some(value));
        }
        assert_eq!(
            sdk::EncryptionType::KmsDsse.to_pb(),
            pb::EncryptionType::KmsDsse as i32
        );
        assert_eq!(
            sdk::ImageFailureCode::UpstreamTooManyRequests.to_pb(),
            pb::ImageFailureCode::UpstreamTooManyRequests as i32
        );
    }

    #[test]
    fn values_the_sdk_does_not_know_are_matched_by_name() {
        // IMAGE_SIZE_EXCEEDED is in ECR's model but newer than the SDK's.
        let newer = sdk::ScanStatus::from("IMAGE_SIZE_EXCEEDED");
        assert_eq!(newer.to_pb(), pb::ScanStatus::ImageSizeExceeded as i32);
        let camel = sdk::ImageFailureCode::from("ImageInaccessible");
        assert_eq!(
            camel.to_pb(),
            pb::ImageFailureCode::ImageInaccessible as i32
        );
    }

    #[test]
    fn values_nobody_knows_become_unspecified() {
        assert_eq!(sdk::LayerAvailability::from("TELEPORTED").to_pb(), 0);
        assert_eq!(sdk::TagStatus::from_pb(0), None);
        assert_eq!(sdk::TagStatus::from_pb(999), None);
    }

    #[test]
    fn upper_snake_handles_both_spellings() {
        assert_eq!(upper_snake("InvalidImageDigest"), "INVALID_IMAGE_DIGEST");
        assert_eq!(upper_snake("KMS_DSSE"), "KMS_DSSE");
        assert_eq!(upper_snake("AES256"), "AES256");
    }
}
