//! Every string of a request is bounded before upstream: ECR's documented
//! tag limits, and the facade's own bounds where ECR's model has none.

use super::*;

fn create_with_tags(tags: Vec<pb::Tag>) -> pb::CreateRepositoryRequest {
    pb::CreateRepositoryRequest {
        repository_name: "ab".into(),
        tags,
        ..Default::default()
    }
}

fn tag(key: &str, value: &str) -> pb::Tag {
    pb::Tag {
        key: key.into(),
        value: value.into(),
    }
}

#[test]
fn tag_keys_are_one_to_128_and_values_up_to_256_characters() {
    let ok = create_with_tags(vec![tag(&"k".repeat(128), &"v".repeat(256)), tag("k", "")]);
    assert!(flagged(&ok).is_empty());
    // Characters, not bytes.
    let wide = create_with_tags(vec![tag(&"é".repeat(128), &"é".repeat(256))]);
    assert!(flagged(&wide).is_empty());
    let long = create_with_tags(vec![tag(&"k".repeat(129), &"v".repeat(257))]);
    assert_eq!(flagged(&long), ["tags[0].key", "tags[0].value"]);
    assert_eq!(
        flagged(&create_with_tags(vec![tag("", "v")])),
        ["tags[0].key"]
    );
}

#[test]
fn a_repository_takes_at_most_50_tags() {
    let tags = |n: usize| (0..n).map(|i| tag(&format!("k{i}"), "v")).collect();
    assert!(flagged(&create_with_tags(tags(50))).is_empty());
    assert_eq!(flagged(&create_with_tags(tags(51))), ["tags"]);
}

#[test]
fn next_tokens_are_bounded() {
    let images = |token: String| pb::DescribeImagesRequest {
        repository_name: "ab".into(),
        next_token: Some(token),
        ..Default::default()
    };
    assert!(flagged(&images("t".repeat(bounds::NEXT_TOKEN))).is_empty());
    assert_eq!(
        flagged(&images("t".repeat(bounds::NEXT_TOKEN + 1))),
        ["next_token"]
    );
    assert_eq!(flagged(&images(String::new())), ["next_token"]);
    let repositories = |token: String| pb::DescribeRepositoriesRequest {
        next_token: Some(token),
        ..Default::default()
    };
    assert!(flagged(&repositories("t".repeat(bounds::NEXT_TOKEN))).is_empty());
    assert_eq!(
        flagged(&repositories("t".repeat(bounds::NEXT_TOKEN + 1))),
        ["next_token"]
    );
}

#[test]
fn media_types_are_one_to_255_characters() {
    let get = |media_type: String| pb::BatchGetImageRequest {
        repository_name: "ab".into(),
        image_ids: ids(1),
        accepted_media_types: vec!["application/json".into(), media_type],
        ..Default::default()
    };
    assert!(flagged(&get("m".repeat(255))).is_empty());
    assert_eq!(flagged(&get("m".repeat(256))), ["accepted_media_types[1]"]);
    assert_eq!(flagged(&get(String::new())), ["accepted_media_types[1]"]);
}

#[test]
fn digests_are_at_most_1000_characters() {
    let digest = |len: usize| format!("sha256:{}", "a".repeat(len - 7));
    let get = |image_digest: String| pb::BatchDeleteImageRequest {
        repository_name: "ab".into(),
        image_ids: vec![pb::ImageIdentifier {
            image_digest: Some(image_digest),
            image_tag: None,
        }],
        ..Default::default()
    };
    assert!(flagged(&get(digest(1000))).is_empty());
    assert_eq!(flagged(&get(digest(1001))), ["image_ids[0].image_digest"]);
    let url = |layer_digest: String| pb::GetDownloadUrlForLayerRequest {
        repository_name: "ab".into(),
        layer_digest,
        ..Default::default()
    };
    assert!(flagged(&url(digest(1000))).is_empty());
    let refused = check(&url(digest(1001)), &LIMITS).unwrap_err();
    let Error::InvalidRequest(violations) = refused else {
        panic!("expected invalid request")
    };
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].field, "layer_digest");
    assert_eq!(
        violations[0].description,
        "must have length less than or equal to 1000"
    );
}

#[test]
fn list_images_and_put_image_strings_are_bounded() {
    let list = |token: String| pb::ListImagesRequest {
        repository_name: "ab".into(),
        next_token: Some(token),
        ..Default::default()
    };
    assert!(flagged(&list("t".repeat(bounds::NEXT_TOKEN))).is_empty());
    assert_eq!(
        flagged(&list("t".repeat(bounds::NEXT_TOKEN + 1))),
        ["next_token"]
    );
    let put = |media_type: usize, digest: usize| pb::PutImageRequest {
        repository_name: "ab".into(),
        image_manifest: "{}".into(),
        image_manifest_media_type: Some("m".repeat(media_type)),
        image_digest: Some("d".repeat(digest)),
        ..Default::default()
    };
    assert!(flagged(&put(bounds::MEDIA_TYPE, bounds::DIGEST)).is_empty());
    assert_eq!(
        flagged(&put(bounds::MEDIA_TYPE + 1, bounds::DIGEST + 1)),
        ["image_manifest_media_type", "image_digest"]
    );
}
