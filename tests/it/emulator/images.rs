//! Pushing and reading back an image with the SDK: layer parts, PutImage,
//! the reads of a pushed image, its download URL, deletion, tag
//! immutability and the storage bound.
use aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError;
use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::{ImageIdentifier, ImageTagMutability};
use ecr_facade::emulator::EmulatorConfig;

use super::{client, code, create, emulator_and_client, get, manifest, upload};
use crate::common::sha256_digest;
use crate::common::upstream::start_emulator;

const REPO: &str = "team/app";

const LAYER_LEN: usize = 3000;

/// The layer of [`REPO`]'s image: [`LAYER_LEN`] bytes, not all alike.
fn layered_image_layer() -> Vec<u8> {
    (0..LAYER_LEN as u32).map(|i| (i % 251) as u8).collect()
}

/// [`REPO`] with [`layered_image_layer`] and a `{}` config uploaded: their
/// digests.
async fn uploaded_layers(ecr: &aws_sdk_ecr::Client) -> (String, String) {
    create(ecr, REPO, ImageTagMutability::Mutable).await;
    let layer_digest = upload(ecr, REPO, &layered_image_layer()).await;
    let config_digest = upload(ecr, REPO, b"{}").await;
    (layer_digest, config_digest)
}

/// An image `v1` of [`uploaded_layers`] in [`REPO`]: its layer's and config's
/// digests, and its manifest.
async fn pushed_image(ecr: &aws_sdk_ecr::Client) -> (String, String, String) {
    let (layer_digest, config_digest) = uploaded_layers(ecr).await;
    let text = manifest(&config_digest, &[(&layer_digest, LAYER_LEN)]);
    put_v1(ecr, &text).await.unwrap();
    (layer_digest, config_digest, text)
}

/// PutImage of `text` tagged `v1` in [`REPO`]: the image, or the error's code.
async fn put_v1(
    ecr: &aws_sdk_ecr::Client,
    text: &str,
) -> Result<aws_sdk_ecr::types::Image, String> {
    ecr.put_image()
        .repository_name(REPO)
        .image_manifest(text)
        .image_tag("v1")
        .send()
        .await
        .map(|answer| answer.image.unwrap())
        .map_err(|err| code(&err))
}

#[tokio::test]
async fn a_repository_is_created_once() {
    let (_emulator, ecr) = emulator_and_client().await;
    create(&ecr, REPO, ImageTagMutability::Mutable).await;
    let err = ecr
        .create_repository()
        .repository_name(REPO)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "RepositoryAlreadyExistsException");
}

/// A layer in two parts, with a gap attempted in between, completed under
/// the wrong digest; then uploaded whole.
#[tokio::test]
async fn layer_parts_must_be_contiguous_and_match_the_digest() {
    let (_emulator, ecr) = emulator_and_client().await;
    create(&ecr, REPO, ImageTagMutability::Mutable).await;
    let layer = layered_image_layer();
    let id = ecr
        .initiate_layer_upload()
        .repository_name(REPO)
        .send()
        .await
        .unwrap();
    assert_eq!(id.part_size, Some(10 * 1024 * 1024));
    let id = id.upload_id.unwrap();
    let part = |first: usize, bytes: &[u8]| {
        ecr.upload_layer_part()
            .repository_name(REPO)
            .upload_id(&id)
            .part_first_byte(first as i64)
            .part_last_byte((first + bytes.len() - 1) as i64)
            .layer_part_blob(Blob::new(bytes))
            .send()
    };
    let sent = part(0, &layer[..1000]).await.unwrap();
    assert_eq!(sent.last_byte_received, Some(999));
    match part(1500, &layer[1500..])
        .await
        .unwrap_err()
        .into_service_error()
    {
        UploadLayerPartError::InvalidLayerPartException(e) => {
            assert_eq!(e.last_valid_byte_received(), Some(999));
            assert_eq!(e.upload_id(), Some(id.as_str()));
            assert_eq!(e.repository_name(), Some(REPO));
            assert_eq!(e.registry_id(), Some("123456789012"));
        }
        other => panic!("expected InvalidLayerPartException, got {other:?}"),
    }
    part(1000, &layer[1000..]).await.unwrap();
    let wrong = ecr
        .complete_layer_upload()
        .repository_name(REPO)
        .upload_id(&id)
        .layer_digests(sha256_digest(b"something else"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&wrong), "InvalidLayerException");
    assert_eq!(upload(&ecr, REPO, &layer).await, sha256_digest(&layer));
}

/// PutImage: missing layer, then the real push, then an identical one.
#[tokio::test]
async fn put_image_needs_its_layers_and_refuses_an_identical_push() {
    let (_emulator, ecr) = emulator_and_client().await;
    let (layer_digest, config_digest) = uploaded_layers(&ecr).await;
    let missing = manifest(&config_digest, &[(&sha256_digest(b"absent"), 6)]);
    let err = put_v1(&ecr, &missing).await.unwrap_err();
    assert_eq!(err, "LayersNotFoundException");
    let text = manifest(&config_digest, &[(&layer_digest, LAYER_LEN)]);
    let pushed = put_v1(&ecr, &text).await.unwrap();
    let image_digest = sha256_digest(text.as_bytes());
    assert_eq!(
        pushed.image_id.unwrap().image_digest.as_deref(),
        Some(image_digest.as_str())
    );
    let again = put_v1(&ecr, &text).await.unwrap_err();
    assert_eq!(again, "ImageAlreadyExistsException");
}

#[tokio::test]
async fn a_pushed_image_is_described_fetched_and_its_layers_checked() {
    let (_emulator, ecr) = emulator_and_client().await;
    let (layer_digest, _, text) = pushed_image(&ecr).await;
    let details = ecr
        .describe_images()
        .repository_name(REPO)
        .send()
        .await
        .unwrap();
    let detail = &details.image_details()[0];
    assert_eq!(detail.image_size_in_bytes, Some(LAYER_LEN as i64));
    assert_eq!(detail.image_tags(), ["v1"]);
    assert!(detail.image_pushed_at.is_some());
    let got = ecr
        .batch_get_image()
        .repository_name(REPO)
        .image_ids(ImageIdentifier::builder().image_tag("v1").build())
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.images()[0].image_manifest.as_deref(),
        Some(text.as_str())
    );
    let check = ecr
        .batch_check_layer_availability()
        .repository_name(REPO)
        .layer_digests(&layer_digest)
        .layer_digests(sha256_digest(b"absent"))
        .send()
        .await
        .unwrap();
    assert_eq!(check.layers()[0].layer_size, Some(LAYER_LEN as i64));
    assert_eq!(
        check.failures()[0].failure_code.as_ref().unwrap().as_str(),
        "MissingLayerDigest"
    );
}

async fn download_url(ecr: &aws_sdk_ecr::Client, layer_digest: &str) -> Result<String, String> {
    ecr.get_download_url_for_layer()
        .repository_name(REPO)
        .layer_digest(layer_digest)
        .send()
        .await
        .map(|answer| answer.download_url.unwrap())
        .map_err(|err| code(&err))
}

/// The download URL serves the exact bytes; a tampered one is refused.
#[tokio::test]
async fn download_urls_serve_the_layer_and_refuse_tampering() {
    let (emulator, ecr) = emulator_and_client().await;
    let (layer_digest, config_digest, _) = pushed_image(&ecr).await;
    let url = download_url(&ecr, &layer_digest).await.unwrap();
    assert_eq!(get(&emulator, &url).await, (200, layered_image_layer()));
    let forged = url.replace("signature=", "signature=00");
    assert_eq!(get(&emulator, &forged).await.0, 403);
    let other_blob = url.replace(&layer_digest, &config_digest);
    assert_eq!(get(&emulator, &other_blob).await.0, 403);
}

#[tokio::test]
async fn a_deleted_image_leaves_its_layers_inaccessible() {
    let (_emulator, ecr) = emulator_and_client().await;
    let (layer_digest, _, _) = pushed_image(&ecr).await;
    let deleted = ecr
        .batch_delete_image()
        .repository_name(REPO)
        .image_ids(ImageIdentifier::builder().image_tag("v1").build())
        .image_ids(ImageIdentifier::builder().image_tag("nope").build())
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.image_ids().len(), 1);
    assert_eq!(
        deleted.failures()[0]
            .failure_code
            .as_ref()
            .unwrap()
            .as_str(),
        "ImageNotFound"
    );
    let listed = ecr
        .list_images()
        .repository_name(REPO)
        .send()
        .await
        .unwrap();
    assert!(listed.image_ids().is_empty());
    // No image references the layer any more.
    let refused = download_url(&ecr, &layer_digest).await.unwrap_err();
    assert_eq!(refused, "LayerInaccessibleException");
}

#[tokio::test]
async fn immutable_repositories_keep_their_tags() {
    let (_emulator, ecr) = emulator_and_client().await;
    let repo = "fixed";
    create(&ecr, repo, ImageTagMutability::Immutable).await;
    let config = upload(&ecr, repo, b"{}").await;
    let one = upload(&ecr, repo, b"one").await;
    let two = upload(&ecr, repo, b"two").await;
    let push = |text: String| {
        ecr.put_image()
            .repository_name(repo)
            .image_manifest(text)
            .image_tag("v1")
            .send()
    };
    push(manifest(&config, &[(&one, 3)])).await.unwrap();
    let err = push(manifest(&config, &[(&two, 3)])).await.unwrap_err();
    assert_eq!(code(&err), "ImageTagAlreadyExistsException");
    let err = ecr
        .delete_repository()
        .repository_name(repo)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "RepositoryNotEmptyException");
    ecr.delete_repository()
        .repository_name(repo)
        .force(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn storage_is_bounded() {
    let config = EmulatorConfig {
        max_blob_bytes: 1000,
        ..Default::default()
    };
    let emulator = start_emulator(config).await;
    let ecr = client(&emulator, 1);
    create(&ecr, "small", ImageTagMutability::Mutable).await;
    upload(&ecr, "small", &[1; 600]).await;
    let id = ecr
        .initiate_layer_upload()
        .repository_name("small")
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();
    let err = ecr
        .upload_layer_part()
        .repository_name("small")
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(599)
        .layer_part_blob(Blob::new(vec![2; 600]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "LimitExceededException");
    assert_eq!(emulator.stored_bytes(), 600);

    let oversized = ecr
        .upload_layer_part()
        .repository_name("small")
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(20 * 1024 * 1024)
        .layer_part_blob(Blob::new(vec![0; 20 * 1024 * 1024 + 1]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&oversized), "InvalidParameterException");
}
