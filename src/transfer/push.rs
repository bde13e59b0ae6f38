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
//!
//! [`caller`] reads the caller's side (header, chunks, their sizes);
//! [`upstream`] makes the ECR calls other than the parts'.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};
use tonic::{Code, Status, Streaming};

mod caller;
mod upstream;

pub use caller::read_header;

use super::resume::{Checkpoint, Unresumable};
use super::{Inner, PUSH_RETRY_DELAY, PushStream, Transfer};
use crate::convert::requests;
use crate::error::{self, Error, UpstreamError};
use crate::model::Action;
use crate::pb;
use crate::pb::push_layer_response::Message as Outgoing;
use crate::producer::produced;
use crate::upstream::observed;

/// Smallest part the facade uploads (ECR refuses to complete an upload with
/// an earlier part under 5 MiB), whatever part size ECR announces.
const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

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
    /// Ends this stream's lease on the upload's checkpoint when the push
    /// ends, however it ends.
    _lease: Lease,
}

/// A push's lease on its entry of the resume table, released when dropped
/// (after [`Table::forget`](super::resume::Table::forget) it is a no-op).
struct Lease {
    inner: Arc<Inner>,
    upload_id: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.inner.resumable.release(&self.upload_id);
    }
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

/// How a push opened.
enum Opened {
    /// Resumed from its checkpoint (`Some`), or new: its upload starts with
    /// its first bytes.
    Upload(Option<Upload>),
    /// The repository holds the layer already; the caller has been told.
    AlreadyPresent,
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

    /// The push from start to end: open (resume, or skip a layer already
    /// there), upload the caller's chunks part by part, then the last part,
    /// and finish.
    async fn steps(
        &self,
        resume: Option<String>,
        mut incoming: Streaming<pb::PushLayerRequest>,
    ) -> Result<(), Stop> {
        let mut upload = match self.open(resume).await? {
            Opened::Upload(upload) => upload,
            Opened::AlreadyPresent => return Ok(()),
        };
        let mut pending = BytesMut::new();
        let mut received = upload.as_ref().map_or(0, |u| u.committed);
        let idle = self.inner.settings.idle_timeout;
        while let Some(chunk) = caller::next_chunk(&mut incoming, idle).await? {
            received += chunk.len() as u64;
            caller::within_total(self.total_size, received)?;
            let upload = match &mut upload {
                Some(upload) => upload,
                None => upload.insert(self.start().await?),
            };
            self.take(upload, &mut pending, chunk).await?;
        }
        caller::at_total(self.total_size, received)?;
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

    /// Opens the push. A resumed push reports at once where the caller must
    /// go on from; a new one starts its upload with its first bytes, so a
    /// stream that sends nothing valid never opens an upload upstream — and
    /// a layer the repository holds already is reported without any.
    async fn open(&self, resume: Option<String>) -> Result<Opened, Stop> {
        match resume {
            Some(upload_id) => {
                let upload = self.resume(upload_id)?;
                self.progress(&upload).await?;
                Ok(Opened::Upload(Some(upload)))
            }
            None => {
                if let Some(expected) = self.expected_digest.clone()
                    && self.present(&expected).await?
                {
                    self.send(Outgoing::Result(pb::PushLayerResult {
                        layer_digest: expected,
                        size: 0,
                        already_present: true,
                    }))
                    .await?;
                    return Ok(Opened::AlreadyPresent);
                }
                Ok(Opened::Upload(None))
            }
        }
    }

    /// Checks the digest, completes the upload and reports the result.
    async fn finish(&self, upload: Upload, size: u64) -> Result<(), Stop> {
        let digest = format!("sha256:{}", hex::encode(upload.hasher.finalize()));
        if let Some(expected) = &self.expected_digest
            && *expected != digest
        {
            // These bytes can never complete to the expected layer.
            self.inner.resumable.forget(&upload.id);
            return Err(Error::invalid_field(
                "header.expected_digest",
                format!("the bytes sent hash to {digest}; nothing was committed"),
            )
            .into());
        }
        // Forgotten only once completed: a failed completion can be resumed
        // (with no more bytes) and completed again.
        let already_present = self.complete(&upload.id, &digest).await?;
        self.inner.resumable.forget(&upload.id);
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
        let request = pb::UploadLayerPartRequest {
            registry_id: self.registry_id.clone(),
            repository_name: self.repository_name.clone(),
            upload_id: upload.id.clone(),
            part_first_byte: Some(first as i64),
            part_last_byte: Some(last as i64),
            layer_part_blob: part,
        };
        let call = Box::pin(requests::upload_layer_part(&self.inner.client, request).send());
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

    /// Initiates the upload and reports it.
    async fn start(&self) -> Result<Upload, Stop> {
        let upload = self.initiate().await?;
        self.progress(&upload).await?;
        Ok(upload)
    }

    fn resume(&self, upload_id: String) -> Result<Upload, Error> {
        let leased = self.inner.resumable.lease(
            &upload_id,
            self.registry_id.as_deref(),
            &self.repository_name,
        );
        let checkpoint = match leased {
            Ok(checkpoint) => checkpoint,
            Err(Unresumable::Unknown) => {
                return Err(Error::facade(
                    Code::FailedPrecondition,
                    error::REASON_UPLOAD_NOT_RESUMABLE,
                    format!(
                        "upload {upload_id} cannot be resumed here (unknown to this replica, expired, \
                         or of another repository); start the push again without upload_id"
                    ),
                ));
            }
            Err(Unresumable::InUse) => {
                return Err(Error::Facade {
                    code: Code::Aborted,
                    reason: error::REASON_UPLOAD_IN_USE,
                    message: format!(
                        "upload {upload_id} is being pushed by another stream; retry once that \
                         stream has ended (a broken one ends within the idle timeout)"
                    ),
                    retry_after: Some(PUSH_RETRY_DELAY),
                    metadata: Vec::new(),
                });
            }
        };
        Ok(Upload {
            _lease: self.lease(&upload_id),
            id: upload_id,
            part_size: checkpoint.part_size,
            committed: checkpoint.committed,
            hasher: checkpoint.hasher,
        })
    }

    /// The guard releasing this push's lease on `upload_id` when it ends.
    fn lease(&self, upload_id: &str) -> Lease {
        Lease {
            inner: Arc::clone(&self.inner),
            upload_id: upload_id.to_owned(),
        }
    }
}
