//! Images through the facade: pushing layers (PushLayer in chunks), pulling
//! them back (PullLayer, checking the stream's framing), manifests and
//! layer bytes to push.

use bytes::Bytes;
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use ecr_facade::pb::push_layer_request::Message as Send;
use ecr_facade::pb::push_layer_response::Message as Received;
use tonic::Status;
use tonic::transport::Channel;

use super::sha256_digest;

pub const MIB: usize = 1024 * 1024;

/// What a push answered: its progress messages and its result.
#[derive(Debug, Default)]
pub struct Pushed {
    pub progress: Vec<pb::PushLayerProgress>,
    pub result: Option<pb::PushLayerResult>,
}

pub fn header(repository: &str) -> pb::PushLayerHeader {
    pb::PushLayerHeader {
        repository_name: repository.to_owned(),
        ..Default::default()
    }
}

pub fn messages(
    header: pb::PushLayerHeader,
    bytes: &[u8],
    chunk: usize,
) -> Vec<pb::PushLayerRequest> {
    let mut messages = vec![pb::PushLayerRequest {
        message: Some(Send::Header(header)),
    }];
    messages.extend(bytes.chunks(chunk.max(1)).map(|c| pb::PushLayerRequest {
        message: Some(Send::Chunk(Bytes::copy_from_slice(c))),
    }));
    messages
}

/// Sends `messages` as one push and collects every answer.
pub async fn push_messages(
    client: &mut EcrServiceClient<Channel>,
    messages: Vec<pb::PushLayerRequest>,
) -> Result<Pushed, Status> {
    let mut answers = client
        .push_layer(tokio_stream::iter(messages))
        .await?
        .into_inner();
    let mut pushed = Pushed::default();
    while let Some(answer) = answers.message().await? {
        match answer.message {
            Some(Received::Progress(progress)) => pushed.progress.push(progress),
            Some(Received::Result(result)) => pushed.result = Some(result),
            None => panic!("an empty PushLayer answer"),
        }
    }
    Ok(pushed)
}

/// Pushes `bytes` into `repository` in chunks of `chunk` bytes.
pub async fn push(
    client: &mut EcrServiceClient<Channel>,
    repository: &str,
    bytes: &[u8],
    chunk: usize,
) -> pb::PushLayerResult {
    push_messages(client, messages(header(repository), bytes, chunk))
        .await
        .expect("push")
        .result
        .expect("a result")
}

/// Opens a push whose chunks the test sends as it goes: the sender (its
/// header already sent) and the stream of answers.
pub async fn open_push(
    client: &mut EcrServiceClient<Channel>,
    header: pb::PushLayerHeader,
) -> (
    tokio::sync::mpsc::Sender<pb::PushLayerRequest>,
    tonic::Streaming<pb::PushLayerResponse>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::PushLayerRequest {
        message: Some(Send::Header(header)),
    })
    .await
    .unwrap();
    let answers = client
        .push_layer(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    (tx, answers)
}

/// Pulls a whole layer (from `offset`), checking the stream's framing.
pub async fn pull(
    client: &mut EcrServiceClient<Channel>,
    repository: &str,
    digest: &str,
    offset: Option<i64>,
) -> Result<(i64, Vec<u8>), Status> {
    let mut stream = client
        .pull_layer(pb::PullLayerRequest {
            repository_name: repository.to_owned(),
            layer_digest: digest.to_owned(),
            offset,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut total = None;
    let mut bytes = Vec::new();
    let start = offset.unwrap_or(0);
    while let Some(message) = stream.message().await? {
        if total.is_none() {
            total = Some(message.total_size.expect("the first message has the size"));
        } else {
            assert_eq!(
                message.total_size, None,
                "only the first message has the size"
            );
        }
        assert_eq!(message.offset, start + bytes.len() as i64);
        assert!(message.chunk.len() <= MIB);
        bytes.extend_from_slice(&message.chunk);
    }
    Ok((total.expect("at least one message"), bytes))
}

/// A deterministic pseudo-random layer of `len` bytes.
pub fn layer_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            (state >> 56) as u8
        })
        .collect()
}

/// A tar archive holding one file (ustar format), as an image layer is.
pub fn tar_layer(name: &str, contents: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    header[124..135].copy_from_slice(format!("{:011o}", contents.len()).as_bytes());
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..155].copy_from_slice(format!("{checksum:06o}\0").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(contents);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    tar
}

/// A Docker v2 schema 2 manifest for one config and one layer.
pub fn manifest(config: &[u8], layer: &[u8]) -> String {
    manifest_of(config, &[layer])
}

pub fn manifest_of(config: &[u8], layers: &[&[u8]]) -> String {
    let layers: Vec<_> = layers
        .iter()
        .map(|layer| {
            serde_json::json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                               "size": layer.len(), "digest": sha256_digest(layer)})
        })
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": config.len(), "digest": sha256_digest(config)},
        "layers": layers,
    })
    .to_string()
}

/// Makes already pushed `layers` downloadable: ECR serves only layers that
/// some image references, so this pushes a config and an image naming them.
pub async fn publish(client: &mut EcrServiceClient<Channel>, repository: &str, layers: &[&[u8]]) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    push(client, repository, config, MIB).await;
    put_image(client, repository, manifest_of(config, layers), None).await;
}

/// PutImage of `manifest` (tagged `tag`, if given), which must succeed: the
/// image ECR answers.
pub async fn put_image(
    client: &mut EcrServiceClient<Channel>,
    repository: &str,
    manifest: String,
    tag: Option<&str>,
) -> pb::Image {
    client
        .put_image(pb::PutImageRequest {
            repository_name: repository.to_owned(),
            image_manifest: manifest,
            image_tag: tag.map(str::to_owned),
            ..Default::default()
        })
        .await
        .expect("put image")
        .into_inner()
        .image
        .expect("image")
}

pub fn by_tag(tag: &str) -> pb::ImageIdentifier {
    pb::ImageIdentifier {
        image_tag: Some(tag.to_owned()),
        image_digest: None,
    }
}

/// Pushes a one-layer image into `repository` through the facade (PushLayer
/// for its layer and config, PutImage) and returns (layer digest, image
/// digest).
pub async fn push_image(
    client: &mut EcrServiceClient<Channel>,
    repository: &str,
    tag: &str,
) -> (String, String) {
    let layer = format!("layer of {repository}:{tag}").into_bytes();
    let config = b"{}";
    let layer_digest = push(client, repository, &layer, 1024).await.layer_digest;
    push(client, repository, config, 1024).await;
    let image = put_image(client, repository, manifest(config, &layer), Some(tag)).await;
    let image_digest = image
        .image_id
        .and_then(|id| id.image_digest)
        .expect("digest");
    (layer_digest, image_digest)
}
