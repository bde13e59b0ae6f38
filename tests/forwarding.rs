//! Every RPC through the facade over real gRPC, against each upstream:
//! moto server — a real ECR implementation nobody here wrote — and the
//! embedded emulator. Each scenario runs once per upstream (`moto::*`,
//! `emulator::*`). A counting proxy sits between the facade and the upstream
//! so tests also see what reached it.

mod common;
#[path = "forwarding/transfer.rs"]
mod transfer;

use common::proxy::Proxy;
use common::{TestFacade, digest, ecr_client, moto, sha256_digest, unique_name, upstream_settings};
use ecr_facade::emulator::{Emulator, EmulatorConfig};
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Which ECR implementation answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Moto,
    Emulator,
}

/// A running upstream: the shared moto server, or an emulator of this test's own.
struct Upstream {
    url: String,
    _emulator: Option<Emulator>,
}

impl Upstream {
    async fn start(kind: Kind) -> Self {
        match kind {
            Kind::Moto => Self {
                url: moto().url.clone(),
                _emulator: None,
            },
            Kind::Emulator => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let emulator = Emulator::start(listener, EmulatorConfig::default())
                    .await
                    .unwrap();
                Self {
                    url: emulator.url(),
                    _emulator: Some(emulator),
                }
            }
        }
    }
}

struct Setup {
    upstream: Upstream,
    proxy: Proxy,
    _facade: TestFacade,
    client: EcrServiceClient<Channel>,
}

async fn setup(kind: Kind) -> Setup {
    let upstream = Upstream::start(kind).await;
    let proxy = Proxy::start(Some(&upstream.url)).await;
    let facade = TestFacade::start(&proxy.url).await;
    let client = facade.client().await;
    Setup {
        upstream,
        proxy,
        _facade: facade,
        client,
    }
}

/// Runs each scenario against moto and against the emulator.
macro_rules! against_both {
    ($($scenario:ident),+ $(,)?) => {
        mod moto {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Kind::Moto).await
            })+
        }
        mod emulator {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Kind::Emulator).await
            })+
        }
    };
}

against_both!(
    repository_lifecycle,
    images_described_fetched_checked_and_deleted,
    force_deletes_a_repository_with_images,
    complete_layer_upload_through_the_facade,
    repository_policy_is_deleted_once,
    authorization_tokens_are_returned_and_cached_when_valid,
    bad_input_is_refused_before_any_upstream_call,
    push_tag_list_and_pull_an_image,
    list_images_pages,
    unary_upload_and_policy_actions,
    a_present_layer_is_not_uploaded_again,
    a_wrong_expected_digest_commits_nothing,
    an_immutable_tag_is_not_moved,
    bad_transfers_are_refused_before_any_upstream_call,
);

use transfer::{
    a_present_layer_is_not_uploaded_again, a_wrong_expected_digest_commits_nothing,
    an_immutable_tag_is_not_moved, bad_transfers_are_refused_before_any_upstream_call,
    list_images_pages, push_tag_list_and_pull_an_image, unary_upload_and_policy_actions,
};

async fn create(client: &mut EcrServiceClient<Channel>, name: &str) -> pb::Repository {
    client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: name.to_owned(),
            ..Default::default()
        })
        .await
        .expect("create repository")
        .into_inner()
        .repository
        .expect("repository in the answer")
}

fn assert_ecr_error(status: &tonic::Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert_eq!(info.reason, reason);
    assert_eq!(info.domain, "ecr.amazonaws.com");
    assert!(!status.message().is_empty());
}

async fn repository_lifecycle(kind: Kind) {
    let Setup {
        upstream: _upstream,
        proxy: _proxy,
        _facade,
        mut client,
    } = setup(kind).await;
    let name = unique_name("lifecycle");
    let created = client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: name.clone(),
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
        })
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

    let again = client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(
        &again,
        Code::AlreadyExists,
        "RepositoryAlreadyExistsException",
    );

    let described = client
        .describe_repositories(pb::DescribeRepositoriesRequest {
            repository_names: vec![name.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.repositories.len(), 1);
    assert_eq!(
        described.repositories[0].repository_arn,
        created.repository_arn
    );

    let deleted = client
        .delete_repository(pb::DeleteRepositoryRequest {
            repository_name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deleted.repository.unwrap().repository_name.as_deref(),
        Some(name.as_str())
    );

    let gone = client
        .delete_repository(pb::DeleteRepositoryRequest {
            repository_name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(&gone, Code::NotFound, "RepositoryNotFoundException");
    let missing = client
        .describe_repositories(pb::DescribeRepositoriesRequest {
            repository_names: vec![name],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(&missing, Code::NotFound, "RepositoryNotFoundException");
}

/// Pushes a one-layer image into `repository` through the facade (PushLayer
/// for its layer and config, PutImage) and returns (layer digest, image
/// digest).
async fn push_image(
    client: &mut EcrServiceClient<Channel>,
    repository: &str,
    tag: &str,
) -> (String, String) {
    let layer = format!("layer of {repository}:{tag}").into_bytes();
    let config = b"{}";
    let layer_digest = transfer::push(client, repository, &layer, 1024)
        .await
        .layer_digest;
    transfer::push(client, repository, config, 1024).await;
    let image = client
        .put_image(pb::PutImageRequest {
            repository_name: repository.to_owned(),
            image_manifest: transfer::manifest(config, &layer),
            image_tag: Some(tag.to_owned()),
            ..Default::default()
        })
        .await
        .expect("put image")
        .into_inner()
        .image
        .expect("image");
    let image_digest = image
        .image_id
        .and_then(|id| id.image_digest)
        .expect("digest");
    (layer_digest, image_digest)
}

async fn images_described_fetched_checked_and_deleted(kind: Kind) {
    let Setup {
        upstream: _upstream,
        proxy: _proxy,
        _facade,
        mut client,
    } = setup(kind).await;
    let name = unique_name("images");
    create(&mut client, &name).await;
    let (layer_digest, image_digest) = push_image(&mut client, &name, "v1").await;

    let details = client
        .describe_images(pb::DescribeImagesRequest {
            repository_name: name.clone(),
            image_ids: vec![pb::ImageIdentifier {
                image_tag: Some("v1".into()),
                image_digest: None,
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .image_details;
    assert_eq!(details.len(), 1);
    assert_eq!(
        details[0].image_digest.as_deref(),
        Some(image_digest.as_str())
    );
    assert_eq!(details[0].image_tags, ["v1"]);
    assert!(details[0].image_pushed_at.is_some());
    assert!(details[0].image_size_in_bytes.unwrap() > 0);

    let filtered = client
        .describe_images(pb::DescribeImagesRequest {
            repository_name: name.clone(),
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
            repository_name: name.clone(),
            image_ids: vec![pb::ImageIdentifier {
                image_tag: Some("nope".into()),
                image_digest: None,
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(&missing_image, Code::NotFound, "ImageNotFoundException");

    let got = client
        .batch_get_image(pb::BatchGetImageRequest {
            repository_name: name.clone(),
            image_ids: vec![
                pb::ImageIdentifier {
                    image_tag: Some("v1".into()),
                    image_digest: None,
                },
                pb::ImageIdentifier {
                    image_tag: Some("absent".into()),
                    image_digest: None,
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.images.len(), 1);
    assert!(
        got.images[0]
            .image_manifest
            .as_deref()
            .unwrap()
            .contains(&layer_digest)
    );
    assert_eq!(
        got.images[0]
            .image_id
            .as_ref()
            .unwrap()
            .image_digest
            .as_deref(),
        Some(image_digest.as_str())
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

    let mut stream = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: name.clone(),
            layer_digests: vec![layer_digest.clone(), digest(42)],
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
        Some(layer_digest.as_str())
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

    let not_empty = client
        .delete_repository(pb::DeleteRepositoryRequest {
            repository_name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(
        &not_empty,
        Code::FailedPrecondition,
        "RepositoryNotEmptyException",
    );

    let deleted = client
        .batch_delete_image(pb::BatchDeleteImageRequest {
            repository_name: name.clone(),
            image_ids: vec![pb::ImageIdentifier {
                image_digest: Some(image_digest.clone()),
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
        Some(image_digest.as_str())
    );
    assert!(deleted.failures.is_empty());

    client
        .delete_repository(pb::DeleteRepositoryRequest {
            repository_name: name,
            force: Some(true),
            registry_id: None,
        })
        .await
        .unwrap();
}

async fn force_deletes_a_repository_with_images(kind: Kind) {
    let Setup {
        upstream: _upstream,
        proxy: _proxy,
        _facade,
        mut client,
    } = setup(kind).await;
    let name = unique_name("force");
    create(&mut client, &name).await;
    push_image(&mut client, &name, "latest").await;
    let deleted = client
        .delete_repository(pb::DeleteRepositoryRequest {
            repository_name: name.clone(),
            force: Some(true),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.repository.unwrap().repository_name, Some(name));
}

async fn complete_layer_upload_through_the_facade(kind: Kind) {
    let Setup {
        upstream,
        proxy: _proxy,
        _facade,
        mut client,
    } = setup(kind).await;
    let name = unique_name("upload");
    create(&mut client, &name).await;
    let sdk = ecr_client(&upstream_settings(&upstream.url));
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
    let Setup {
        upstream,
        proxy: _proxy,
        _facade,
        mut client,
    } = setup(kind).await;
    let name = unique_name("policy");
    create(&mut client, &name).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}"#;
    let sdk = ecr_client(&upstream_settings(&upstream.url));
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

async fn authorization_tokens_are_returned_and_cached_when_valid(kind: Kind) {
    let Setup {
        upstream: _upstream,
        proxy,
        _facade,
        mut client,
    } = setup(kind).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let data = client
            .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
            .await
            .unwrap()
            .into_inner()
            .authorization_data;
        assert_eq!(data.len(), 1);
        let token = data[0].authorization_token.clone().unwrap();
        assert!(!token.is_empty());
        tokens.push(token);
        assert!(
            data[0]
                .proxy_endpoint
                .as_deref()
                .unwrap()
                .contains("123456789012")
        );
        let expires = data[0].expires_at.as_ref().unwrap().seconds;
        match kind {
            // moto's tokens expired in 2015: returned, never cached.
            Kind::Moto => assert!(expires < 1_500_000_000),
            // ECR's (and the emulator's) last 12 hours: cached.
            Kind::Emulator => assert!((expires - now - 12 * 3600).abs() < 60, "{expires}"),
        }
    }
    match kind {
        Kind::Moto => assert_eq!(proxy.count("GetAuthorizationToken"), 2),
        Kind::Emulator => {
            assert_eq!(proxy.count("GetAuthorizationToken"), 1);
            assert_eq!(tokens[0], tokens[1], "the cached token is served");
        }
    }

    let both = client
        .get_authorization_token(pb::GetAuthorizationTokenRequest {
            registry_ids: vec!["111111111111".into(), "222222222222".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .authorization_data;
    assert_eq!(both.len(), 2);
    assert!(
        both[0]
            .proxy_endpoint
            .as_deref()
            .unwrap()
            .contains("111111111111")
    );
    assert!(
        both[1]
            .proxy_endpoint
            .as_deref()
            .unwrap()
            .contains("222222222222")
    );
}

async fn bad_input_is_refused_before_any_upstream_call(kind: Kind) {
    let Setup {
        upstream: _upstream,
        proxy,
        _facade,
        mut client,
    } = setup(kind).await;
    let bad_name = "Not A Repo!".to_owned();
    let mut statuses = vec![
        client
            .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
                repository_name: bad_name.clone(),
                layer_digests: vec![],
                registry_id: Some("12".into()),
            })
            .await
            .map(|_| ())
            .unwrap_err(),
    ];
    macro_rules! refused {
        ($method:ident, $request:expr) => {
            statuses.push(client.$method($request).await.map(|_| ()).unwrap_err())
        };
    }
    refused!(
        batch_delete_image,
        pb::BatchDeleteImageRequest {
            repository_name: bad_name.clone(),
            ..Default::default()
        }
    );
    refused!(
        batch_get_image,
        pb::BatchGetImageRequest {
            repository_name: bad_name.clone(),
            ..Default::default()
        }
    );
    refused!(
        complete_layer_upload,
        pb::CompleteLayerUploadRequest {
            repository_name: bad_name.clone(),
            ..Default::default()
        }
    );
    refused!(
        create_repository,
        pb::CreateRepositoryRequest {
            repository_name: bad_name.clone(),
            ..Default::default()
        }
    );
    refused!(
        delete_repository,
        pb::DeleteRepositoryRequest {
            repository_name: bad_name.clone(),
            ..Default::default()
        }
    );
    refused!(
        delete_repository_policy,
        pb::DeleteRepositoryPolicyRequest {
            repository_name: bad_name.clone(),
            ..Default::default()
        }
    );
    refused!(
        describe_images,
        pb::DescribeImagesRequest {
            repository_name: bad_name.clone(),
            ..Default::default()
        }
    );
    refused!(
        describe_repositories,
        pb::DescribeRepositoriesRequest {
            max_results: Some(0),
            ..Default::default()
        }
    );
    refused!(
        get_authorization_token,
        pb::GetAuthorizationTokenRequest {
            registry_ids: vec!["x".into()]
        }
    );
    refused!(
        get_download_url_for_layer,
        pb::GetDownloadUrlForLayerRequest {
            repository_name: bad_name.clone(),
            ..Default::default()
        }
    );
    assert_eq!(statuses.len(), 11);
    for status in &statuses {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let bad = status.get_details_bad_request().expect("BadRequest detail");
        assert!(!bad.field_violations.is_empty());
    }
    let fields = |i: usize| -> Vec<String> {
        statuses[i]
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect()
    };
    assert_eq!(
        fields(0),
        ["registry_id", "repository_name", "layer_digests"]
    );
    assert_eq!(fields(8), ["max_results"]);
    assert_eq!(fields(9), ["registry_ids[0]"]);
    assert_eq!(
        proxy.total(),
        0,
        "invalid requests reached the upstream: {:?}",
        proxy.calls()
    );
}

// What moto lacks, through the facade against the emulator.

async fn emulator_facade(seed_demo: bool) -> (Emulator, TestFacade) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = EmulatorConfig {
        seed_demo,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(listener, config).await.unwrap();
    let facade = TestFacade::start(&emulator.url()).await;
    (emulator, facade)
}

/// GET `url`: (status, body).
async fn http_get(url: &str) -> (u16, Vec<u8>) {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
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

#[tokio::test]
async fn emulator_faults_reach_callers_as_canonical_codes() {
    use ecr_facade::emulator::FaultSpec;

    let (emulator, facade) = emulator_facade(false).await;
    let mut client = facade.client().await;
    let describe = pb::DescribeRepositoriesRequest::default;

    // Two throttles are absorbed by the SDK's retries.
    emulator
        .set_fault(
            "DescribeRepositories",
            FaultSpec {
                throttle_next: 2,
                ..FaultSpec::default()
            },
        )
        .unwrap();
    client.describe_repositories(describe()).await.unwrap();
    assert_eq!(emulator.calls("DescribeRepositories"), 3);

    // Throttled throughout: RESOURCE_EXHAUSTED with RetryInfo after 3 attempts.
    emulator
        .set_fault(
            "DescribeRepositories",
            FaultSpec {
                throttle_all: true,
                ..FaultSpec::default()
            },
        )
        .unwrap();
    let throttled = client.describe_repositories(describe()).await.unwrap_err();
    assert_ecr_error(&throttled, Code::ResourceExhausted, "ThrottlingException");
    assert!(throttled.get_details_retry_info().is_some());
    assert_eq!(emulator.calls("DescribeRepositories"), 6);

    // Server errors: INTERNAL after the retries.
    emulator
        .set_fault(
            "DescribeRepositories",
            FaultSpec {
                fail_all: true,
                ..FaultSpec::default()
            },
        )
        .unwrap();
    let failed = client.describe_repositories(describe()).await.unwrap_err();
    assert_ecr_error(&failed, Code::Internal, "ServerException");
    assert_eq!(emulator.calls("DescribeRepositories"), 9);

    // Slow upstream and a caller's deadline: DEADLINE_EXCEEDED, abandoned.
    emulator
        .set_fault(
            "DescribeRepositories",
            FaultSpec {
                latency: std::time::Duration::from_secs(3),
                ..FaultSpec::default()
            },
        )
        .unwrap();
    let mut request = tonic::Request::new(describe());
    request
        .metadata_mut()
        .insert("grpc-timeout", "300m".parse().unwrap());
    let started = std::time::Instant::now();
    let late = ecr_facade::pb::ecr_service_server::EcrService::describe_repositories(
        &facade.facade,
        request,
    )
    .await
    .unwrap_err();
    assert_eq!(late.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    emulator.clear_faults();
    client
        .describe_repositories(describe())
        .await
        .expect("healthy again");
}
