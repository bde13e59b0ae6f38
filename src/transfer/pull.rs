//! PullLayer: a layer's bytes streamed to the caller.
//!
//! The facade asks ECR for the layer's download URL, fetches it (from the
//! requested offset with an HTTP Range), and forwards the body in chunks of
//! at most [`CHUNK_BYTES`] through a bounded channel: the next bytes are read
//! from the URL only once the caller took the ones before, so a pull holds
//! about one chunk (plus the HTTP/2 and TCP windows) however large the layer.
//! A pull from offset 0 hashes every byte and ends with DATA_LOSS, never OK,
//! when the bytes do not hash to the digest or fall short of the size.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};
use tonic::{Code, Status};

use super::download::Download;
use super::{Inner, PullStream, Transfer};
use crate::convert::requests;
use crate::error::{self, Error, UpstreamError};
use crate::model::Action;
use crate::pb;
use crate::producer::produced;
use crate::upstream::observed;

/// Most bytes in one PullLayer message.
pub const CHUNK_BYTES: usize = 1024 * 1024;

impl Transfer {
    /// Starts the pull of `request` (already validated and authorized).
    pub async fn pull(
        &self,
        request: pb::PullLayerRequest,
        deadline: Instant,
    ) -> Result<PullStream, Status> {
        let offset = request.offset.unwrap_or(0).max(0) as u64;
        let digest = request.layer_digest.clone();
        let inner = Arc::clone(&self.inner);
        let download = timeout_at(deadline, open(&inner, request, offset))
            .await
            .map_err(|_| deadline_passed())??;
        Ok(produced(2, "transfer", move |tx| async move {
            match timeout_at(deadline, forward(&inner, download, offset, &digest, &tx)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(deadline_passed()),
            }
        }))
    }
}

fn deadline_passed() -> Error {
    Error::deadline_exceeded("the pull's deadline passed; resume it from the last offset received")
}

/// Gets the layer's download URL from ECR and opens it at `offset`.
async fn open(
    inner: &Inner,
    request: pb::PullLayerRequest,
    offset: u64,
) -> Result<Download, Error> {
    let call = Box::pin(
        requests::get_download_url_for_layer(
            &inner.client,
            pb::GetDownloadUrlForLayerRequest {
                registry_id: request.registry_id,
                repository_name: request.repository_name,
                layer_digest: request.layer_digest,
            },
        )
        .send(),
    );
    let output = observed(&inner.metrics, Action::GetDownloadUrlForLayer.name(), call).await?;
    let Some(url) = output.download_url else {
        return Err(UpstreamError::bad_response(Action::GetDownloadUrlForLayer.name()).into());
    };
    inner.http.get(&url, offset).await
}

/// Streams the body to the caller, checking size and (from offset 0) digest.
async fn forward(
    inner: &Inner,
    download: Download,
    offset: u64,
    digest: &str,
    tx: &mpsc::Sender<Result<pb::PullLayerResponse, Status>>,
) -> Result<(), Error> {
    let Download {
        mut body,
        total_size,
        mut skip,
    } = download;
    // Only a whole layer can be checked against its digest.
    let mut hasher = (offset == 0)
        .then(|| digest.strip_prefix("sha256:"))
        .flatten()
        .map(|hex| (hex.to_ascii_lowercase(), Sha256::new()));
    let mut position = offset;
    let mut first = true;
    let idle = inner.settings.idle_timeout;
    loop {
        let frame = match timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(download_failed(
                    "the download url sent nothing for too long",
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(download_failed("the download broke off")),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(mut data) = frame.into_data() else {
            continue; // trailers: nothing to forward
        };
        if skip > 0 {
            let dropped = skip.min(data.len() as u64);
            if let Some((_, hasher)) = &mut hasher {
                hasher.update(&data[..dropped as usize]);
            }
            data.advance(dropped as usize);
            skip -= dropped;
        }
        while !data.is_empty() {
            let chunk: Bytes = data.split_to(CHUNK_BYTES.min(data.len()));
            if position + chunk.len() as u64 > total_size {
                return Err(data_loss(format!(
                    "the layer's download sent more than its {total_size} bytes"
                )));
            }
            if let Some((_, hasher)) = &mut hasher {
                hasher.update(&chunk);
            }
            let message = pb::PullLayerResponse {
                total_size: first.then_some(total_size as i64),
                offset: position as i64,
                chunk: chunk.clone(),
            };
            position += chunk.len() as u64;
            first = false;
            if tx.send(Ok(message)).await.is_err() {
                return Ok(()); // the caller went away
            }
        }
    }
    if position != total_size {
        return Err(data_loss(format!(
            "the layer's download ended at byte {position} of {total_size}"
        )));
    }
    if let Some((expected, hasher)) = hasher {
        let computed = hex::encode(hasher.finalize());
        if computed != expected {
            return Err(data_loss(format!(
                "the layer's bytes hash to sha256:{computed}, not to its digest {digest}"
            )));
        }
    }
    if first {
        // An empty layer still tells its size.
        let _ = tx
            .send(Ok(pb::PullLayerResponse {
                total_size: Some(total_size as i64),
                offset: position as i64,
                chunk: Bytes::new(),
            }))
            .await;
    }
    Ok(())
}

fn download_failed(message: &str) -> Error {
    Error::facade(Code::Unavailable, error::REASON_DOWNLOAD_FAILED, message)
}

fn data_loss(message: String) -> Error {
    Error::facade(Code::DataLoss, error::REASON_LAYER_CORRUPT, message)
}
