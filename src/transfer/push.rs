//! PushLayer: one layer uploaded over one bidirectional stream.
//!
//! The caller sends a header, then chunks of any size, then half-closes.
//! The facade
//! 1. skips the upload when the header's expected digest is already in the
//!    repository (BatchCheckLayerAvailability; no bytes need be sent);
//! 2. starts an upload (InitiateLayerUpload) when the first bytes arrive —
//!    or resumes one from its checkpoint at once — and reports it;
//! 3. cuts the bytes into parts of ECR's part size and uploads them in order,
//!    one at a time, reading the caller's next chunk only once the part
//!    before is accepted (at most one part in memory per push); after each
//!    part it hashes the part's bytes, records a checkpoint and reports the
//!    committed size;
//! 4. on half-close uploads the last part, checks the size and digest the
//!    header announced (a mismatch commits nothing), completes the upload
//!    with the digest it computed and reports the result.

use std::sync::Arc;

use aws_sdk_ecr::types::LayerAvailability;
use aws_smithy_types::Blob;
use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};
use tonic::{Code, Status, Streaming};

use super::resume::Checkpoint;
use super::{Inner, PUSH_RETRY_DELAY, PushStream, Transfer};
use crate::convert::requests;
use crate::error::{self, Error, UpstreamError};
use crate::model::{Action, LAYER_PART_MAX_BYTES};
use crate::pb;
use crate::pb::push_layer_request::Message as Incoming;
use crate::pb::push_layer_response::Message as Outgoing;
use crate::producer::produced;
use crate::upstream::observed;

/// Smallest part the facade uploads (ECR refuses to complete an upload with
/// an earlier part under 5 MiB), whatever part size ECR announces.
const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// Reads the first message of a push, which must be its header, waiting at
/// most `idle` for it.
pub async fn read_header(
    incoming: &mut Streaming<pb::PushLayerRequest>,
    idle: std::time::Duration,
) -> Result<pb::PushLayerHeader, Status> {
    let first = timeout(idle, incoming.message())
        .await
        .map_err(|_| caller_idle())??;
    match first.and_then(|m| m.message) {
        Some(Incoming::Header(header)) => Ok(header),
        Some(Incoming::Chunk(_)) => Err(Error::invalid_field(
            "header",
            "must be the first message, before any chunk",
        )
        .into()),
        None => Err(Error::invalid_field("header", "is required: the stream had no header").into()),
    }
}

fn caller_idle() -> Error {
    Error::facade(
        Code::DeadlineExceeded,
        error::REASON_CALLER_IDLE,
        "the caller sent nothing for too long; the transfer was abandoned",
    )
}

impl Transfer {
    /// Starts the push described by `header` (already validated and
    /// authorized) over the rest of `incoming`.
    pub fn push(
        &self,
        header: pb::PushLayerHeader,
        incoming: Streaming<pb::PushLayerRequest>,
        deadline: Instant,
    ) -> Result<PushStream, Status> {
        let limit = self.inner.settings.max_concurrent_pushes;
        let permit = Arc::clone(&self.inner.pushes)
            .try_acquire_owned()
            .map_err(|_| {
                Error::overloaded(
                    format!("the facade is serving its limit of {limit} concurrent pushes; retry with backoff"),
                    PUSH_RETRY_DELAY,
                )
            })?;
        let inner = Arc::clone(&self.inner);
        Ok(produced(2, "transfer", move |tx| async move {
            let _permit = permit;
            let push = Push {
                inner,
                tx,
                registry_id: header.registry_id,
                repository_name: header.repository_name,
                expected_digest: header.expected_digest,
                total_size: header.total_size.map(|size| size as u64),
            };
            match timeout_at(deadline, push.run(header.upload_id, incoming)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Error::deadline_exceeded(
                    "the push's deadline passed; resume it with its upload id",
                )),
            }
        }))
    }
}

/// An upload under way.
struct Upload {
    id: String,
    part_size: usize,
    committed: u64,
    hasher: Sha256,
}

/// One push: where it goes and what its header promised.
struct Push {
    inner: Arc<Inner>,
    tx: mpsc::Sender<Result<pb::PushLayerResponse, Status>>,
    registry_id: Option<String>,
    repository_name: String,
    expected_digest: Option<String>,
    total_size: Option<u64>,
}

/// Why a push stopped early.
enum Stop {
    /// The caller went away: nothing more to say to it.
    Gone,
    /// The push failed with this error.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(err: Error) -> Self {
        Stop::Failed(err)
    }
}

impl From<UpstreamError> for Stop {
    fn from(err: UpstreamError) -> Self {
        Stop::Failed(err.into())
    }
}

impl Push {
    async fn run(
        self,
        resume: Option<String>,
        incoming: Streaming<pb::PushLayerRequest>,
    ) -> Result<(), Error> {
        match self.steps(resume, incoming).await {
            Ok(()) | Err(Stop::Gone) => Ok(()),
            Err(Stop::Failed(err)) => Err(err),
        }
    }

    async fn steps(
        &self,
        resume: Option<String>,
        mut incoming: Streaming<pb::PushLayerRequest>,
    ) -> Result<(), Stop> {
        // A resumed push reports at once where the caller must go on from;
        // a new one starts its upload with its first bytes, so a stream that
        // sends nothing valid never opens an upload upstream.
        let mut upload = match resume {
            Some(upload_id) => {
                let upload = self.resume(upload_id)?;
                self.progress(&upload).await?;
                Some(upload)
            }
            None => {
                if let Some(expected) = self.expected_digest.clone()
                    && self.present(&expected).await?
                {
                    return self
                        .send(Outgoing::Result(pb::PushLayerResult {
                            layer_digest: expected,
                            size: 0,
                            already_present: true,
                        }))
                        .await;
                }
                None
            }
        };
        let mut pending = BytesMut::new();
        let mut received = upload.as_ref().map_or(0, |u| u.committed);
        let idle = self.inner.settings.idle_timeout;
        loop {
            let message = match timeout(idle, incoming.message()).await {
                Err(_) => return Err(caller_idle().into()),
                Ok(Err(status)) => return Err(caller_broke(&status).into()),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(message))) => message,
            };
            let chunk = match message.message {
                Some(Incoming::Chunk(chunk)) => chunk,
                Some(Incoming::Header(_)) => {
                    return Err(Error::invalid_field(
                        "header",
                        "must be sent once, as the first message",
                    )
                    .into());
                }
                None => {
                    return Err(Error::invalid_field(
                        "message",
                        "is required: a header or a chunk",
                    )
                    .into());
                }
            };
            received += chunk.len() as u64;
            if let Some(total) = self.total_size
                && received > total
            {
                return Err(Error::invalid_field(
                    "header.total_size",
                    format!("the chunks sent exceed it ({total} bytes); nothing was committed"),
                )
                .into());
            }
            let upload = match &mut upload {
                Some(upload) => upload,
                None => upload.insert(self.start().await?),
            };
            self.take(upload, &mut pending, chunk).await?;
        }
        if let Some(total) = self.total_size
            && received != total
        {
            return Err(Error::invalid_field(
                "header.total_size",
                format!(
                    "the chunks sent add up to {received} bytes, not {total}; nothing was committed"
                ),
            )
            .into());
        }
        let mut upload = match upload {
            Some(upload) => upload,
            // No bytes at all: ECR decides what an empty layer is worth.
            None => self.start().await?,
        };
        if !pending.is_empty() {
            self.upload_part(&mut upload, std::mem::take(&mut pending).freeze())
                .await?;
        }
        self.finish(upload, received).await
    }

    /// Checks the digest, completes the upload and reports the result.
    async fn finish(&self, upload: Upload, size: u64) -> Result<(), Stop> {
        let digest = format!("sha256:{}", hex::encode(upload.hasher.finalize()));
        self.inner.resumable.forget(&upload.id);
        if let Some(expected) = &self.expected_digest
            && *expected != digest
        {
            return Err(Error::invalid_field(
                "header.expected_digest",
                format!("the bytes sent hash to {digest}; nothing was committed"),
            )
            .into());
        }
        let call = Box::pin(
            requests::complete_layer_upload(
                &self.inner.client,
                pb::CompleteLayerUploadRequest {
                    registry_id: self.registry_id.clone(),
                    repository_name: self.repository_name.clone(),
                    upload_id: upload.id.clone(),
                    layer_digests: vec![digest.clone()],
                },
            )
            .send(),
        );
        let already_present = match observed(
            &self.inner.metrics,
            Action::CompleteLayerUpload.name(),
            call,
        )
        .await
        {
            Ok(_) => false,
            // Another push of the same layer won the race: the layer is there.
            Err(err) if err.reason() == "LayerAlreadyExistsException" => true,
            Err(err) => return Err(err.into()),
        };
        self.send(Outgoing::Result(pb::PushLayerResult {
            layer_digest: digest,
            size: size as i64,
            already_present,
        }))
        .await
    }

    /// Adds `chunk` to the part being filled, uploading every part it
    /// completes; a chunk that starts a part and holds a whole one is
    /// uploaded without a copy.
    async fn take(
        &self,
        upload: &mut Upload,
        pending: &mut BytesMut,
        mut chunk: Bytes,
    ) -> Result<(), Stop> {
        while !chunk.is_empty() {
            if pending.is_empty() && chunk.len() >= upload.part_size {
                let part = chunk.split_to(upload.part_size);
                self.upload_part(upload, part).await?;
                continue;
            }
            if pending.capacity() == 0 {
                // One allocation of a part's size, not growth by doubling.
                pending.reserve(upload.part_size);
            }
            let room = upload.part_size - pending.len();
            pending.extend_from_slice(&chunk.split_to(room.min(chunk.len())));
            if pending.len() == upload.part_size {
                // Taken whole, so the buffer keeps no share of the part
                // while the SDK holds it.
                self.upload_part(upload, std::mem::take(pending).freeze())
                    .await?;
            }
        }
        Ok(())
    }

    /// Uploads the next part; on success adopts its hash, records the
    /// checkpoint and reports progress. An upstream failure ends the push
    /// (the caller can resume from the last checkpoint). The part is hashed
    /// before the call, into a copy adopted only once ECR accepted it, so
    /// that nothing but the SDK holds the part while it is uploaded (the SDK
    /// drops it once serialised).
    async fn upload_part(&self, upload: &mut Upload, part: Bytes) -> Result<(), Stop> {
        let first = upload.committed;
        let last = first + part.len() as u64 - 1;
        let mut hashed = upload.hasher.clone();
        hashed.update(&part);
        let call = Box::pin(
            self.inner
                .client
                .upload_layer_part()
                .set_registry_id(self.registry_id.clone())
                .repository_name(&self.repository_name)
                .upload_id(&upload.id)
                .part_first_byte(first as i64)
                .part_last_byte(last as i64)
                .layer_part_blob(Blob::from_maybe_shared(part))
                .send(),
        );
        observed(&self.inner.metrics, Action::UploadLayerPart.name(), call).await?;
        upload.hasher = hashed;
        upload.committed = last + 1;
        self.inner.resumable.record(
            &upload.id,
            Checkpoint {
                registry_id: self.registry_id.clone(),
                repository_name: self.repository_name.clone(),
                part_size: upload.part_size,
                committed: upload.committed,
                hasher: upload.hasher.clone(),
            },
        );
        self.progress(upload).await
    }

    async fn progress(&self, upload: &Upload) -> Result<(), Stop> {
        self.send(Outgoing::Progress(pb::PushLayerProgress {
            upload_id: upload.id.clone(),
            part_size: upload.part_size as i64,
            committed_size: upload.committed as i64,
        }))
        .await
    }

    async fn send(&self, message: Outgoing) -> Result<(), Stop> {
        let response = pb::PushLayerResponse {
            message: Some(message),
        };
        self.tx.send(Ok(response)).await.map_err(|_| Stop::Gone)
    }

    /// Whether the repository already holds the layer `digest`.
    async fn present(&self, digest: &str) -> Result<bool, Error> {
        let call = Box::pin(
            requests::batch_check_layer_availability(
                &self.inner.client,
                self.registry_id.clone(),
                self.repository_name.clone(),
                vec![digest.to_owned()],
            )
            .send(),
        );
        let output = observed(
            &self.inner.metrics,
            Action::BatchCheckLayerAvailability.name(),
            call,
        )
        .await?;
        Ok(output.layers().iter().any(|layer| {
            layer.layer_digest() == Some(digest)
                && layer.layer_availability() == Some(&LayerAvailability::Available)
        }))
    }

    /// Initiates the upload and reports it.
    async fn start(&self) -> Result<Upload, Stop> {
        let upload = self.initiate().await?;
        self.progress(&upload).await?;
        Ok(upload)
    }

    async fn initiate(&self) -> Result<Upload, Error> {
        let call = Box::pin(
            requests::initiate_layer_upload(
                &self.inner.client,
                pb::InitiateLayerUploadRequest {
                    registry_id: self.registry_id.clone(),
                    repository_name: self.repository_name.clone(),
                },
            )
            .send(),
        );
        let output = observed(
            &self.inner.metrics,
            Action::InitiateLayerUpload.name(),
            call,
        )
        .await?;
        let Some(id) = output.upload_id else {
            return Err(UpstreamError::bad_response(Action::InitiateLayerUpload.name()).into());
        };
        let announced = output.part_size.unwrap_or(0).max(0) as usize;
        Ok(Upload {
            id,
            part_size: announced.clamp(MIN_PART_BYTES, LAYER_PART_MAX_BYTES),
            committed: 0,
            hasher: Sha256::new(),
        })
    }

    fn resume(&self, upload_id: String) -> Result<Upload, Error> {
        let checkpoint = self
            .inner
            .resumable
            .take(&upload_id, self.registry_id.as_deref(), &self.repository_name)
            .ok_or_else(|| {
                Error::facade(
                    Code::FailedPrecondition,
                    error::REASON_UPLOAD_NOT_RESUMABLE,
                    format!(
                        "upload {upload_id} cannot be resumed here (unknown to this replica, expired, \
                         or of another repository); start the push again without upload_id"
                    ),
                )
            })?;
        Ok(Upload {
            id: upload_id,
            part_size: checkpoint.part_size,
            committed: checkpoint.committed,
            hasher: checkpoint.hasher,
        })
    }
}

/// The caller's stream broke (reset, cancelled, malformed): the push stops
/// where ECR's checkpoint is and can be resumed.
fn caller_broke(status: &Status) -> Error {
    tracing::debug!(code = ?status.code(), "push stream broke");
    Error::facade(
        Code::Cancelled,
        error::REASON_CALLER_CANCELLED,
        "the push stream broke; resume it with its upload id",
    )
}
