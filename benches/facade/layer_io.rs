//! The four ways scenario 6 moves a layer: pushed and pulled directly
//! (aws-sdk-ecr's upload calls; a plain HTTP GET of the download URL) and
//! through the facade (PushLayer, PullLayer), plus the untimed setup around
//! them (repositories, the image that makes a layer downloadable).

use std::net::SocketAddr;

use anyhow::{Context as _, ensure};
use aws_smithy_types::Blob;
use bytes::Bytes;
use ecr_facade::pb;
use ecr_facade::pb::push_layer_request::Message as Send;
use ecr_facade::pb::push_layer_response::Message as Received;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

use crate::stack;

/// Part size of the direct push: ECR's (and the emulator's) advised 10 MiB,
/// which the facade uses as well.
pub const PART_BYTES: usize = 10 * 1024 * 1024;

/// A layer in memory with its digest.
#[derive(Clone)]
pub struct Layer {
    pub bytes: Bytes,
    pub digest: String,
}

impl Layer {
    /// `len` pseudo-random (incompressible) bytes from `seed`.
    pub fn generate(len: usize, seed: u64) -> Self {
        let mut state = seed.wrapping_mul(6364136223846793005) | 1;
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            bytes.extend_from_slice(&(state ^ (state >> 29)).to_le_bytes());
        }
        bytes.truncate(len);
        Self::of(Bytes::from(bytes))
    }

    fn of(bytes: Bytes) -> Self {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        Self { bytes, digest }
    }
}

/// The config blob of the image that references a layer.
fn config() -> Layer {
    Layer::of(Bytes::from_static(
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}"#,
    ))
}

/// Creates `repository` upstream.
pub async fn create(sdk: &aws_sdk_ecr::Client, repository: &str) -> anyhow::Result<()> {
    sdk.create_repository()
        .repository_name(repository)
        .send()
        .await
        .with_context(|| format!("creating {repository}"))?;
    Ok(())
}

/// Deletes `repository` and everything in it (the emulator frees its bytes).
pub async fn delete(sdk: &aws_sdk_ecr::Client, repository: &str) -> anyhow::Result<()> {
    sdk.delete_repository()
        .repository_name(repository)
        .force(true)
        .send()
        .await
        .with_context(|| format!("deleting {repository}"))?;
    Ok(())
}

/// Makes `layer` (already pushed) downloadable: ECR serves only layers an
/// image references, so this pushes a config and puts an image naming both.
pub async fn publish(
    sdk: &aws_sdk_ecr::Client,
    repository: &str,
    layer: &Layer,
) -> anyhow::Result<()> {
    let config = config();
    push_direct(sdk, repository, &config).await?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": config.bytes.len(), "digest": config.digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                    "size": layer.bytes.len(), "digest": layer.digest}],
    });
    sdk.put_image()
        .repository_name(repository)
        .image_manifest(manifest.to_string())
        .image_tag("bench")
        .send()
        .await
        .with_context(|| format!("putting the image into {repository}"))?;
    Ok(())
}

/// The direct push: InitiateLayerUpload, UploadLayerPart for each 10 MiB
/// part in turn, CompleteLayerUpload with the known digest.
pub async fn push_direct(
    sdk: &aws_sdk_ecr::Client,
    repository: &str,
    layer: &Layer,
) -> anyhow::Result<()> {
    let upload = sdk
        .initiate_layer_upload()
        .repository_name(repository)
        .send()
        .await
        .context("InitiateLayerUpload")?;
    let upload_id = upload.upload_id().context("no upload id")?;
    let mut first = 0;
    while first < layer.bytes.len() {
        let end = (first + PART_BYTES).min(layer.bytes.len());
        sdk.upload_layer_part()
            .repository_name(repository)
            .upload_id(upload_id)
            .part_first_byte(first as i64)
            .part_last_byte(end as i64 - 1)
            .layer_part_blob(Blob::from_maybe_shared(layer.bytes.slice(first..end)))
            .send()
            .await
            .context("UploadLayerPart")?;
        first = end;
    }
    let done = sdk
        .complete_layer_upload()
        .repository_name(repository)
        .upload_id(upload_id)
        .layer_digests(&layer.digest)
        .send()
        .await
        .context("CompleteLayerUpload")?;
    ensure!(done.layer_digest() == Some(layer.digest.as_str()));
    Ok(())
}

/// The direct pull: GetDownloadUrlForLayer, then one GET of the URL with
/// hyper's plain HTTP/1.1 client, the body counted (and hashed when `check`).
pub async fn pull_direct(
    sdk: &aws_sdk_ecr::Client,
    repository: &str,
    layer: &Layer,
    check: bool,
) -> anyhow::Result<()> {
    let answer = sdk
        .get_download_url_for_layer()
        .repository_name(repository)
        .layer_digest(&layer.digest)
        .send()
        .await
        .context("GetDownloadUrlForLayer")?;
    let url = answer.download_url().context("no download url")?;
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let response = client.get(url.parse()?).await.context("GET download url")?;
    ensure!(
        response.status().is_success(),
        "download url answered {}",
        response.status()
    );
    let mut body = response.into_body();
    let mut received = 0usize;
    let mut hasher = check.then(Sha256::new);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.context("download body")?.into_data() {
            received += data.len();
            if let Some(hasher) = &mut hasher {
                hasher.update(&data);
            }
        }
    }
    finish_pull(layer, received, hasher)
}

fn finish_pull(layer: &Layer, received: usize, hasher: Option<Sha256>) -> anyhow::Result<()> {
    ensure!(
        received == layer.bytes.len(),
        "pulled {received} bytes of {}",
        layer.bytes.len()
    );
    if let Some(hasher) = hasher {
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        ensure!(digest == layer.digest, "pulled bytes hash to {digest}");
    }
    Ok(())
}

/// A facade client on a connection of its own.
pub async fn facade_client(
    addr: SocketAddr,
) -> anyhow::Result<pb::ecr_service_client::EcrServiceClient<tonic::transport::Channel>> {
    let channel = stack::connections(addr, 1).await?.remove(0);
    Ok(stack::client(channel))
}

/// The push through the facade: a PushLayer stream of the header (with
/// digest and size, as the README's example sends) and `chunk`-byte chunks
/// (slices of the layer, not copies); every answer is read.
pub async fn push_facade(
    addr: SocketAddr,
    repository: &str,
    layer: &Layer,
    chunk: usize,
) -> anyhow::Result<()> {
    let mut client = facade_client(addr).await?;
    let header = pb::PushLayerHeader {
        repository_name: repository.to_owned(),
        expected_digest: Some(layer.digest.clone()),
        total_size: Some(layer.bytes.len() as i64),
        ..Default::default()
    };
    let bytes = layer.bytes.clone();
    let chunks = (0..bytes.len().div_ceil(chunk)).map(move |i| {
        let end = ((i + 1) * chunk).min(bytes.len());
        pb::PushLayerRequest {
            message: Some(Send::Chunk(bytes.slice(i * chunk..end))),
        }
    });
    let messages = std::iter::once(pb::PushLayerRequest {
        message: Some(Send::Header(header)),
    })
    .chain(chunks);
    let mut answers = client
        .push_layer(tokio_stream::iter(messages))
        .await?
        .into_inner();
    let mut result = None;
    while let Some(answer) = answers.message().await? {
        if let Some(Received::Result(r)) = answer.message {
            result = Some(r);
        }
    }
    let result = result.context("PushLayer ended without a result")?;
    ensure!(
        result.layer_digest == layer.digest && !result.already_present,
        "PushLayer answered {result:?}"
    );
    Ok(())
}

/// The pull through the facade: one PullLayer stream read to its end, the
/// offsets checked, the bytes counted (and hashed when `check`; the facade
/// checks the digest itself either way).
pub async fn pull_facade(
    addr: SocketAddr,
    repository: &str,
    layer: &Layer,
    check: bool,
) -> anyhow::Result<()> {
    let mut client = facade_client(addr).await?;
    let mut stream = client
        .pull_layer(pb::PullLayerRequest {
            repository_name: repository.to_owned(),
            layer_digest: layer.digest.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut received = 0usize;
    let mut hasher = check.then(Sha256::new);
    while let Some(message) = stream.message().await? {
        ensure!(
            message.offset == received as i64,
            "PullLayer message at offset {} after {received} bytes",
            message.offset
        );
        received += message.chunk.len();
        if let Some(hasher) = &mut hasher {
            hasher.update(&message.chunk);
        }
    }
    finish_pull(layer, received, hasher)
}
