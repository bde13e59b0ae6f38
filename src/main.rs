//! `ecr-facade`: parses flags and wires the library together; the flags
//! become settings in `src/config/settings.rs`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use aws_credential_types::Credentials;
use clap::Parser;
use ecr_facade::config::{
    Cli, Command, EmulatorCommandArgs, ServeArgs, Settings, UpstreamSettings,
};
use ecr_facade::emulator::{self, EmulatorConfig};
use ecr_facade::metrics::{self, Metrics};
use ecr_facade::security::{self, Security};
use ecr_facade::server;
use ecr_facade::service::EcrFacade;
use ecr_facade::telemetry;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// jemalloc instead of glibc's malloc: a call allocates many small objects
/// on worker threads that differ from the ones freeing them, where glibc's
/// arenas spent up to a quarter of the CPU (BENCHMARKS.md, scenario 5).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Emulator(args) => run_emulator(args).await,
    }
}

/// `ecr-facade emulator`: the ECR emulator alone.
async fn run_emulator(args: EmulatorCommandArgs) -> anyhow::Result<()> {
    let telemetry = telemetry::init(args.log_format, None)?;
    let config = args.emulator.emulator_config()?;
    let listener = TcpListener::bind(args.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!(
        endpoint_url = %url,
        region = %config.region,
        account_id = %config.account_id,
        "ecr emulator serving (in memory; any credentials are accepted)"
    );
    emulator::serve(listener, config, server::shutdown_signal()).await?;
    tracing::info!("stopped");
    telemetry.shutdown();
    Ok(())
}

/// `ecr-facade serve`: the gRPC service, until SIGTERM/SIGINT and its drain.
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let telemetry = telemetry::init(args.log_format, args.otlp_endpoint.as_deref())?;
    if let Some(endpoint) = &args.otlp_endpoint {
        tracing::info!(endpoint = %endpoint, "exporting rpc spans over otlp");
    }
    announce_security(&settings.security)?;
    let upstream = Upstream::connect(&settings).await?;
    let metrics = Metrics::new();
    let facade = EcrFacade::new(
        upstream.client.clone(),
        settings.facade,
        Arc::clone(&metrics),
    )
    .with_authorizer(settings.security.authorizer.clone());

    let listener = TcpListener::bind(args.listen).await?;
    let metrics_listener = match args.metrics_listen {
        Some(addr) => Some(MetricsListener::start(addr, &metrics).await?),
        None => None,
    };
    tracing::info!(
        listen = %listener.local_addr()?,
        endpoint_url = upstream.endpoint_url,
        region = %upstream.region(),
        "ecr-facade serving ecr.v1.EcrService"
    );
    let drain_timeout = settings.server.drain_timeout;
    let (shutdown, signalled) = shutdown_signal_noted();
    server::serve(
        listener,
        facade,
        settings.server,
        metrics,
        settings.security,
        shutdown,
    )
    .await?;
    // The drain deadline counts from the signal and bounds everything
    // after it, the metrics listener and the embedded emulator included.
    let drain_deadline = signalled.get().copied().unwrap_or_else(Instant::now) + drain_timeout;
    if let Some(metrics_listener) = metrics_listener {
        metrics_listener.stop(drain_deadline).await?;
    }
    if let Some(emulator) = upstream.emulator {
        stop_emulator(emulator, drain_deadline).await;
    }
    tracing::info!("stopped");
    telemetry.shutdown();
    Ok(())
}

/// Logs the transport and authorization mode (a warning without a policy:
/// every caller may call everything) and reloads the policy on SIGHUP.
fn announce_security(security: &Security) -> anyhow::Result<()> {
    if security.authorizer.store().path().is_none() {
        tracing::warn!("{}", security.startup_message());
    } else {
        tracing::info!("{}", security.startup_message());
    }
    #[cfg(unix)]
    tokio::spawn(security::watch_sighup(Arc::clone(
        security.authorizer.store(),
    ))?);
    Ok(())
}

/// Where the facade forwards to: AWS (or `--endpoint-url`), or the
/// embedded emulator with `--emulator`.
struct Upstream {
    client: aws_sdk_ecr::Client,
    /// The embedded emulator, stopped after the drain.
    emulator: Option<emulator::Emulator>,
    /// For the startup log.
    endpoint_url: String,
}

impl Upstream {
    async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        if let Some(config) = &settings.emulator {
            let (emulator, client) = start_emulator(config.clone(), &settings.upstream).await?;
            return Ok(Self {
                client,
                endpoint_url: emulator.url(),
                emulator: Some(emulator),
            });
        }
        Ok(Self {
            client: settings.upstream.load_client().await?,
            emulator: None,
            endpoint_url: settings
                .upstream
                .endpoint_url
                .clone()
                .unwrap_or_else(|| "aws default".to_owned()),
        })
    }

    /// The client's region, for the startup log.
    fn region(&self) -> String {
        self.client
            .config()
            .region()
            .map_or_else(|| "none".to_owned(), ToString::to_string)
    }
}

/// Starts the embedded emulator for `serve --emulator` on an ephemeral
/// loopback port and returns it with an SDK client pointed at it.
async fn start_emulator(
    config: EmulatorConfig,
    upstream: &UpstreamSettings,
) -> anyhow::Result<(emulator::Emulator, aws_sdk_ecr::Client)> {
    let (region, seeded) = (config.region.clone(), config.seed_demo);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let emulator = emulator::Emulator::start(listener, config).await?;
    let upstream = UpstreamSettings {
        endpoint_url: Some(emulator.url()),
        ..upstream.clone()
    };
    let credentials = Credentials::new("emulator", "emulator", None, None, "ecr-facade-emulator");
    tracing::warn!(
        endpoint_url = %emulator.url(),
        region = %region,
        seeded,
        "forwarding to the EMBEDDED ECR EMULATOR, not AWS: state lives in memory and is lost on exit"
    );
    Ok((emulator, upstream.static_client(credentials)))
}

/// Stops the embedded emulator, dropping its calls still running at
/// `deadline`.
async fn stop_emulator(emulator: emulator::Emulator, deadline: Instant) {
    if tokio::time::timeout_at(deadline, emulator.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "drain timeout reached; dropping the embedded emulator's calls still running"
        );
    }
}

/// The Prometheus listener (`--metrics-listen`), running beside the server.
struct MetricsListener {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl MetricsListener {
    async fn start(addr: SocketAddr, metrics: &Arc<Metrics>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        tracing::info!(
            metrics = %metrics::describe(listener.local_addr()?),
            "serving prometheus metrics"
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(metrics::serve(listener, Arc::clone(metrics), async {
            let _ = stopped.await;
        }));
        Ok(Self { stop, task })
    }

    /// Metrics stay up through the drain and stop with the server, waited
    /// for until `deadline`.
    async fn stop(self, deadline: Instant) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        if let Ok(stopped) = tokio::time::timeout_at(deadline, self.task).await {
            stopped??;
        }
        Ok(())
    }
}

/// SIGTERM/SIGINT, and when it came: the drain deadline counts from it.
fn shutdown_signal_noted() -> (impl Future<Output = ()>, Arc<OnceLock<Instant>>) {
    let signalled = Arc::new(OnceLock::new());
    let noted = Arc::clone(&signalled);
    let shutdown = async move {
        server::shutdown_signal().await;
        let _ = noted.set(Instant::now());
    };
    (shutdown, signalled)
}
