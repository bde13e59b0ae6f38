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

use super::download::{Download, download_failed};
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
        skip,
    } = download;
    let mut sent = Sent {
        tx,
        digest,
        total_size,
        skip,
        position: offset,
        first: true,
        // Only a whole layer can be checked against its digest.
        hasher: (offset == 0)
            .then(|| digest.strip_prefix("sha256:"))
            .flatten()
            .map(|hex| (hex.to_ascii_lowercase(), Sha256::new())),
    };
    let idle = inner.settings.idle_timeout;
    while let Some(data) = next_data(&mut body, idle).await? {
        if !sent.send(data).await? {
            return Ok(()); // the caller went away
        }
    }
    sent.finish().await
}

/// The body's next data, `None` at its end (trailers are skipped): an
/// error when the download URL sends nothing for `idle` or breaks off.
async fn next_data(
    body: &mut hyper::body::Incoming,
    idle: std::time::Duration,
) -> Result<Option<Bytes>, Error> {
    loop {
        let frame = match timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(download_failed(
                    "the download url sent nothing for too long",
                ));
            }
            Ok(None) => return Ok(None),
            Ok(Some(Err(_))) => return Err(download_failed("the download broke off")),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            return Ok(Some(data));
        }
        // Trailers: nothing to forward.
    }
}

/// A pull under way: what the caller has been sent, and the hash so far.
struct Sent<'a> {
    tx: &'a mpsc::Sender<Result<pb::PullLayerResponse, Status>>,
    digest: &'a str,
    total_size: u64,
    /// Bytes at the start of the body still to drop (they come before the
    /// requested offset: the server ignored the range).
    skip: u64,
    /// The offset of the next byte sent.
    position: u64,
    /// Nothing sent yet: the first message tells the layer's size.
    first: bool,
    /// The digest's hex and the hash of the bytes so far (pulls from 0).
    hasher: Option<(String, Sha256)>,
}

impl Sent<'_> {
    /// Hashes `data` and sends it in chunks of at most [`CHUNK_BYTES`],
    /// dropping what comes before the offset; `false` once the caller is
    /// gone. More bytes than the layer's size is DATA_LOSS.
    async fn send(&mut self, mut data: Bytes) -> Result<bool, Error> {
        if self.skip > 0 {
            // Only a pull from an offset skips bytes, and only a pull from 0
            // is hashed: skipped bytes are never part of a checked digest.
            debug_assert!(self.hasher.is_none());
            let dropped = self.skip.min(data.len() as u64);
            data.advance(dropped as usize);
            self.skip -= dropped;
        }
        let total_size = self.total_size;
        while !data.is_empty() {
            let chunk: Bytes = data.split_to(CHUNK_BYTES.min(data.len()));
            if self.position + chunk.len() as u64 > total_size {
                return Err(data_loss(format!(
                    "the layer's download sent more than its {total_size} bytes"
                )));
            }
            if let Some((_, hasher)) = &mut self.hasher {
                hasher.update(&chunk);
            }
            let message = pb::PullLayerResponse {
                total_size: self.first.then_some(total_size as i64),
                offset: self.position as i64,
                chunk: chunk.clone(),
            };
            self.position += chunk.len() as u64;
            self.first = false;
            if self.tx.send(Ok(message)).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// At the body's end: DATA_LOSS unless the bytes sent reach the layer's
    /// size and (from offset 0) hash to its digest; an empty layer still
    /// gets one message, telling its size.
    async fn finish(self) -> Result<(), Error> {
        let Self {
            tx,
            digest,
            total_size,
            position,
            first,
            hasher,
            ..
        } = self;
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
}

fn data_loss(message: String) -> Error {
    Error::facade(Code::DataLoss, error::REASON_LAYER_CORRUPT, message)
}
