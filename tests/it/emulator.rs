//! The embedded ECR emulator driven by aws-sdk-ecr over real HTTP, as any
//! SDK user would drive it through an endpoint override; raw HTTP where the
//! SDK cannot go (download URLs, admin endpoints, malformed requests).
//! This file holds the helpers its modules share: an SDK client, uploads,
//! manifests and raw HTTP.

mod downloads;
mod faults;
mod images;
mod listings;
mod protocol;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::primitives::Blob;
use aws_sdk_ecr::types::ImageTagMutability;
use aws_types::region::Region;
use ecr_facade::emulator::{Emulator, EmulatorConfig};

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

/// A fresh emulator and an SDK client of it that does not retry.
async fn emulator_and_client() -> (Emulator, aws_sdk_ecr::Client) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let ecr = client(&emulator, 1);
    (emulator, ecr)
}

/// GET `url` with extra header lines; returns (status, lowercase head, body).
async fn get_with(emulator: &Emulator, url: &str, extra: &str) -> (u16, String, Vec<u8>) {
    let path = url
        .strip_prefix(&emulator.url())
        .expect("a URL of the emulator");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
    http(emulator, request.as_bytes()).await
}
