//! Hostile input, property-based: arbitrary requests never panic validation
//! or conversion, and whatever validation accepts converts into a
//! well-formed upstream call (the SDK input builds, and carries the request's
//! values unchanged).

use ecr_facade::config::UpstreamSettings;
use ecr_facade::convert::requests;
use ecr_facade::pb;
use ecr_facade::validate::{self, Limits};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// One client for every case (nothing is ever sent with it).
fn client() -> &'static aws_sdk_ecr::Client {
    static CLIENT: std::sync::OnceLock<aws_sdk_ecr::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        let settings = UpstreamSettings {
            endpoint_url: Some("http://127.0.0.1:1".into()),
            region: Some("us-east-1".into()),
            ..Default::default()
        };
        settings.static_client(aws_credential_types::Credentials::new(
            "a", "b", None, None, "props",
        ))
    })
}

/// Strings that are often near ECR's rules: valid names, digests, ids, and
/// noise (unicode, separators, empty, long).
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{1,6}([._-]{1,2}[a-z0-9]{1,6}){0,3}(/[a-z0-9]{1,6}){0,2}",
        "[0-9]{11,13}",
        "sha256:[0-9a-f]{0,64}",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        ".{0,40}",
        "[a-z]{250,260}",
        Just(String::new()),
    ]
}

fn enum_value() -> impl Strategy<Value = i32> {
    prop_oneof![0..6i32, any::<i32>()]
}

fn image_id() -> impl Strategy<Value = pb::ImageIdentifier> {
    (option::of(text()), option::of(text())).prop_map(|(image_digest, image_tag)| {
        pb::ImageIdentifier {
            image_digest,
            image_tag,
        }
    })
}

fn create_request() -> impl Strategy<Value = pb::CreateRepositoryRequest> {
    (
        option::of(text()),
        text(),
        vec((text(), text()), 0..4),
        enum_value(),
        vec((enum_value(), text()), 0..7),
        option::of(option::of(any::<bool>())),
        option::of((enum_value(), option::of(text()))),
    )
        .prop_map(
            |(registry_id, repository_name, tags, mutability, filters, scan, encryption)| {
                pb::CreateRepositoryRequest {
                    registry_id,
                    repository_name,
                    tags: tags
                        .into_iter()
                        .map(|(key, value)| pb::Tag { key, value })
                        .collect(),
                    image_tag_mutability: mutability,
                    image_tag_mutability_exclusion_filters: filters
                        .into_iter()
                        .map(
                            |(filter_type, filter)| pb::ImageTagMutabilityExclusionFilter {
                                filter_type,
                                filter,
                            },
                        )
                        .collect(),
                    image_scanning_configuration: scan
                        .map(|scan_on_push| pb::ImageScanningConfiguration { scan_on_push }),
                    encryption_configuration: encryption.map(|(encryption_type, kms_key)| {
                        pb::EncryptionConfiguration {
                            encryption_type,
                            kms_key,
                        }
                    }),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn create_repository_accepted_means_well_formed(request in create_request()) {
        let accepted = validate::check(&request, &Limits::default()).is_ok();
        let input = requests::create_repository(client(), request.clone()).as_input().clone().build();
        if accepted {
            let input = input.expect("an accepted request builds an SDK input");
            prop_assert_eq!(input.repository_name(), Some(request.repository_name.as_str()));
            prop_assert_eq!(input.registry_id(), request.registry_id.as_deref());
            prop_assert_eq!(input.tags().len(), request.tags.len());
            prop_assert_eq!(
                input.image_tag_mutability().is_some(),
                request.image_tag_mutability != 0
            );
            if let Some(mutability) = input.image_tag_mutability() {
                let known = aws_sdk_ecr::types::ImageTagMutability::values();
                prop_assert!(known.contains(&mutability.as_str()));
            }
            if let Some(encryption) = input.encryption_configuration() {
                let known = aws_sdk_ecr::types::EncryptionType::values();
                prop_assert!(known.contains(&encryption.encryption_type().as_str()));
            }
            for filter in input.image_tag_mutability_exclusion_filters() {
                prop_assert_eq!(filter.filter_type().as_str(), "WILDCARD");
            }
            prop_assert_eq!(
                input.image_tag_mutability_exclusion_filters().len(),
                request.image_tag_mutability_exclusion_filters.len()
            );
            let name_len = request.repository_name.chars().count();
            prop_assert!((2..=256).contains(&name_len));
        }
    }

    #[test]
    fn batch_get_image_accepted_means_well_formed(
        registry_id in option::of(text()),
        repository_name in text(),
        image_ids in vec(image_id(), 0..104),
        media_types in vec(text(), 0..103),
    ) {
        let request = pb::BatchGetImageRequest {
            registry_id,
            repository_name,
            image_ids,
            accepted_media_types: media_types,
        };
        let accepted = validate::check(&request, &Limits::default()).is_ok();
        let input = requests::batch_get_image(client(), request.clone()).as_input().clone().build();
        if accepted {
            let input = input.unwrap();
            prop_assert!((1..=100).contains(&input.image_ids().len()));
            prop_assert!(input.accepted_media_types().len() <= 100);
            for (sent, asked) in input.image_ids().iter().zip(&request.image_ids) {
                prop_assert_eq!(sent.image_tag(), asked.image_tag.as_deref());
                prop_assert_eq!(sent.image_digest(), asked.image_digest.as_deref());
                if let Some(tag) = sent.image_tag() {
                    prop_assert!((1..=300).contains(&tag.chars().count()));
                }
            }
        }
    }

    #[test]
    fn describe_images_accepted_means_well_formed(
        repository_name in text(),
        image_ids in vec(image_id(), 0..3),
        max_results in option::of(any::<i32>()),
        next_token in option::of(text()),
        tag_status in enum_value(),
        image_status in enum_value(),
    ) {
        let request = pb::DescribeImagesRequest {
            registry_id: None,
            repository_name,
            image_ids,
            next_token,
            max_results,
            filter: Some(pb::DescribeImagesFilter { tag_status, image_status }),
        };
        let accepted = validate::check(&request, &Limits::default()).is_ok();
        let input = requests::describe_images(client(), request.clone()).as_input().clone().build();
        if accepted {
            let input = input.unwrap();
            if let Some(max) = input.max_results() {
                prop_assert!((1..=1000).contains(&max));
                prop_assert!(input.image_ids().is_empty());
            }
            let filter = input.filter().unwrap();
            prop_assert_eq!(filter.tag_status().is_some(), tag_status != 0);
            prop_assert_eq!(filter.image_status().is_some(), image_status != 0);
        }
    }

    #[test]
    fn layer_requests_never_panic(
        repository_name in text(),
        upload_id in text(),
        digests in vec(text(), 0..120),
    ) {
        let complete = pb::CompleteLayerUploadRequest {
            registry_id: None,
            repository_name: repository_name.clone(),
            upload_id,
            layer_digests: digests.clone(),
        };
        if validate::check(&complete, &Limits::default()).is_ok() {
            let input = requests::complete_layer_upload(client(), complete).as_input().clone().build().unwrap();
            prop_assert!((1..=100).contains(&input.layer_digests().len()));
            for digest in input.layer_digests() {
                prop_assert!(digest.contains(':'));
            }
        }
        let check = pb::BatchCheckLayerAvailabilityRequest {
            registry_id: None,
            repository_name: repository_name.clone(),
            layer_digests: digests.clone(),
        };
        let _ = validate::check(&check, &Limits { max_layer_digests: 50 });
        let download = pb::GetDownloadUrlForLayerRequest {
            registry_id: None,
            repository_name,
            layer_digest: digests.first().cloned().unwrap_or_default(),
        };
        if validate::check(&download, &Limits::default()).is_ok() {
            let input = requests::get_download_url_for_layer(client(), download).as_input().clone().build().unwrap();
            prop_assert!(input.layer_digest().is_some_and(|d| !d.is_empty()));
        }
    }

    #[test]
    fn registry_lists_never_panic(ids in vec(text(), 0..12), names in vec(text(), 0..102)) {
        let token = pb::GetAuthorizationTokenRequest { registry_ids: ids.clone() };
        if validate::check(&token, &Limits::default()).is_ok() {
            prop_assert!(ids.len() <= 10);
            prop_assert!(ids.iter().all(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())));
        }
        let describe = pb::DescribeRepositoriesRequest {
            registry_id: None,
            repository_names: names.clone(),
            next_token: None,
            max_results: None,
        };
        if validate::check(&describe, &Limits::default()).is_ok() {
            let input = requests::describe_repositories(client(), describe).as_input().clone().build().unwrap();
            prop_assert_eq!(input.repository_names().len(), names.len());
        }
    }
}
