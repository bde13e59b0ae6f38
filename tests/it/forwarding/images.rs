//! Images through the facade: described, fetched, their layers checked,
//! deleted by digest, uploaded with the unary actions, downloaded by URL.

use super::*;

against_both!(
    pushed_images_are_described,
    batch_get_image_answers_images_and_failures,
    layer_availability_comes_in_one_message_per_batch,
    images_are_deleted_by_digest,
    complete_layer_upload_through_the_facade,
);

async fn pushed_images_are_described(kind: Kind) {
    let (mut client, _ctx, image) = pushed(kind, "described", "v1").await;
    let details = client
        .describe_images(pb::DescribeImagesRequest {
            repository_name: image.name.clone(),
            image_ids: vec![by_tag("v1")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .image_details;
    assert_eq!(details.len(), 1);
    assert_eq!(
        details[0].image_digest.as_deref(),
        Some(image.image_digest.as_str())
    );
    assert_eq!(details[0].image_tags, ["v1"]);
    assert!(details[0].image_pushed_at.is_some());
    assert!(details[0].image_size_in_bytes.unwrap() > 0);

    let filtered = client
        .describe_images(pb::DescribeImagesRequest {
            repository_name: image.name.clone(),
            filter: Some(pb::DescribeImagesFilter {
                tag_status: pb::TagStatus::Tagged as i32,
                image_status: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filtered.image_details.len(), 1);

    let missing_image = client
        .describe_images(pb::DescribeImagesRequest {
            repository_name: image.name,
            image_ids: vec![by_tag("nope")],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(&missing_image, Code::NotFound, "ImageNotFoundException");
}

async fn batch_get_image_answers_images_and_failures(kind: Kind) {
    let (mut client, _ctx, image) = pushed(kind, "fetched", "v1").await;
    let got = client
        .batch_get_image(pb::BatchGetImageRequest {
            repository_name: image.name,
            image_ids: vec![by_tag("v1"), by_tag("absent")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.images.len(), 1);
    let fetched = &got.images[0];
    assert!(
        fetched
            .image_manifest
            .as_deref()
            .unwrap()
            .contains(&image.layer_digest)
    );
    assert_eq!(
        fetched.image_id.as_ref().unwrap().image_digest.as_deref(),
        Some(image.image_digest.as_str())
    );
    assert_eq!(got.failures.len(), 1);
    assert_eq!(
        got.failures[0].failure_code,
        pb::ImageFailureCode::ImageNotFound as i32
    );
    assert_eq!(
        got.failures[0]
            .image_id
            .as_ref()
            .unwrap()
            .image_tag
            .as_deref(),
        Some("absent")
    );
}

async fn layer_availability_comes_in_one_message_per_batch(kind: Kind) {
    let (mut client, _ctx, image) = pushed(kind, "checked", "v1").await;
    let mut stream = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: image.name,
            layer_digests: vec![image.layer_digest.clone(), digest(42)],
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    let message = stream.message().await.unwrap().unwrap();
    assert!(
        stream.message().await.unwrap().is_none(),
        "one batch, one message"
    );
    assert_eq!(message.layers.len(), 1);
    assert_eq!(
        message.layers[0].layer_digest.as_deref(),
        Some(image.layer_digest.as_str())
    );
    assert_eq!(
        message.layers[0].layer_availability,
        pb::LayerAvailability::Available as i32
    );
    assert_eq!(message.failures.len(), 1);
    assert_eq!(
        message.failures[0].layer_digest.as_deref(),
        Some(digest(42).as_str())
    );
    assert_eq!(
        message.failures[0].failure_code,
        pb::LayerFailureCode::MissingLayerDigest as i32
    );
}

async fn images_are_deleted_by_digest(kind: Kind) {
    let (mut client, _ctx, image) = pushed(kind, "by-digest", "v1").await;
    let deleted = client
        .batch_delete_image(pb::BatchDeleteImageRequest {
            repository_name: image.name,
            image_ids: vec![pb::ImageIdentifier {
                image_digest: Some(image.image_digest.clone()),
                image_tag: None,
            }],
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.image_ids.len(), 1);
    assert_eq!(
        deleted.image_ids[0].image_digest.as_deref(),
        Some(image.image_digest.as_str())
    );
    assert!(deleted.failures.is_empty());
}

async fn complete_layer_upload_through_the_facade(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    let name = unique_name("upload");
    create(&mut client, &name).await;
    let sdk = ecr_client(&upstream_settings(&ctx.upstream.url));
    let upload_id = sdk
        .initiate_layer_upload()
        .repository_name(&name)
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();
    sdk.upload_layer_part()
        .repository_name(&name)
        .upload_id(&upload_id)
        .part_first_byte(0)
        .part_last_byte(4)
        .layer_part_blob(aws_smithy_types::Blob::new(b"hello".to_vec()))
        .send()
        .await
        .unwrap();
    let completed = client
        .complete_layer_upload(pb::CompleteLayerUploadRequest {
            repository_name: name.clone(),
            upload_id: upload_id.clone(),
            layer_digests: vec![sha256_digest(b"hello")],
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(completed.upload_id.as_deref(), Some(upload_id.as_str()));
    assert_eq!(completed.repository_name.as_deref(), Some(name.as_str()));
    assert_eq!(
        completed.layer_digest.as_deref(),
        Some("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );
    assert_eq!(completed.registry_id.as_deref(), Some("123456789012"));

    let unknown = client
        .complete_layer_upload(pb::CompleteLayerUploadRequest {
            repository_name: unique_name("no-such-repo"),
            upload_id,
            layer_digests: vec![digest(5)],
            registry_id: None,
        })
        .await
        .unwrap_err();
    assert_ecr_error(&unknown, Code::NotFound, "RepositoryNotFoundException");
}

#[tokio::test]
async fn download_urls_serve_the_exact_layer_bytes() {
    let (_emulator, facade) = emulator_facade(true).await;
    let mut client = facade.client().await;
    let image = client
        .batch_get_image(pb::BatchGetImageRequest {
            repository_name: "demo/hello".into(),
            image_ids: vec![pb::ImageIdentifier {
                image_tag: Some("latest".into()),
                image_digest: None,
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .images
        .remove(0);
    let manifest: serde_json::Value =
        serde_json::from_str(image.image_manifest.as_deref().unwrap()).unwrap();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let answer = client
        .get_download_url_for_layer(pb::GetDownloadUrlForLayerRequest {
            repository_name: "demo/hello".into(),
            layer_digest: layer_digest.clone(),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.layer_digest.as_deref(), Some(layer_digest.as_str()));
    let url = answer.download_url.unwrap();
    let (status, bytes) = http_get(&url).await;
    assert_eq!(status, 200);
    assert_eq!(
        sha256_digest(&bytes),
        layer_digest,
        "the bytes hash to the layer's digest"
    );
    assert_eq!(
        bytes.len() as u64,
        manifest["layers"][0]["size"].as_u64().unwrap()
    );

    let forged = format!("{}0", url.trim_end_matches(|c: char| c.is_ascii_hexdigit()));
    assert_eq!(
        http_get(&forged).await.0,
        403,
        "a forged signature is refused"
    );

    let missing = client
        .get_download_url_for_layer(pb::GetDownloadUrlForLayerRequest {
            repository_name: "demo/hello".into(),
            layer_digest: digest(9),
            registry_id: None,
        })
        .await
        .unwrap_err();
    assert_ecr_error(&missing, Code::NotFound, "LayersNotFoundException");
}
