//! The emulator and the facade started in-process on 127.0.0.1:0, on a
//! runtime of their own (as `tests/it/common.rs` does, but kept off the load
//! generator's runtime so the two do not share worker threads).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_credential_types::Credentials;
use ecr_facade::config::UpstreamSettings;
use ecr_facade::emulator::{Emulator, EmulatorConfig};
use ecr_facade::metrics::Metrics;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use ecr_facade::security::Security;
use ecr_facade::server::{self, ServerSettings};
use ecr_facade::service::{EcrFacade, FacadeSettings};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

/// A multi-threaded runtime with `workers` worker threads named `name`.
pub fn runtime(name: &str, workers: usize) -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .context("building a tokio runtime")
}

/// Upstream settings as `serve` defaults them, pointed at `endpoint`.
pub fn upstream(endpoint: &str) -> UpstreamSettings {
    UpstreamSettings {
        endpoint_url: Some(endpoint.to_owned()),
        region: Some("us-east-1".to_owned()),
        ..UpstreamSettings::default()
    }
}

/// An SDK client for `endpoint`, configured as the facade's own.
pub fn sdk_client(endpoint: &str) -> aws_sdk_ecr::Client {
    upstream(endpoint).static_client(Credentials::new("bench", "bench", None, None, "bench"))
}

/// Starts the emulator on `rt`.
pub fn start_emulator(rt: &Runtime) -> anyhow::Result<Emulator> {
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Emulator::start(listener, EmulatorConfig::default()).await
    })
}

/// A facade served in-process.
pub struct Facade {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Facade {
    /// Serves a facade forwarding to `endpoint` on `rt`, wired as `serve`
    /// wires it (default server settings, no policy).
    pub fn start(rt: &Runtime, endpoint: &str, settings: FacadeSettings) -> anyhow::Result<Self> {
        let metrics = Metrics::new();
        let facade = EcrFacade::new(sdk_client(endpoint), settings, Arc::clone(&metrics));
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = rt.spawn(server::serve(
            listener,
            facade,
            ServerSettings {
                drain_timeout: Duration::from_secs(5),
                ..ServerSettings::default()
            },
            metrics,
            Security::default(),
            async {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Shuts the facade down and waits for it.
    pub fn stop(mut self, rt: &Runtime) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => rt.block_on(task)?,
            None => Ok(()),
        }
    }
}

/// `count` separate HTTP/2 connections to `addr`.
pub async fn connections(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// A facade client on `channel`, allowed the facade's largest messages.
pub fn client(channel: Channel) -> EcrServiceClient<Channel> {
    EcrServiceClient::new(channel)
        .max_decoding_message_size(server::MAX_ENCODING_MESSAGE_SIZE)
        .max_encoding_message_size(server::MAX_DECODING_MESSAGE_SIZE)
}

/// Installs a global subscriber that formats every event at `info` as the
/// binary's text logs do, into /dev/null: the in-process facade then pays
/// for its per-RPC log line as the real process does (write included).
pub fn install_log_sink() -> anyhow::Result<()> {
    let sink = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_writer(std::sync::Mutex::new(sink))
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the log sink: {e}"))
}
