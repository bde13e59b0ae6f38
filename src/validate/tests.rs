use super::*;

mod strings;

const LIMITS: Limits = Limits {
    max_layer_digests: 10_000,
};

/// The fields flagged for `request`, in order.
fn flagged<R: Validate>(request: &R) -> Vec<String> {
    match check(request, &LIMITS) {
        Ok(()) => Vec::new(),
        Err(Error::InvalidRequest(violations)) => violations.into_iter().map(|v| v.field).collect(),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

fn name(len: usize) -> String {
    "a".repeat(len)
}

fn delete_repo(name: &str) -> pb::DeleteRepositoryRequest {
    pb::DeleteRepositoryRequest {
        repository_name: name.to_owned(),
        ..Default::default()
    }
}

#[test]
fn repository_name_length_bounds() {
    assert_eq!(flagged(&delete_repo(&name(1))), ["repository_name"]);
    assert!(flagged(&delete_repo(&name(2))).is_empty());
    assert!(flagged(&delete_repo(&name(256))).is_empty());
    assert_eq!(flagged(&delete_repo(&name(257))), ["repository_name"]);
    assert_eq!(flagged(&delete_repo("")), ["repository_name"]);
}

#[test]
fn repository_name_pattern_is_anchored_and_exact() {
    for good in [
        "ab",
        "a.b",
        "a__b",
        "a---b",
        "1abc",
        "team/app",
        "a_b/c-d/e.f",
        "a-b__c",
    ] {
        assert!(flagged(&delete_repo(good)).is_empty(), "{good} refused");
    }
    for bad in [
        "Ab", "a___b", "a._b", "a//b", "-ab", "ab-", "/ab", "ab/", "a b", "ab!", "ÄB",
    ] {
        assert_eq!(
            flagged(&delete_repo(bad)),
            ["repository_name"],
            "{bad} accepted"
        );
    }
}

#[test]
fn registry_id_is_exactly_twelve_digits() {
    let with_id = |id: &str| pb::DeleteRepositoryPolicyRequest {
        registry_id: Some(id.to_owned()),
        repository_name: "ab".into(),
    };
    assert!(flagged(&with_id("123456789012")).is_empty());
    assert_eq!(flagged(&with_id("12345678901")), ["registry_id"]);
    assert_eq!(flagged(&with_id("1234567890123")), ["registry_id"]);
    assert_eq!(flagged(&with_id("12345678901a")), ["registry_id"]);
    assert_eq!(flagged(&with_id("")), ["registry_id"]);
}

fn ids(n: usize) -> Vec<pb::ImageIdentifier> {
    (0..n)
        .map(|i| pb::ImageIdentifier {
            image_tag: Some(format!("t{i}")),
            image_digest: None,
        })
        .collect()
}

#[test]
fn image_id_lists_hold_one_to_a_hundred() {
    let delete = |image_ids| pb::BatchDeleteImageRequest {
        repository_name: "ab".into(),
        image_ids,
        ..Default::default()
    };
    assert_eq!(flagged(&delete(ids(0))), ["image_ids"]);
    assert!(flagged(&delete(ids(1))).is_empty());
    assert!(flagged(&delete(ids(100))).is_empty());
    assert_eq!(flagged(&delete(ids(101))), ["image_ids"]);
}

#[test]
fn image_tags_are_one_to_three_hundred_characters() {
    let get = |tag: &str| pb::BatchGetImageRequest {
        repository_name: "ab".into(),
        image_ids: vec![
            pb::ImageIdentifier::default(),
            pb::ImageIdentifier::default(),
            pb::ImageIdentifier::default(),
            pb::ImageIdentifier {
                image_tag: Some(tag.to_owned()),
                image_digest: None,
            },
        ],
        ..Default::default()
    };
    assert!(flagged(&get(&"t".repeat(300))).is_empty());
    // Characters, not bytes: 300 two-byte characters are fine.
    assert!(flagged(&get(&"é".repeat(300))).is_empty());
    assert_eq!(flagged(&get(&"t".repeat(301))), ["image_ids[3].image_tag"]);
    assert_eq!(flagged(&get("")), ["image_ids[3].image_tag"]);
    assert!(flagged(&get("t")).is_empty());
}

#[test]
fn accepted_media_types_hold_at_most_a_hundred() {
    let get = |n: usize| pb::BatchGetImageRequest {
        repository_name: "ab".into(),
        image_ids: ids(1),
        accepted_media_types: vec!["application/vnd.oci.image.manifest.v1+json".into(); n],
        ..Default::default()
    };
    assert!(flagged(&get(0)).is_empty());
    assert!(flagged(&get(100)).is_empty());
    assert_eq!(flagged(&get(101)), ["accepted_media_types"]);
}

#[test]
fn layer_check_digests_follow_the_facade_limit_and_ecr_lengths() {
    let check_layers = |digests: Vec<String>| pb::BatchCheckLayerAvailabilityRequest {
        repository_name: "ab".into(),
        layer_digests: digests,
        ..Default::default()
    };
    assert_eq!(flagged(&check_layers(vec![])), ["layer_digests"]);
    assert!(
        flagged(&check_layers(vec![String::new()])).is_empty(),
        "empty digests are ECR's to answer"
    );
    assert!(flagged(&check_layers(vec!["x".repeat(1000)])).is_empty());
    assert_eq!(
        flagged(&check_layers(vec!["ok".into(), "x".repeat(1001)])),
        ["layer_digests[1]"]
    );
    assert!(flagged(&check_layers(vec!["d".into(); 10_000])).is_empty());
    assert_eq!(
        flagged(&check_layers(vec!["d".into(); 10_001])),
        ["layer_digests"]
    );
    let small = Limits {
        max_layer_digests: 3,
    };
    let request = check_layers(vec!["d".into(); 4]);
    assert!(check(&request, &small).is_err());
}

#[test]
fn complete_layer_upload_checks_upload_id_and_digests() {
    let complete = |upload_id: &str, digests: Vec<&str>| pb::CompleteLayerUploadRequest {
        repository_name: "ab".into(),
        upload_id: upload_id.into(),
        layer_digests: digests.into_iter().map(String::from).collect(),
        ..Default::default()
    };
    let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let digest = "sha256:0123abcdef";
    assert!(flagged(&complete(uuid, vec![digest])).is_empty());
    assert!(flagged(&complete(&uuid.to_uppercase(), vec![digest])).is_empty());
    assert_eq!(
        flagged(&complete("not-a-uuid", vec![digest])),
        ["upload_id"]
    );
    assert_eq!(
        flagged(&complete(&format!("{uuid}0"), vec![digest])),
        ["upload_id"]
    );
    assert_eq!(flagged(&complete("", vec![digest])), ["upload_id"]);
    assert_eq!(flagged(&complete(uuid, vec![])), ["layer_digests"]);
    assert_eq!(
        flagged(&complete(uuid, vec![digest; 101])),
        ["layer_digests"]
    );
    assert!(flagged(&complete(uuid, vec![digest; 100])).is_empty());
    assert_eq!(
        flagged(&complete(
            uuid,
            vec![digest, "sha256:xyz", "nocolon", "sha256:"]
        )),
        ["layer_digests[1]", "layer_digests[2]", "layer_digests[3]"]
    );
    assert!(flagged(&complete(uuid, vec!["a-b_c+d.e:ABCdef0"])).is_empty());
}

#[test]
fn get_download_url_requires_a_layer_digest() {
    let get = |digest: &str| pb::GetDownloadUrlForLayerRequest {
        repository_name: "ab".into(),
        layer_digest: digest.into(),
        registry_id: None,
    };
    assert!(flagged(&get("sha256:abc")).is_empty());
    assert_eq!(flagged(&get("")), ["layer_digest"]);
    assert_eq!(flagged(&get("sha256:abc ")), ["layer_digest"]);
}

fn filter(kind: i32, value: &str) -> pb::ImageTagMutabilityExclusionFilter {
    pb::ImageTagMutabilityExclusionFilter {
        filter_type: kind,
        filter: value.into(),
    }
}

#[test]
fn create_repository_nested_rules() {
    let wildcard = pb::ImageTagMutabilityExclusionFilterType::Wildcard as i32;
    let create =
        |filters: Vec<pb::ImageTagMutabilityExclusionFilter>| pb::CreateRepositoryRequest {
            repository_name: "ab".into(),
            image_tag_mutability_exclusion_filters: filters,
            ..Default::default()
        };
    assert!(flagged(&create(vec![filter(wildcard, "release-*"); 5])).is_empty());
    assert_eq!(
        flagged(&create(vec![filter(wildcard, "x"); 6])),
        ["image_tag_mutability_exclusion_filters"]
    );
    assert!(flagged(&create(vec![filter(wildcard, &"x".repeat(128))])).is_empty());
    assert_eq!(
        flagged(&create(vec![
            filter(wildcard, &"x".repeat(129)),
            filter(0, "ok"),
            filter(wildcard, "bad/slash"),
            filter(wildcard, ""),
            filter(42, "ok"),
        ])),
        [
            "image_tag_mutability_exclusion_filters[0].filter",
            "image_tag_mutability_exclusion_filters[0].filter",
            "image_tag_mutability_exclusion_filters[1].filter_type",
            "image_tag_mutability_exclusion_filters[2].filter",
            "image_tag_mutability_exclusion_filters[3].filter",
            "image_tag_mutability_exclusion_filters[4].filter_type",
        ]
    );
}

#[test]
fn create_repository_enums_tags_and_encryption() {
    let base = pb::CreateRepositoryRequest {
        repository_name: "ab".into(),
        ..Default::default()
    };
    let mutability = |value| pb::CreateRepositoryRequest {
        image_tag_mutability: value,
        ..base.clone()
    };
    assert!(
        flagged(&mutability(0)).is_empty(),
        "unspecified = ECR's default"
    );
    assert!(
        flagged(&mutability(
            pb::ImageTagMutability::MutableWithExclusion as i32
        ))
        .is_empty()
    );
    assert_eq!(flagged(&mutability(99)), ["image_tag_mutability"]);

    let tags = pb::CreateRepositoryRequest {
        tags: vec![
            pb::Tag {
                key: "team".into(),
                value: String::new(),
            },
            pb::Tag {
                key: String::new(),
                value: "x".into(),
            },
        ],
        ..base.clone()
    };
    assert_eq!(flagged(&tags), ["tags[1].key"]);

    let encryption = |encryption_type, kms_key: Option<String>| pb::CreateRepositoryRequest {
        encryption_configuration: Some(pb::EncryptionConfiguration {
            encryption_type,
            kms_key,
        }),
        ..base.clone()
    };
    let kms = pb::EncryptionType::Kms as i32;
    assert!(flagged(&encryption(kms, Some("k".repeat(2048)))).is_empty());
    assert!(flagged(&encryption(kms, Some("k".into()))).is_empty());
    assert_eq!(
        flagged(&encryption(kms, Some("k".repeat(2049)))),
        ["encryption_configuration.kms_key"]
    );
    assert_eq!(
        flagged(&encryption(kms, Some(String::new()))),
        ["encryption_configuration.kms_key"]
    );
    assert_eq!(
        flagged(&encryption(0, None)),
        ["encryption_configuration.encryption_type"]
    );
    assert_eq!(
        flagged(&encryption(7, None)),
        ["encryption_configuration.encryption_type"]
    );
}

#[test]
fn max_results_is_one_to_a_thousand() {
    let describe = |max| pb::DescribeRepositoriesRequest {
        max_results: Some(max),
        ..Default::default()
    };
    assert_eq!(flagged(&describe(0)), ["max_results"]);
    assert!(flagged(&describe(1)).is_empty());
    assert!(flagged(&describe(1000)).is_empty());
    assert_eq!(flagged(&describe(1001)), ["max_results"]);
    let images = |max| pb::DescribeImagesRequest {
        repository_name: "ab".into(),
        max_results: Some(max),
        ..Default::default()
    };
    assert_eq!(flagged(&images(0)), ["max_results"]);
    assert!(flagged(&images(1000)).is_empty());
    assert_eq!(flagged(&images(1001)), ["max_results"]);
}

#[test]
fn describe_repositories_names_and_paging_rules() {
    let names = |n: usize| pb::DescribeRepositoriesRequest {
        repository_names: vec!["ab".into(); n],
        ..Default::default()
    };
    assert!(flagged(&names(0)).is_empty());
    assert!(flagged(&names(100)).is_empty());
    assert_eq!(flagged(&names(101)), ["repository_names"]);
    let mixed = pb::DescribeRepositoriesRequest {
        repository_names: vec!["ok".into(), "B".into()],
        max_results: Some(5),
        next_token: Some("t".into()),
        registry_id: None,
    };
    // "B" breaks both the length and the pattern rule: both are reported.
    assert_eq!(
        flagged(&mixed),
        [
            "repository_names[1]",
            "repository_names[1]",
            "max_results",
            "next_token"
        ]
    );
}

#[test]
fn describe_images_filter_and_paging_rules() {
    let request = pb::DescribeImagesRequest {
        repository_name: "ab".into(),
        image_ids: ids(101),
        max_results: Some(10),
        next_token: None,
        filter: Some(pb::DescribeImagesFilter {
            tag_status: 9,
            image_status: pb::ImageStatusFilter::Any as i32,
        }),
        registry_id: None,
    };
    assert_eq!(
        flagged(&request),
        ["image_ids", "filter.tag_status", "max_results"]
    );
}

#[test]
fn registry_ids_hold_one_to_ten_ids() {
    let token = |ids: Vec<&str>| pb::GetAuthorizationTokenRequest {
        registry_ids: ids.into_iter().map(String::from).collect(),
    };
    assert!(flagged(&token(vec![])).is_empty());
    assert!(flagged(&token(vec!["123456789012"; 10])).is_empty());
    assert_eq!(flagged(&token(vec!["123456789012"; 11])), ["registry_ids"]);
    assert_eq!(
        flagged(&token(vec!["123456789012", "12"])),
        ["registry_ids[1]"]
    );
}

#[test]
fn every_violation_is_reported_at_once() {
    let request = pb::BatchDeleteImageRequest {
        registry_id: Some("nope".into()),
        repository_name: "UPPER".into(),
        image_ids: vec![],
    };
    assert_eq!(
        flagged(&request),
        ["registry_id", "repository_name", "image_ids"]
    );
    let Err(Error::InvalidRequest(violations)) = check(&request, &LIMITS) else {
        panic!("expected violations")
    };
    assert!(violations[1].description.contains("must match pattern"));
    assert_eq!(violations[2].description, "is required");
}

#[test]
fn multibyte_characters_count_once_at_the_lower_bound() {
    // One character in two bytes is still shorter than a 1-character... and
    // a 2-character minimum: "é" has 2 bytes but 1 character.
    let tag = |t: &str| pb::BatchDeleteImageRequest {
        repository_name: "ab".into(),
        image_ids: vec![pb::ImageIdentifier {
            image_tag: Some(t.to_owned()),
            image_digest: None,
        }],
        registry_id: None,
    };
    assert!(flagged(&tag("é")).is_empty());
    assert_eq!(
        length_violation("é", 2, 10).as_deref(),
        Some("must have length greater than or equal to 2")
    );
    assert_eq!(
        length_violation("ééé", 1, 2).as_deref(),
        Some("must have length less than or equal to 2")
    );
}
