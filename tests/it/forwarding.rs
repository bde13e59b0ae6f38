//! Every RPC through the facade over real gRPC, against each upstream:
//! moto server — a real ECR implementation nobody here wrote — and the
//! embedded emulator. Each scenario runs once per upstream (`moto::*`,
//! `emulator::*`). A counting proxy sits between the facade and the upstream
//! so tests also see what reached it.

use crate::common::images::{by_tag, push_image};
use crate::common::upstream::{
    Kind, Setup, against_both, assert_ecr_error, create, emulator_facade, setup, violated_fields,
};
use crate::common::{digest, ecr_client, http_get, sha256_digest, unique_name, upstream_settings};
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use tonic::Code;
use tonic::transport::Channel;

against_both!(
    a_repository_is_created_with_its_settings,
    a_repository_is_created_once,
    a_deleted_repository_is_gone,
    pushed_images_are_described,
    batch_get_image_answers_images_and_failures,
    layer_availability_comes_in_one_message_per_batch,
    a_repository_with_images_is_not_deleted_without_force,
    images_are_deleted_by_digest,
    force_deletes_a_repository_with_images,
    complete_layer_upload_through_the_facade,
    repository_policy_is_deleted_once,
    bad_input_is_refused_before_any_upstream_call,
);

/// A CreateRepository setting everything ECR lets a caller choose.
fn configured_repository(name: &str) -> pb::CreateRepositoryRequest {
    pb::CreateRepositoryRequest {
        repository_name: name.to_owned(),
        tags: vec![pb::Tag {
            key: "team".into(),
            value: "platform".into(),
        }],
        image_tag_mutability: pb::ImageTagMutability::Immutable as i32,
        image_scanning_configuration: Some(pb::ImageScanningConfiguration {
            scan_on_push: Some(true),
        }),
        encryption_configuration: Some(pb::EncryptionConfiguration {
            encryption_type: pb::EncryptionType::Aes256 as i32,
            kms_key: None,
        }),
        ..Default::default()
    }
}

async fn a_repository_is_created_with_its_settings(kind: Kind) {
    let (mut client, _ctx) = setup(kind).await;
    let name = unique_name("lifecycle");
    let created = client
        .create_repository(configured_repository(&name))
        .await
        .unwrap()
        .into_inner()
        .repository
        .unwrap();
    assert_eq!(created.repository_name.as_deref(), Some(name.as_str()));
    assert_eq!(created.registry_id.as_deref(), Some("123456789012"));
    assert!(
        created
            .repository_arn
            .as_deref()
            .unwrap()
            .ends_with(&format!("repository/{name}"))
    );
    assert!(created.repository_uri.as_deref().unwrap().ends_with(&name));
    assert!(created.created_at.is_some());
    assert_eq!(
        created.image_tag_mutability,
        pb::ImageTagMutability::Immutable as i32
    );
    assert_eq!(
        created.image_scanning_configuration.unwrap().scan_on_push,
        Some(true)
    );
    assert_eq!(
        created.encryption_configuration.unwrap().encryption_type,
        pb::EncryptionType::Aes256 as i32
    );

    let described = client
        .describe_repositories(described_by_name(&name))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.repositories.len(), 1);
    assert_eq!(
        described.repositories[0].repository_arn,
        created.repository_arn
    );
}

fn described_by_name(name: &str) -> pb::DescribeRepositoriesRequest {
    pb::DescribeRepositoriesRequest {
        repository_names: vec![name.to_owned()],
        ..Default::default()
    }
}

async fn a_repository_is_created_once(kind: Kind) {
    let (mut client, _ctx) = setup(kind).await;
    let name = unique_name("once");
    create(&mut client, &name).await;
    let again = client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: name,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(
        &again,
        Code::AlreadyExists,
        "RepositoryAlreadyExistsException",
    );
}

async fn a_deleted_repository_is_gone(kind: Kind) {
    let (mut client, _ctx) = setup(kind).await;
    let name = unique_name("deleted");
    create(&mut client, &name).await;
    let delete = || pb::DeleteRepositoryRequest {
        repository_name: name.clone(),
        ..Default::default()
    };
    let deleted = client
        .delete_repository(delete())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deleted.repository.unwrap().repository_name.as_deref(),
        Some(name.as_str())
    );

    let gone = client.delete_repository(delete()).await.unwrap_err();
    assert_ecr_error(&gone, Code::NotFound, "RepositoryNotFoundException");
    let missing = client
        .describe_repositories(described_by_name(&name))
        .await
        .unwrap_err();
    assert_ecr_error(&missing, Code::NotFound, "RepositoryNotFoundException");
}

/// A repository holding one image pushed through the facade.
struct Pushed {
    name: String,
    layer_digest: String,
    image_digest: String,
}

/// [`setup`], then a repository named after `prefix` with one image tagged
/// `tag` in it.
async fn pushed(kind: Kind, prefix: &str, tag: &str) -> (EcrServiceClient<Channel>, Setup, Pushed) {
    let (mut client, ctx) = setup(kind).await;
    let name = unique_name(prefix);
    create(&mut client, &name).await;
    let (layer_digest, image_digest) = push_image(&mut client, &name, tag).await;
    let pushed = Pushed {
        name,
        layer_digest,
        image_digest,
    };
    (client, ctx, pushed)
}

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

async fn a_repository_with_images_is_not_deleted_without_force(kind: Kind) {
    let (mut client, _ctx, image) = pushed(kind, "not-empty", "v1").await;
    let not_empty = client
        .delete_repository(pb::DeleteRepositoryRequest {
            repository_name: image.name,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(
        &not_empty,
        Code::FailedPrecondition,
        "RepositoryNotEmptyException",
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

async fn force_deletes_a_repository_with_images(kind: Kind) {
    let (mut client, _ctx, image) = pushed(kind, "force", "latest").await;
    let deleted = client
        .delete_repository(pb::DeleteRepositoryRequest {
            repository_name: image.name.clone(),
            force: Some(true),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deleted.repository.unwrap().repository_name,
        Some(image.name)
    );
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

async fn repository_policy_is_deleted_once(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    let name = unique_name("policy");
    create(&mut client, &name).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}"#;
    let sdk = ecr_client(&upstream_settings(&ctx.upstream.url));
    sdk.set_repository_policy()
        .repository_name(&name)
        .policy_text(policy)
        .send()
        .await
        .unwrap();
    let deleted = client
        .delete_repository_policy(pb::DeleteRepositoryPolicyRequest {
            repository_name: name.clone(),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.repository_name.as_deref(), Some(name.as_str()));
    assert_eq!(deleted.registry_id.as_deref(), Some("123456789012"));
    let text: serde_json::Value =
        serde_json::from_str(deleted.policy_text.as_deref().unwrap()).unwrap();
    assert_eq!(text["Statement"][0]["Sid"], "pull");

    let again = client
        .delete_repository_policy(pb::DeleteRepositoryPolicyRequest {
            repository_name: name,
            registry_id: None,
        })
        .await
        .unwrap_err();
    assert_ecr_error(&again, Code::NotFound, "RepositoryPolicyNotFoundException");
}

async fn bad_input_is_refused_before_any_upstream_call(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    let bad_name = "Not A Repo!".to_owned();
    // Every action naming one repository, with an invalid name.
    macro_rules! with_bad_name {
        ($($method:ident($request:ident)),+ $(,)?) => {$(
            let request = pb::$request { repository_name: bad_name.clone(), ..Default::default() };
            let status = client.$method(request).await.map(|_| ()).unwrap_err();
            let fields = violated_fields(&status);
            assert!(fields.contains(&"repository_name".to_owned()), "{}: {fields:?}", stringify!($method));
        )+};
    }
    with_bad_name!(
        batch_delete_image(BatchDeleteImageRequest),
        batch_get_image(BatchGetImageRequest),
        complete_layer_upload(CompleteLayerUploadRequest),
        create_repository(CreateRepositoryRequest),
        delete_repository(DeleteRepositoryRequest),
        delete_repository_policy(DeleteRepositoryPolicyRequest),
        describe_images(DescribeImagesRequest),
        get_download_url_for_layer(GetDownloadUrlForLayerRequest),
    );
    let check = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: bad_name.clone(),
            layer_digests: vec![],
            registry_id: Some("12".into()),
        })
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        violated_fields(&check),
        ["registry_id", "repository_name", "layer_digests"]
    );
    let page = client
        .describe_repositories(pb::DescribeRepositoriesRequest {
            max_results: Some(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&page), ["max_results"]);
    let token = client
        .get_authorization_token(pb::GetAuthorizationTokenRequest {
            registry_ids: vec!["x".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&token), ["registry_ids[0]"]);
    assert_eq!(
        ctx.proxy.total(),
        0,
        "invalid requests reached the upstream: {:?}",
        ctx.proxy.calls()
    );
}

// What moto lacks, through the facade against the emulator.

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

#[tokio::test]
async fn pagination_pages_through_the_facade() {
    let (_emulator, facade) = emulator_facade(false).await;
    let mut client = facade.client().await;
    for i in 0..25 {
        create(&mut client, &format!("paged/repo-{i:02}")).await;
    }
    let mut names = Vec::new();
    let mut next_token = None;
    let mut pages = 0;
    loop {
        let page = client
            .describe_repositories(pb::DescribeRepositoriesRequest {
                max_results: Some(10),
                next_token: next_token.take(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.repositories.len() <= 10);
        names.extend(
            page.repositories
                .into_iter()
                .map(|r| r.repository_name.unwrap()),
        );
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 25, "every repository exactly once");

    let bad_token = client
        .describe_repositories(pb::DescribeRepositoriesRequest {
            next_token: Some("not-a-token".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(
        &bad_token,
        Code::InvalidArgument,
        "InvalidParameterException",
    );
}
