//! The embedded ECR emulator driven by aws-sdk-ecr over real HTTP, as any
//! SDK user would drive it through an endpoint override; raw HTTP where the
//! SDK cannot go (download URLs, admin endpoints, malformed requests).

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::operation::upload_layer_part::UploadLayerPartError;
use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::{ImageIdentifier, ImageTagMutability, TagStatus};
use aws_types::region::Region;
use ecr_facade::emulator::{AdminToken, Emulator, EmulatorConfig, FaultSpec};

use crate::common::sha256_digest;
use crate::common::upstream::start_emulator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An SDK client with dummy credentials and fast retries.
fn client(emulator: &Emulator, max_attempts: u32) -> aws_sdk_ecr::Client {
    let retry = RetryConfig::standard()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(20));
    let config = aws_sdk_ecr::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(emulator.url())
        .retry_config(retry)
        .build();
    aws_sdk_ecr::Client::from_conf(config)
}

fn code<E: ProvideErrorMetadata>(err: &E) -> String {
    err.code().unwrap_or("<none>").to_owned()
}

async fn create(ecr: &aws_sdk_ecr::Client, name: &str, mutability: ImageTagMutability) {
    ecr.create_repository()
        .repository_name(name)
        .image_tag_mutability(mutability)
        .send()
        .await
        .unwrap();
}

/// Uploads `bytes` as one part; returns the layer digest.
async fn upload(ecr: &aws_sdk_ecr::Client, repo: &str, bytes: &[u8]) -> String {
    let id = ecr
        .initiate_layer_upload()
        .repository_name(repo)
        .send()
        .await
        .unwrap()
        .upload_id
        .unwrap();
    ecr.upload_layer_part()
        .repository_name(repo)
        .upload_id(&id)
        .part_first_byte(0)
        .part_last_byte(bytes.len() as i64 - 1)
        .layer_part_blob(Blob::new(bytes))
        .send()
        .await
        .unwrap();
    ecr.complete_layer_upload()
        .repository_name(repo)
        .upload_id(&id)
        .layer_digests(sha256_digest(bytes))
        .send()
        .await
        .unwrap()
        .layer_digest
        .unwrap()
}

fn manifest(config: &str, layers: &[(&str, usize)]) -> String {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(digest, size)| {
            serde_json::json!({
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "digest": digest,
                "size": size,
            })
        })
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": config,
            "size": 2,
        },
        "layers": layers,
    })
    .to_string()
}

/// A raw HTTP/1.1 exchange; returns (status, lowercase head, body). The
/// request is written concurrently: the emulator may answer (and close)
/// before reading all of it.
async fn http(emulator: &Emulator, request: &[u8]) -> (u16, String, Vec<u8>) {
    let stream = TcpStream::connect(emulator.addr()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let request = request.to_vec();
    let sending = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut answer = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    // A reset after the answer (unread request bytes) ends the read too.
    while let Ok(n @ 1..) = reader.read(&mut buf).await {
        answer.extend_from_slice(&buf[..n]);
    }
    let _ = sending.await;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&answer[..split]).to_lowercase();
    let status = head[9..12].parse().unwrap();
    (status, head, answer[split + 4..].to_vec())
}

async fn get(emulator: &Emulator, url: &str) -> (u16, Vec<u8>) {
    let (status, _, body) = get_with(emulator, url, "").await;
    (status, body)
}

fn api_request(op: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.{op}\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A fresh emulator and an SDK client of it that does not retry.
async fn emulator_and_client() -> (Emulator, aws_sdk_ecr::Client) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let ecr = client(&emulator, 1);
    (emulator, ecr)
}

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
async fn repositories_page_with_the_sdk_paginator() {
    let (_emulator, ecr) = emulator_and_client().await;
    for i in 0..7 {
        create(&ecr, &format!("page/repo-{i}"), ImageTagMutability::Mutable).await;
    }
    let pages: Vec<_> = ecr
        .describe_repositories()
        .max_results(3)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(pages.len(), 3);
    let names: Vec<_> = pages
        .iter()
        .flat_map(|p| p.repositories())
        .map(|r| r.repository_name().unwrap().to_owned())
        .collect();
    let expected: Vec<_> = (0..7).map(|i| format!("page/repo-{i}")).collect();
    assert_eq!(names, expected);
}

const PAGED: &str = "page/images";

/// [`PAGED`] with five images, the even ones tagged `t0`, `t2`, `t4`.
async fn five_images(ecr: &aws_sdk_ecr::Client) {
    create(ecr, PAGED, ImageTagMutability::Mutable).await;
    let config = upload(ecr, PAGED, b"{}").await;
    for i in 0..5 {
        let layer = upload(ecr, PAGED, format!("layer {i}").as_bytes()).await;
        let text = manifest(&config, &[(&layer, 7)]);
        let put = ecr.put_image().repository_name(PAGED).image_manifest(text);
        let put = if i % 2 == 0 {
            put.image_tag(format!("t{i}"))
        } else {
            put
        };
        put.send().await.unwrap();
    }
}

#[tokio::test]
async fn images_page_with_the_sdk_paginators() {
    let (_emulator, ecr) = emulator_and_client().await;
    five_images(&ecr).await;
    let ids: Vec<_> = ecr
        .list_images()
        .repository_name(PAGED)
        .max_results(2)
        .filter(
            aws_sdk_ecr::types::ListImagesFilter::builder()
                .tag_status(TagStatus::Tagged)
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let tags: Vec<_> = ids.iter().map(|i| i.image_tag().unwrap()).collect();
    assert_eq!(tags, ["t0", "t2", "t4"]);
    let details: Vec<_> = ecr
        .describe_images()
        .repository_name(PAGED)
        .max_results(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(details.len(), 5);
}

#[tokio::test]
async fn bad_page_parameters_are_refused() {
    let (_emulator, ecr) = emulator_and_client().await;
    five_images(&ecr).await;
    let err = ecr
        .list_images()
        .repository_name(PAGED)
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
    let err = ecr
        .describe_images()
        .repository_name(PAGED)
        .image_ids(ImageIdentifier::builder().image_tag("t0").build())
        .max_results(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
}

#[tokio::test]
async fn authorization_tokens_last_twelve_hours() {
    let (_emulator, ecr) = emulator_and_client().await;
    let answer = ecr.get_authorization_token().send().await.unwrap();
    let data = &answer.authorization_data()[0];
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token().unwrap())
        .unwrap();
    assert!(token.starts_with(b"AWS:"));
    assert_eq!(
        data.proxy_endpoint(),
        Some("https://123456789012.dkr.ecr.us-east-1.amazonaws.com")
    );
    let expires = data.expires_at().unwrap().secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((expires - now - 12 * 3600).abs() < 60, "{expires} vs {now}");
}

#[tokio::test]
async fn faults_throttle_and_fail_then_calls_pass() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let ecr = client(&emulator, 3);
    let throttle_twice = FaultSpec {
        throttle_next: 2,
        ..Default::default()
    };
    emulator
        .set_fault("DescribeRepositories", throttle_twice)
        .unwrap();
    ecr.describe_repositories().send().await.unwrap();
    assert_eq!(emulator.calls("DescribeRepositories"), 3);

    let always_fail = FaultSpec {
        fail_all: true,
        ..Default::default()
    };
    emulator
        .set_fault("DescribeRepositories", always_fail)
        .unwrap();
    let err = ecr.describe_repositories().send().await.unwrap_err();
    assert_eq!(code(&err), "ServerException");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 500);
    assert_eq!(emulator.calls("DescribeRepositories"), 6);
    emulator.clear_faults();
    ecr.describe_repositories().send().await.unwrap();
    // The admin stats count every attempt, refused ones too.
    let stats = admin_stats(&emulator).await;
    assert_eq!(stats["calls"]["DescribeRepositories"], 7);
}

/// Latency delays the answer by at least the given time.
#[tokio::test]
async fn a_latency_fault_delays_the_answer() {
    let (emulator, ecr) = emulator_and_client().await;
    let slow = FaultSpec {
        latency: Duration::from_millis(300),
        ..Default::default()
    };
    emulator.set_fault("*", slow).unwrap();
    let started = std::time::Instant::now();
    ecr.describe_repositories().send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// PUT /_emulator/faults/ListImages (throttle once) with `auth`'s header line.
fn put_list_images_fault(auth: &str) -> String {
    let spec = r#"{"throttle_next": 1}"#;
    format!(
        "PUT /_emulator/faults/ListImages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         {auth}Content-Length: {}\r\n\r\n{spec}",
        spec.len()
    )
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// GET /_emulator/stats with the admin token: the answer's JSON.
async fn admin_stats(emulator: &Emulator) -> serde_json::Value {
    let auth = bearer(emulator.admin_token());
    let stats =
        format!("GET /_emulator/stats HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    let (status, _, body) = http(emulator, stats.as_bytes()).await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn the_admin_endpoints_refuse_a_missing_or_wrong_token() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let wrong = bearer(&format!("{}x", emulator.admin_token()));
    for refused in ["", wrong.as_str(), "Authorization: Bearer \r\n"] {
        let request = put_list_images_fault(refused);
        let (status, head, _) = http(&emulator, request.as_bytes()).await;
        assert_eq!(status, 401, "{refused:?}");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
    }
    let stats = "GET /_emulator/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(http(&emulator, stats.as_bytes()).await.0, 401);
    assert_eq!(emulator.faults().specs_snapshot().len(), 0);
}

/// The faults again, set through the admin endpoints with the admin token.
#[tokio::test]
async fn faults_set_through_the_admin_endpoints_apply_and_are_counted() {
    let (emulator, once) = emulator_and_client().await;
    let auth = bearer(emulator.admin_token());
    let request = put_list_images_fault(&auth);
    assert_eq!(http(&emulator, request.as_bytes()).await.0, 204);
    let list = || once.list_images().repository_name("a/b").send();
    assert_eq!(code(&list().await.unwrap_err()), "ThrottlingException");
    assert_eq!(
        code(&list().await.unwrap_err()),
        "RepositoryNotFoundException"
    );
    let stats = admin_stats(&emulator).await;
    assert_eq!(stats["calls"]["ListImages"], 2);
    assert_eq!(stats["total"], emulator.total_calls());
    let bad = format!(
        "PUT /_emulator/faults/NoSuchOp HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    assert_eq!(http(&emulator, bad.as_bytes()).await.0, 400);
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

#[tokio::test]
async fn oversized_bodies_are_refused_unread() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    // Declared too large: refused from the head alone.
    let head = "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonEC2ContainerRegistry_V20150921.UploadLayerPart\r\n\
                Content-Length: 40000000\r\n\r\n";
    let (status, head, _) = http(&emulator, head.as_bytes()).await;
    assert_eq!(status, 413);
    assert!(head.contains("x-amzn-requestid"), "{head}");
    // Chunked, no length: refused once the stream passes the limit.
    let mut request = b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRepositories\r\n\
                        Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..3 {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(http(&emulator, &request).await.0, 413);
    assert_eq!(emulator.calls("DescribeRepositories"), 1);
}

#[tokio::test]
async fn protocol_errors_follow_aws_json() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let (status, head, body) = http(&emulator, &api_request("NoSuchThing", "{}")).await;
    assert_eq!(status, 400);
    assert!(head.contains("x-amzn-requestid"));
    assert!(head.contains("content-type: application/x-amz-json-1.1"));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["__type"], "UnknownOperationException");
    let (status, _, body) = http(&emulator, &api_request("DescribeRepositories", "{nope")).await;
    assert_eq!(status, 400);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["__type"], "SerializationException");
    let (status, _, body) = http(
        &emulator,
        &api_request("CreateRepository", r#"{"repositoryName":"a"}"#),
    )
    .await;
    assert_eq!(status, 400);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["__type"], "InvalidParameterException");
    assert_eq!(
        body["message"],
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must have length greater than or equal to 2'"
    );
}

#[tokio::test]
async fn download_urls_expire() {
    let config = EmulatorConfig {
        download_url_ttl: Duration::from_secs(1),
        seed_demo: true,
        ..Default::default()
    };
    let emulator = start_emulator(config).await;
    let ecr = client(&emulator, 1);
    let (layer, url) = demo_layer_url(&ecr).await;
    let (status, bytes) = get(&emulator, &url).await;
    assert_eq!(status, 200);
    assert_eq!(sha256_digest(&bytes), layer);
    // Past `expires` (whole seconds, so up to 2 s away), the URL is refused.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get(&emulator, &url).await.0, 403);
}

/// The seeded `demo/hello:latest`'s first layer: its digest and a download
/// URL for it.
async fn demo_layer_url(ecr: &aws_sdk_ecr::Client) -> (String, String) {
    let image = ecr
        .batch_get_image()
        .repository_name("demo/hello")
        .image_ids(ImageIdentifier::builder().image_tag("latest").build())
        .send()
        .await
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(image.images()[0].image_manifest().unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("demo/hello")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap()
        .download_url
        .unwrap();
    (layer, url)
}

/// GET `url` with extra header lines; returns (status, lowercase head, body).
async fn get_with(emulator: &Emulator, url: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let path = url
        .strip_prefix(&emulator.url())
        .expect("a URL of the emulator");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
    http(emulator, request.as_bytes()).await
}

fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// An emulator seeded with the demo images, an SDK client, and the demo
/// layer's digest, download URL and bytes.
async fn demo_download() -> (Emulator, aws_sdk_ecr::Client, String, String, Vec<u8>) {
    let config = EmulatorConfig {
        seed_demo: true,
        ..Default::default()
    };
    let emulator = start_emulator(config).await;
    let ecr = client(&emulator, 1);
    let (layer, url) = demo_layer_url(&ecr).await;
    let (_, _, whole) = get_with(&emulator, &url, "").await;
    (emulator, ecr, layer, url, whole)
}

#[tokio::test]
async fn download_urls_serve_ranges() {
    let (emulator, _ecr, layer, url, _) = demo_download().await;
    // No Range: every byte, with its length, and ranges advertised.
    let (status, head, whole) = get_with(&emulator, &url, "").await;
    assert_eq!(status, 200);
    assert_eq!(sha256_digest(&whole), layer);
    let total = whole.len();
    assert!(total > 100, "the demo layer is a tar archive");
    assert_eq!(
        header_of(&head, "content-length"),
        Some(&*total.to_string())
    );
    assert_eq!(header_of(&head, "accept-ranges"), Some("bytes"));

    // Ranges as S3 answers them.
    let (status, head, body) = get_with(&emulator, &url, "Range: bytes=10-19\r\n").await;
    assert_eq!((status, body.as_slice()), (206, &whole[10..20]));
    let shown = format!("bytes 10-19/{total}");
    assert_eq!(header_of(&head, "content-range"), Some(shown.as_str()));
    assert_eq!(header_of(&head, "content-length"), Some("10"));
    let tail = format!("Range: bytes={}-\r\n", total - 7);
    let (status, head, body) = get_with(&emulator, &url, &tail).await;
    assert_eq!((status, body.as_slice()), (206, &whole[total - 7..]));
    let shown = format!("bytes {}-{}/{total}", total - 7, total - 1);
    assert_eq!(header_of(&head, "content-range"), Some(shown.as_str()));
    let past_end = format!("Range: bytes={}-{}\r\n", total - 1, total + 50);
    let (status, _, body) = get_with(&emulator, &url, &past_end).await;
    assert_eq!((status, body.as_slice()), (206, &whole[total - 1..]));
    let at_end = format!("Range: bytes={total}-\r\n");
    let (status, head, _) = get_with(&emulator, &url, &at_end).await;
    assert_eq!(status, 416);
    let shown = format!("bytes */{total}");
    assert_eq!(header_of(&head, "content-range"), Some(shown.as_str()));
    let (status, head, body) = get_with(&emulator, &url, "Range: bytes=9-3\r\n").await;
    assert_eq!((status, body.len()), (200, total));
    assert_eq!(header_of(&head, "content-range"), None);
}

/// Corrupted downloads: same length, exactly one byte differs.
#[tokio::test]
async fn corrupted_downloads_differ_in_one_byte() {
    let (emulator, ecr, layer, url, whole) = demo_download().await;
    let total = whole.len();
    let corrupt = FaultSpec::parse("corrupt=all").unwrap();
    emulator
        .set_fault("GetDownloadUrlForLayer", corrupt)
        .unwrap();
    let differing = |a: &[u8], b: &[u8]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    let (status, head, bad) = get_with(&emulator, &url, "").await;
    assert_eq!((status, bad.len()), (200, total));
    assert_eq!(
        header_of(&head, "content-length"),
        Some(&*total.to_string())
    );
    assert_ne!(sha256_digest(&bad), layer);
    assert_eq!(differing(&bad, &whole), 1);
    let (status, _, bad) = get_with(&emulator, &url, "Range: bytes=10-19\r\n").await;
    assert_eq!((status, bad.len()), (206, 10));
    assert_eq!(differing(&bad, &whole[10..20]), 1);
    // The operation itself still answers normally.
    ecr.get_download_url_for_layer()
        .repository_name("demo/hello")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap();
    emulator.clear_faults();
    let (_, _, good) = get_with(&emulator, &url, "").await;
    assert_eq!(sha256_digest(&good), layer);
}

#[tokio::test]
async fn a_configured_admin_token_is_required_and_never_shown() {
    let token = "configured-admin-token-0001";
    let config = EmulatorConfig {
        admin_token: Some(AdminToken::parse(token).unwrap()),
        ..Default::default()
    };
    let emulator = start_emulator(config).await;
    assert_eq!(emulator.admin_token(), token);
    assert!(!format!("{emulator:?}").contains(token));
    let delete = |auth: String| {
        format!("DELETE /_emulator/stats HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")
    };
    let (status, _, body) = http(&emulator, delete(String::new()).as_bytes()).await;
    assert_eq!(status, 401);
    assert!(!String::from_utf8_lossy(&body).contains(token));
    let auth = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(http(&emulator, delete(auth).as_bytes()).await.0, 204);
    // Another emulator's random token does not open this one.
    let other = start_emulator(EmulatorConfig::default()).await;
    assert_ne!(other.admin_token(), token);
    let auth = format!("Authorization: Bearer {}\r\n", other.admin_token());
    assert_eq!(http(&emulator, delete(auth).as_bytes()).await.0, 401);
    other.shutdown().await;
    emulator.shutdown().await;
}
