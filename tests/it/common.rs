//! Shared integration-test tooling: moto server (the real ECR upstream), a
//! counting/fault-injecting HTTP proxy in front of it, and the facade started
//! in-process on an ephemeral loopback port.

pub mod binary;
pub mod images;
pub mod proxy;
pub mod upstream;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_credential_types::Credentials;
use ecr_facade::config::UpstreamSettings;
use ecr_facade::metrics::Metrics;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use ecr_facade::server::{self, ServerSettings};
use ecr_facade::service::{EcrFacade, FacadeSettings};
use ecr_facade::token_cache::TokenSource;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A program of the project's test virtualenv (`scripts/setup-test-env`).
pub fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var_os("ECR_FACADE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let path = venv.join("bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup-test-env first (the README's test command does)",
        path.display()
    );
    path
}

/// A moto server on 127.0.0.1, alive for the whole test binary: it exits when
/// its stdin closes, i.e. when this process ends.
pub struct Moto {
    pub url: String,
    _child: Child,
}

/// The test binary's moto server, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let mut child = Command::new(venv_bin("python"))
            .arg(repo_root().join("tests/support/moto_launcher.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting moto");
        let stdout = child.stdout.take().expect("moto stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading moto's port");
        let port: u16 = line
            .trim()
            .strip_prefix("PORT=")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("moto launcher said {line:?}"));
        Moto {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
        }
    })
}

/// Upstream settings for a local endpoint: fast retries, short timeouts.
pub fn upstream_settings(endpoint: &str) -> UpstreamSettings {
    UpstreamSettings {
        endpoint_url: Some(endpoint.to_owned()),
        region: Some("us-east-1".to_owned()),
        max_attempts: 3,
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(20),
    }
}

/// An SDK client with dummy credentials for a local endpoint.
pub fn ecr_client(settings: &UpstreamSettings) -> aws_sdk_ecr::Client {
    settings.static_client(Credentials::new("test", "test", None, None, "tests"))
}

/// The facade served in-process on an ephemeral loopback port.
pub struct TestFacade {
    pub addr: SocketAddr,
    pub facade: EcrFacade,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// How to build a [`TestFacade`].
pub struct FacadeBuilder {
    pub upstream: UpstreamSettings,
    pub settings: FacadeSettings,
    pub token_source: Option<Arc<dyn TokenSource>>,
    pub server: ServerSettings,
    pub metrics: Arc<Metrics>,
    pub security: ecr_facade::security::Security,
}

impl FacadeBuilder {
    pub fn new(endpoint: &str) -> Self {
        Self {
            upstream: upstream_settings(endpoint),
            settings: FacadeSettings::default(),
            token_source: None,
            server: ServerSettings {
                drain_timeout: Duration::from_secs(10),
                ..ServerSettings::default()
            },
            metrics: Metrics::new(),
            security: ecr_facade::security::Security::default(),
        }
    }

    pub async fn start(self) -> TestFacade {
        let client = ecr_client(&self.upstream);
        let metrics = Arc::clone(&self.metrics);
        let facade = match self.token_source {
            Some(source) => EcrFacade::with_token_source(client, self.settings, metrics, source),
            None => EcrFacade::new(client, self.settings, metrics),
        }
        .with_authorizer(self.security.authorizer.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server::serve(
            listener,
            facade.clone(),
            self.server,
            Arc::clone(&self.metrics),
            self.security,
            async {
                // Dropping the TestFacade (and so the sender) does not stop
                // the server: only `begin_shutdown`/`stop` do.
                if stopped.await.is_err() {
                    std::future::pending::<()>().await;
                }
            },
        ));
        TestFacade {
            addr,
            facade,
            metrics: self.metrics,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

impl TestFacade {
    /// The facade in front of `endpoint` with default settings.
    pub async fn start(endpoint: &str) -> Self {
        FacadeBuilder::new(endpoint).start().await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> EcrServiceClient<Channel> {
        EcrServiceClient::new(self.channel().await)
    }

    /// Starts the graceful shutdown (as SIGTERM does).
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and waits for the server to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        self.task.take().unwrap().await.unwrap()
    }
}

/// A unique repository name for one test.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// A sha256-shaped digest for `i`.
pub fn digest(i: usize) -> String {
    format!("sha256:{i:064x}")
}

/// `sha256:<hex>` of `bytes`: the digest ECR names a layer or manifest by.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// GET `url` over plain HTTP: (status, body).
pub async fn http_get(url: &str) -> (u16, Vec<u8>) {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}
