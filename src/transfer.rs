//! Streaming layer transfers: PushLayer (a bidirectional stream that uploads
//! a layer through InitiateLayerUpload / UploadLayerPart /
//! CompleteLayerUpload) and PullLayer (a server stream of a layer's bytes,
//! fetched by the facade from the layer's download URL).
//!
//! Both follow the shape of the layer-check fan-out: a producer task feeds a
//! bounded channel, so the facade reads from its source (the caller for a
//! push, the download URL for a pull) only as fast as the other side takes
//! the bytes, and at most one upstream part (push) or one chunk (pull) is
//! held per transfer. The terminal status travels through a oneshot that the
//! producer fills last, so a stream can only end OK when the producer said
//! so. The modules:
//! - [`push`]: the upload state machine and its checks;
//! - [`resume`]: the bounded table of pushes that can be resumed;
//! - [`pull`]: the download stream and its digest check;
//! - [`download`]: the HTTP client that fetches download URLs.

mod download;
mod pull;
mod push;
mod resume;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecr::Client;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::pb;
use crate::producer::Produced;

pub use push::read_header;

/// The stream PushLayer answers with.
pub type PushStream = Produced<pb::PushLayerResponse>;
/// The stream PullLayer answers with.
pub type PullStream = Produced<pb::PullLayerResponse>;

/// Limits and timeouts of layer transfers.
#[derive(Debug, Clone, Copy)]
pub struct TransferSettings {
    /// Pushes served at once, server-wide; more are refused with
    /// RESOURCE_EXHAUSTED and a `RetryInfo`.
    pub max_concurrent_pushes: usize,
    /// Longest wait for the caller's next message (push) or for the next
    /// bytes of a download (pull) before the transfer is abandoned.
    pub idle_timeout: Duration,
    /// Budget of one transfer when the caller sets no shorter `grpc-timeout`
    /// (a layer of gigabytes takes longer than a unary call's budget):
    /// `--max-transfer-timeout`, which the RPC layer enforces too.
    pub timeout: Duration,
    /// Timeout to connect to a download URL's host.
    pub connect_timeout: Duration,
}

impl Default for TransferSettings {
    fn default() -> Self {
        Self {
            max_concurrent_pushes: 4,
            idle_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

/// Back-off suggested to a push refused at `max_concurrent_pushes`.
pub const PUSH_RETRY_DELAY: Duration = Duration::from_secs(1);

/// What PushLayer and PullLayer share: the ECR client, the push slots, the
/// resumable pushes and the download client.
#[derive(Clone)]
pub struct Transfer {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    metrics: Arc<Metrics>,
    settings: TransferSettings,
    pushes: Arc<Semaphore>,
    resumable: resume::Table,
    http: download::HttpClient,
}

impl Transfer {
    /// Transfers through `client`, counted into `metrics`.
    pub fn new(client: Client, settings: TransferSettings, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                metrics,
                pushes: Arc::new(Semaphore::new(settings.max_concurrent_pushes)),
                resumable: resume::Table::new(resume::CAPACITY, resume::TTL),
                http: download::HttpClient::new(settings.connect_timeout),
                settings,
            }),
        }
    }

    /// The deadline of a transfer: the caller's, capped by the transfer
    /// budget (not by the unary `--rpc-timeout`), and never past the one the
    /// RPC layer set when the call's headers arrived.
    pub fn deadline<T>(&self, request: &tonic::Request<T>) -> tokio::time::Instant {
        crate::deadline::of_request(request, self.inner.settings.timeout)
    }

    /// Push slots free now (for tests).
    pub fn free_push_slots(&self) -> usize {
        self.inner.pushes.available_permits()
    }
}
