//! An embedded Amazon ECR emulator that speaks ECR's own wire protocol, so
//! aws-sdk-ecr, boto3 and the AWS CLI use it through an endpoint override —
//! with ECR's semantics where moto is looser (digests of the manifest bytes,
//! layer and digest checks, immutable tags, pagination, download URLs).
//!
//! - Protocol: AWS JSON 1.1, `POST /` with `X-Amz-Target:
//!   AmazonEC2ContainerRegistry_V20150921.<Op>`; errors
//!   `{"__type", "message"}` with 400 (500 for `ServerException`); every
//!   answer carries `x-amzn-RequestId`. Signatures are accepted unchecked.
//! - All 17 operations of `shared/ecr-api-reference.md`, validated as ECR
//!   does (`validate`), on in-memory state (`state`) bounded by
//!   [`EmulatorConfig::max_blob_bytes`] (`LimitExceededException` when full);
//!   request bodies over an operation's limit get 413 without being buffered.
//! - Layer downloads through signed, expiring URLs served by the emulator
//!   itself (`blobs`), with S3's answers to `Range` requests (`ranges`).
//! - Fault injection and call counts per operation ([`FaultSpec`]): latency,
//!   throttling, server errors, and download URLs serving corrupted bytes
//!   (`corrupt_downloads` on `GetDownloadUrlForLayer`).
//!   Set from Rust ([`Emulator::faults`]), CLI flags ([`EmulatorArgs`]) or the
//!   admin endpoints (`admin`: `GET|DELETE /_emulator/stats`,
//!   `GET|DELETE /_emulator/faults`, `PUT|DELETE /_emulator/faults/<Op>`),
//!   which answer loopback peers sending `Authorization: Bearer
//!   <admin token>` only ([`Emulator::admin_token`], `--admin-token`).
//!
//! Differences from ECR that remain: no registry (docker) API, no KMS, no
//! image scanning, lifecycle policies, replication or pull-through cache; the
//! 5 MiB minimum part size is not enforced; BatchGetImage translates Docker
//! v2 schema 2 ↔ OCI for pulls by tag but never produces schema 1
//! (`ops::convert`); repository policies are checked against IAM's
//! grammar (`ops::policy`) but resources, conditions and action names are
//! not.

mod admin;
mod args;
mod blobs;
mod error;
mod faults;
mod operation;
mod ops;
mod pagination;
mod ranges;
mod seed;
mod server;
mod state;
mod validate;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use admin::AdminToken;
pub use args::EmulatorArgs;
pub use faults::{FaultHandle, FaultSpec, parse_fault_arg};
pub use operation::Operation;
pub use seed::{DEMO_REPOSITORY, DEMO_TAG};

/// Default account (registry) id, as moto's.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
/// Default region.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default storage budget: 512 MiB.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 512 * 1024 * 1024;
/// Default lifetime of a download URL: 1 hour.
pub const DEFAULT_DOWNLOAD_URL_TTL: Duration = Duration::from_secs(3600);

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The default registry id (requests without `registryId`).
    pub account_id: String,
    /// The region shown in ARNs, URIs and proxy endpoints.
    pub region: String,
    /// Bytes of layers, upload parts and manifests the emulator may hold.
    pub max_blob_bytes: u64,
    /// How long a GetDownloadUrlForLayer URL stays valid.
    pub download_url_ttl: Duration,
    /// Fault specs in force from the start: `(operation or "*", spec)`.
    pub faults: Vec<(String, FaultSpec)>,
    /// Create `demo/hello` with one image tagged `latest` at start.
    pub seed_demo: bool,
    /// The admin endpoints' bearer token; `None`: a random one.
    pub admin_token: Option<AdminToken>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
            download_url_ttl: DEFAULT_DOWNLOAD_URL_TTL,
            faults: Vec::new(),
            seed_demo: false,
            admin_token: None,
        }
    }
}

/// Serves the emulator on `listener` until `shutdown` resolves (the
/// `ecr-facade emulator` subcommand).
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shared = server::Shared::new(config, listener.local_addr()?)?;
    server::run(listener, shared, shutdown).await
}

/// A running emulator (for in-process tests and `serve --emulator`).
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts serving on `listener` in a spawned task.
    pub async fn start(
        listener: tokio::net::TcpListener,
        config: EmulatorConfig,
    ) -> anyhow::Result<Emulator> {
        let addr = listener.local_addr()?;
        let shared = server::Shared::new(config, addr)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, Arc::clone(&shared), async {
            let _ = stopped.await;
        }));
        Ok(Emulator {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// `http://127.0.0.1:<port>` (the endpoint URL for SDK clients).
    pub fn url(&self) -> String {
        server::base_url(self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fault table and call counters (shared with the server).
    pub fn faults(&self) -> FaultHandle {
        self.shared.faults.clone()
    }

    /// Sets the fault spec of `op` (an operation name or `*`).
    pub fn set_fault(&self, op: &str, spec: FaultSpec) -> anyhow::Result<()> {
        self.shared.faults.set(op, spec)
    }

    /// The token the admin endpoints require (`Authorization: Bearer
    /// <token>`): the configured one or the random one made at start.
    pub fn admin_token(&self) -> &str {
        self.shared.admin_token.expose()
    }

    /// Removes every fault spec.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Calls of `op` so far.
    pub fn calls(&self, op: &str) -> u64 {
        self.shared.faults.calls(op)
    }

    /// Calls of all operations so far.
    pub fn total_calls(&self) -> u64 {
        self.shared.faults.total_calls()
    }

    /// Bytes of storage in use (layers, upload parts, manifests).
    pub fn stored_bytes(&self) -> u64 {
        self.shared.store().space.used()
    }

    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "emulator server failed"),
            Err(err) => tracing::warn!(error = %err, "emulator task failed"),
        }
    }
}

/// `N` bytes from the OS random source.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes
}
