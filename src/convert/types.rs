//! Shared structures: SDK → protobuf for outputs, protobuf → SDK for inputs.

use aws_sdk_ecr::types as sdk;
use aws_smithy_types::DateTime;
use prost_types::Timestamp;

use super::enums::{EnumPair, to_pb};
use crate::pb;

/// An SDK timestamp as a protobuf `Timestamp`.
pub fn timestamp(value: &DateTime) -> Timestamp {
    Timestamp {
        seconds: value.secs(),
        nanos: i32::try_from(value.subsec_nanos()).unwrap_or(0),
    }
}

fn ts(value: Option<&DateTime>) -> Option<Timestamp> {
    value.map(timestamp)
}

impl From<sdk::Repository> for pb::Repository {
    fn from(r: sdk::Repository) -> Self {
        Self {
            image_tag_mutability: to_pb(r.image_tag_mutability.as_ref()),
            created_at: ts(r.created_at.as_ref()),
            repository_arn: r.repository_arn,
            registry_id: r.registry_id,
            repository_name: r.repository_name,
            repository_uri: r.repository_uri,
            image_tag_mutability_exclusion_filters: r
                .image_tag_mutability_exclusion_filters
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            image_scanning_configuration: r.image_scanning_configuration.map(Into::into),
            encryption_configuration: r.encryption_configuration.map(Into::into),
        }
    }
}

impl From<sdk::ImageTagMutabilityExclusionFilter> for pb::ImageTagMutabilityExclusionFilter {
    fn from(f: sdk::ImageTagMutabilityExclusionFilter) -> Self {
        Self {
            filter_type: f.filter_type.to_pb(),
            filter: f.filter,
        }
    }
}

impl From<sdk::ImageScanningConfiguration> for pb::ImageScanningConfiguration {
    fn from(c: sdk::ImageScanningConfiguration) -> Self {
        Self {
            scan_on_push: Some(c.scan_on_push),
        }
    }
}

impl From<sdk::EncryptionConfiguration> for pb::EncryptionConfiguration {
    fn from(c: sdk::EncryptionConfiguration) -> Self {
        Self {
            encryption_type: c.encryption_type.to_pb(),
            kms_key: c.kms_key,
        }
    }
}

impl From<sdk::ImageIdentifier> for pb::ImageIdentifier {
    fn from(id: sdk::ImageIdentifier) -> Self {
        Self {
            image_digest: id.image_digest,
            image_tag: id.image_tag,
        }
    }
}

impl From<sdk::Image> for pb::Image {
    fn from(i: sdk::Image) -> Self {
        Self {
            registry_id: i.registry_id,
            repository_name: i.repository_name,
            image_id: i.image_id.map(Into::into),
            image_manifest: i.image_manifest,
            image_manifest_media_type: i.image_manifest_media_type,
        }
    }
}

impl From<sdk::ImageFailure> for pb::ImageFailure {
    fn from(f: sdk::ImageFailure) -> Self {
        Self {
            failure_code: to_pb(f.failure_code.as_ref()),
            image_id: f.image_id.map(Into::into),
            failure_reason: f.failure_reason,
        }
    }
}

impl From<sdk::ImageDetail> for pb::ImageDetail {
    fn from(d: sdk::ImageDetail) -> Self {
        Self {
            image_pushed_at: ts(d.image_pushed_at.as_ref()),
            last_recorded_pull_time: ts(d.last_recorded_pull_time.as_ref()),
            last_archived_at: ts(d.last_archived_at.as_ref()),
            last_activated_at: ts(d.last_activated_at.as_ref()),
            image_status: to_pb(d.image_status.as_ref()),
            registry_id: d.registry_id,
            repository_name: d.repository_name,
            image_digest: d.image_digest,
            image_tags: d.image_tags.unwrap_or_default(),
            image_size_in_bytes: d.image_size_in_bytes,
            image_scan_status: d.image_scan_status.map(Into::into),
            image_scan_findings_summary: d.image_scan_findings_summary.map(Into::into),
            image_manifest_media_type: d.image_manifest_media_type,
            artifact_media_type: d.artifact_media_type,
            subject_manifest_digest: d.subject_manifest_digest,
        }
    }
}

impl From<sdk::ImageScanStatus> for pb::ImageScanStatus {
    fn from(s: sdk::ImageScanStatus) -> Self {
        Self {
            status: to_pb(s.status.as_ref()),
            description: s.description,
        }
    }
}

impl From<sdk::ImageScanFindingsSummary> for pb::ImageScanFindingsSummary {
    fn from(s: sdk::ImageScanFindingsSummary) -> Self {
        Self {
            image_scan_completed_at: ts(s.image_scan_completed_at.as_ref()),
            vulnerability_source_updated_at: ts(s.vulnerability_source_updated_at.as_ref()),
            finding_severity_counts: s
                .finding_severity_counts
                .unwrap_or_default()
                .into_iter()
                .map(|(severity, count)| (severity.as_str().to_owned(), count))
                .collect(),
        }
    }
}

impl From<sdk::Layer> for pb::Layer {
    fn from(l: sdk::Layer) -> Self {
        Self {
            layer_availability: to_pb(l.layer_availability.as_ref()),
            layer_digest: l.layer_digest,
            layer_size: l.layer_size,
            media_type: l.media_type,
        }
    }
}

impl From<sdk::LayerFailure> for pb::LayerFailure {
    fn from(f: sdk::LayerFailure) -> Self {
        Self {
            failure_code: to_pb(f.failure_code.as_ref()),
            layer_digest: f.layer_digest,
            failure_reason: f.failure_reason,
        }
    }
}

impl From<sdk::AuthorizationData> for pb::AuthorizationData {
    fn from(a: sdk::AuthorizationData) -> Self {
        Self {
            expires_at: ts(a.expires_at.as_ref()),
            authorization_token: a.authorization_token,
            proxy_endpoint: a.proxy_endpoint,
        }
    }
}

// Inputs: protobuf → SDK. Validation runs first, but these never panic on
// unvalidated input either: a required enum left unspecified is sent as an
// empty value (which ECR would refuse), so every SDK builder's required
// members are always set.

impl From<pb::ImageIdentifier> for sdk::ImageIdentifier {
    fn from(id: pb::ImageIdentifier) -> Self {
        sdk::ImageIdentifier::builder()
            .set_image_digest(id.image_digest)
            .set_image_tag(id.image_tag)
            .build()
    }
}

/// An SDK tag.
pub fn tag(t: pb::Tag) -> sdk::Tag {
    sdk::Tag::builder()
        .key(t.key)
        .value(t.value)
        .build()
        .expect("key and value are set")
}

/// An SDK exclusion filter.
pub fn exclusion_filter(
    f: pb::ImageTagMutabilityExclusionFilter,
) -> sdk::ImageTagMutabilityExclusionFilter {
    let filter_type = sdk::ImageTagMutabilityExclusionFilterType::from_pb(f.filter_type)
        .unwrap_or_else(|| sdk::ImageTagMutabilityExclusionFilterType::from(""));
    sdk::ImageTagMutabilityExclusionFilter::builder()
        .filter_type(filter_type)
        .filter(f.filter)
        .build()
        .expect("filter_type and filter are set")
}

/// An SDK encryption configuration.
pub fn encryption_configuration(c: pb::EncryptionConfiguration) -> sdk::EncryptionConfiguration {
    let encryption_type = sdk::EncryptionType::from_pb(c.encryption_type)
        .unwrap_or_else(|| sdk::EncryptionType::from(""));
    sdk::EncryptionConfiguration::builder()
        .encryption_type(encryption_type)
        .set_kms_key(c.kms_key)
        .build()
        .expect("encryption_type is set")
}

impl From<pb::ImageScanningConfiguration> for sdk::ImageScanningConfiguration {
    fn from(c: pb::ImageScanningConfiguration) -> Self {
        sdk::ImageScanningConfiguration::builder()
            .set_scan_on_push(c.scan_on_push)
            .build()
    }
}

impl From<pb::DescribeImagesFilter> for sdk::DescribeImagesFilter {
    fn from(f: pb::DescribeImagesFilter) -> Self {
        sdk::DescribeImagesFilter::builder()
            .set_tag_status(sdk::TagStatus::from_pb(f.tag_status))
            .set_image_status(sdk::ImageStatusFilter::from_pb(f.image_status))
            .build()
    }
}

impl From<pb::ListImagesFilter> for sdk::ListImagesFilter {
    fn from(f: pb::ListImagesFilter) -> Self {
        sdk::ListImagesFilter::builder()
            .set_tag_status(sdk::TagStatus::from_pb(f.tag_status))
            .set_image_status(sdk::ImageStatusFilter::from_pb(f.image_status))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn at(secs: i64) -> DateTime {
        DateTime::from_secs(secs)
    }

    #[test]
    fn every_image_detail_member_is_moved_across() {
        let detail = sdk::ImageDetail::builder()
            .registry_id("123456789012")
            .repository_name("team/app")
            .image_digest("sha256:aa")
            .image_tags("v1")
            .image_tags("latest")
            .image_size_in_bytes(1234)
            .image_pushed_at(at(1_700_000_000))
            .image_scan_status(
                sdk::ImageScanStatus::builder()
                    .status(sdk::ScanStatus::Complete)
                    .description("done")
                    .build(),
            )
            .image_scan_findings_summary(
                sdk::ImageScanFindingsSummary::builder()
                    .image_scan_completed_at(at(1_700_000_100))
                    .vulnerability_source_updated_at(at(1_700_000_200))
                    .set_finding_severity_counts(Some(HashMap::from([
                        (sdk::FindingSeverity::High, 2),
                        (sdk::FindingSeverity::Low, 5),
                    ])))
                    .build(),
            )
            .image_manifest_media_type("application/vnd.oci.image.manifest.v1+json")
            .artifact_media_type("application/vnd.oci.image.config.v1+json")
            .last_recorded_pull_time(at(1_700_000_300))
            .subject_manifest_digest("sha256:bb")
            .image_status(sdk::ImageStatus::Archived)
            .last_archived_at(at(1_700_000_400))
            .last_activated_at(at(1_700_000_500))
            .build();
        let pb = pb::ImageDetail::from(detail);
        let secs = |t: &Option<Timestamp>| t.as_ref().unwrap().seconds;
        assert_eq!(pb.registry_id.as_deref(), Some("123456789012"));
        assert_eq!(pb.repository_name.as_deref(), Some("team/app"));
        assert_eq!(pb.image_digest.as_deref(), Some("sha256:aa"));
        assert_eq!(pb.image_tags, ["v1", "latest"]);
        assert_eq!(pb.image_size_in_bytes, Some(1234));
        assert_eq!(secs(&pb.image_pushed_at), 1_700_000_000);
        let scan = pb.image_scan_status.unwrap();
        assert_eq!(scan.status, pb::ScanStatus::Complete as i32);
        assert_eq!(scan.description.as_deref(), Some("done"));
        let summary = pb.image_scan_findings_summary.unwrap();
        assert_eq!(secs(&summary.image_scan_completed_at), 1_700_000_100);
        assert_eq!(
            secs(&summary.vulnerability_source_updated_at),
            1_700_000_200
        );
        assert_eq!(summary.finding_severity_counts["HIGH"], 2);
        assert_eq!(summary.finding_severity_counts["LOW"], 5);
        assert_eq!(
            pb.image_manifest_media_type.as_deref(),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        assert_eq!(
            pb.artifact_media_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert_eq!(secs(&pb.last_recorded_pull_time), 1_700_000_300);
        assert_eq!(pb.subject_manifest_digest.as_deref(), Some("sha256:bb"));
        assert_eq!(pb.image_status, pb::ImageStatus::Archived as i32);
        assert_eq!(secs(&pb.last_archived_at), 1_700_000_400);
        assert_eq!(secs(&pb.last_activated_at), 1_700_000_500);
    }

    #[test]
    fn every_repository_member_is_moved_across() {
        let repository = sdk::Repository::builder()
            .repository_arn("arn:aws:ecr:us-east-1:123456789012:repository/team/app")
            .registry_id("123456789012")
            .repository_name("team/app")
            .repository_uri("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app")
            .created_at(DateTime::from_fractional_secs(1_700_000_000, 0.25))
            .image_tag_mutability(sdk::ImageTagMutability::ImmutableWithExclusion)
            .image_tag_mutability_exclusion_filters(
                sdk::ImageTagMutabilityExclusionFilter::builder()
                    .filter_type(sdk::ImageTagMutabilityExclusionFilterType::Wildcard)
                    .filter("dev-*")
                    .build()
                    .unwrap(),
            )
            .image_scanning_configuration(
                sdk::ImageScanningConfiguration::builder()
                    .scan_on_push(true)
                    .build(),
            )
            .encryption_configuration(
                sdk::EncryptionConfiguration::builder()
                    .encryption_type(sdk::EncryptionType::Kms)
                    .kms_key("alias/ecr")
                    .build()
                    .unwrap(),
            )
            .build();
        let pb = pb::Repository::from(repository);
        assert_eq!(
            pb.repository_arn.as_deref(),
            Some("arn:aws:ecr:us-east-1:123456789012:repository/team/app")
        );
        assert_eq!(pb.registry_id.as_deref(), Some("123456789012"));
        assert_eq!(pb.repository_name.as_deref(), Some("team/app"));
        assert!(pb.repository_uri.unwrap().ends_with("/team/app"));
        let created = pb.created_at.unwrap();
        assert_eq!(
            (created.seconds, created.nanos),
            (1_700_000_000, 250_000_000)
        );
        assert_eq!(
            pb.image_tag_mutability,
            pb::ImageTagMutability::ImmutableWithExclusion as i32
        );
        assert_eq!(pb.image_tag_mutability_exclusion_filters[0].filter, "dev-*");
        assert_eq!(
            pb.image_tag_mutability_exclusion_filters[0].filter_type,
            pb::ImageTagMutabilityExclusionFilterType::Wildcard as i32
        );
        assert_eq!(
            pb.image_scanning_configuration.unwrap().scan_on_push,
            Some(true)
        );
        let encryption = pb.encryption_configuration.unwrap();
        assert_eq!(encryption.encryption_type, pb::EncryptionType::Kms as i32);
        assert_eq!(encryption.kms_key.as_deref(), Some("alias/ecr"));
    }

    #[test]
    fn request_structures_become_sdk_inputs() {
        let filter = exclusion_filter(pb::ImageTagMutabilityExclusionFilter {
            filter_type: pb::ImageTagMutabilityExclusionFilterType::Wildcard as i32,
            filter: "rel-*".into(),
        });
        assert_eq!(
            filter.filter_type,
            sdk::ImageTagMutabilityExclusionFilterType::Wildcard
        );
        let encryption = encryption_configuration(pb::EncryptionConfiguration {
            encryption_type: pb::EncryptionType::KmsDsse as i32,
            kms_key: Some("k".into()),
        });
        assert_eq!(encryption.encryption_type, sdk::EncryptionType::KmsDsse);
        let described = sdk::DescribeImagesFilter::from(pb::DescribeImagesFilter {
            tag_status: pb::TagStatus::Untagged as i32,
            image_status: 0,
        });
        assert_eq!(described.tag_status, Some(sdk::TagStatus::Untagged));
        assert_eq!(described.image_status, None);
        let t = tag(pb::Tag {
            key: "k".into(),
            value: String::new(),
        });
        assert_eq!((t.key.as_str(), t.value.as_str()), ("k", ""));
    }
}
