//! `ecr-facade`: parses flags and wires the library together.

use std::sync::Arc;

use aws_credential_types::Credentials;
use clap::Parser;
use ecr_facade::call_bounds::{CallLimits, ConnectionLimits};
use ecr_facade::config::{Cli, Command, EmulatorCommandArgs, ServeArgs, UpstreamSettings};
use ecr_facade::emulator;
use ecr_facade::metrics::{self, Metrics};
use ecr_facade::security::{self, Security};
use ecr_facade::server::{self, ServerSettings};
use ecr_facade::service::{EcrFacade, FacadeSettings};
use ecr_facade::telemetry;
use ecr_facade::transfer::TransferSettings;
use ecr_facade::validate::Limits;
use tokio::net::TcpListener;

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
    let config = args.emulator.config()?;
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

/// Starts the embedded emulator for `serve --emulator` and returns it with
/// an SDK client pointed at it.
async fn start_emulator(
    args: &ServeArgs,
) -> anyhow::Result<(emulator::Emulator, aws_sdk_ecr::Client)> {
    let mut config = args.emulator_args.config()?;
    if let Some(region) = &args.region {
        config.region = region.clone();
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let emulator = emulator::Emulator::start(listener, config.clone()).await?;
    let upstream = UpstreamSettings {
        endpoint_url: Some(emulator.url()),
        region: Some(config.region.clone()),
        ..UpstreamSettings::from(args)
    };
    let credentials = Credentials::new("emulator", "emulator", None, None, "ecr-facade-emulator");
    tracing::warn!(
        endpoint_url = %emulator.url(),
        region = %config.region,
        seeded = config.seed_demo,
        "forwarding to the EMBEDDED ECR EMULATOR, not AWS: state lives in memory and is lost on exit"
    );
    Ok((emulator, upstream.static_client(credentials)))
}

fn facade_settings(args: &ServeArgs) -> FacadeSettings {
    FacadeSettings {
        limits: Limits {
            max_layer_digests: args.max_layer_digests as usize,
        },
        upstream_concurrency: args.upstream_concurrency as usize,
        token_min_ttl: args.token_min_ttl,
        rpc_timeout: args.rpc_timeout,
        transfer: TransferSettings {
            max_concurrent_pushes: args.max_concurrent_pushes as usize,
            idle_timeout: args.transfer_idle_timeout,
            timeout: args.limits.max_transfer_timeout,
            connect_timeout: args.connect_timeout,
        },
    }
}

fn server_settings(args: &ServeArgs) -> ServerSettings {
    ServerSettings {
        drain_timeout: args.drain_timeout,
        max_concurrent_rpcs: args.max_concurrent_rpcs as usize,
        max_concurrent_streams: args.max_concurrent_streams,
        http2_keepalive_interval: args.http2_keepalive_interval,
        http2_keepalive_timeout: args.http2_keepalive_timeout,
        max_connection_age: args.max_connection_age,
        budget: ecr_facade::budget::BudgetSettings {
            max_request_bytes_in_flight: args.max_request_bytes_in_flight,
            max_layer_digests: args.max_layer_digests as usize,
        },
        calls: CallLimits::from_args(&args.limits, args.rpc_timeout),
        connections: ConnectionLimits::from_args(&args.limits, args.http2_keepalive_interval),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Before anything starts: an out-of-range duration would panic later.
    args.check_ranges()?;
    let telemetry = telemetry::init(args.log_format, args.otlp_endpoint.as_deref())?;
    if let Some(endpoint) = &args.otlp_endpoint {
        tracing::info!(endpoint = %endpoint, "exporting rpc spans over otlp");
    }
    let metrics = Metrics::new();
    let security = Security::from_args(&args.security)?;
    if security.authorizer.store().path().is_none() {
        tracing::warn!("{}", security.startup_message());
    } else {
        tracing::info!("{}", security.startup_message());
    }
    #[cfg(unix)]
    tokio::spawn(security::watch_sighup(Arc::clone(
        security.authorizer.store(),
    ))?);
    let (emulator, client) = if args.emulator {
        let (emulator, client) = start_emulator(&args).await?;
        (Some(emulator), client)
    } else {
        (None, UpstreamSettings::from(&args).load_client().await?)
    };
    let client_region = client
        .config()
        .region()
        .map_or_else(|| "none".to_owned(), ToString::to_string);
    let facade = EcrFacade::new(client, facade_settings(&args), Arc::clone(&metrics))
        .with_authorizer(security.authorizer.clone());

    let listener = TcpListener::bind(args.listen).await?;
    let stop_metrics = match args.metrics_listen {
        Some(addr) => {
            let metrics_listener = TcpListener::bind(addr).await?;
            tracing::info!(
                metrics = %metrics::describe(metrics_listener.local_addr()?),
                "serving prometheus metrics"
            );
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(metrics::serve(
                metrics_listener,
                Arc::clone(&metrics),
                async {
                    let _ = stopped.await;
                },
            ));
            Some((stop, task))
        }
        None => None,
    };
    tracing::info!(
        listen = %listener.local_addr()?,
        endpoint_url = match (&emulator, &args.endpoint_url) {
            (Some(emulator), _) => emulator.url(),
            (None, Some(url)) => url.clone(),
            (None, None) => "aws default".to_owned(),
        },
        region = %client_region,
        "ecr-facade serving ecr.v1.EcrService"
    );
    // When the signal came: the drain deadline bounds everything after it,
    // the embedded emulator and the metrics listener included.
    let signalled = Arc::new(std::sync::OnceLock::new());
    let shutdown = {
        let signalled = Arc::clone(&signalled);
        async move {
            server::shutdown_signal().await;
            let _ = signalled.set(tokio::time::Instant::now());
        }
    };
    server::serve(
        listener,
        facade,
        server_settings(&args),
        metrics,
        security,
        shutdown,
    )
    .await?;
    let drain_deadline = signalled
        .get()
        .copied()
        .unwrap_or_else(tokio::time::Instant::now)
        + args.drain_timeout;
    // Metrics stay up through the drain and stop with the server.
    if let Some((stop, task)) = stop_metrics {
        let _ = stop.send(());
        if let Ok(stopped) = tokio::time::timeout_at(drain_deadline, task).await {
            stopped??;
        }
    }
    if let Some(emulator) = emulator
        && tokio::time::timeout_at(drain_deadline, emulator.shutdown())
            .await
            .is_err()
    {
        tracing::warn!(
            "drain timeout reached; dropping the embedded emulator's calls still running"
        );
    }
    tracing::info!("stopped");
    telemetry.shutdown();
    Ok(())
}
