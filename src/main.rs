//! `ecr-facade`: parses flags and wires the library together.

use std::sync::Arc;

use clap::Parser;
use ecr_facade::config::{Cli, Command, ServeArgs, UpstreamSettings};
use ecr_facade::metrics::{self, Metrics};
use ecr_facade::server::{self, ServerSettings};
use ecr_facade::service::{EcrFacade, FacadeSettings};
use ecr_facade::telemetry;
use ecr_facade::validate::Limits;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args).await,
    }
}

fn facade_settings(args: &ServeArgs) -> FacadeSettings {
    FacadeSettings {
        limits: Limits {
            max_layer_digests: args.max_layer_digests as usize,
        },
        upstream_concurrency: args.upstream_concurrency as usize,
        token_min_ttl: args.token_min_ttl,
        rpc_timeout: args.rpc_timeout,
    }
}

fn server_settings(args: &ServeArgs) -> ServerSettings {
    ServerSettings {
        drain_timeout: args.drain_timeout,
        max_concurrent_rpcs: args.max_concurrent_rpcs as usize,
        max_concurrent_streams: args.max_concurrent_streams,
        http2_keepalive_interval: args.http2_keepalive_interval,
        http2_keepalive_timeout: args.http2_keepalive_timeout,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let metrics = Metrics::new();
    let client = UpstreamSettings::from(&args).load_client().await?;
    let facade = EcrFacade::new(client, facade_settings(&args), Arc::clone(&metrics));

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
        endpoint_url = args.endpoint_url.as_deref().unwrap_or("aws default"),
        region = args.region.as_deref().unwrap_or("aws default chain"),
        "ecr-facade serving ecr.v1.EcrService"
    );
    server::serve(
        listener,
        facade,
        server_settings(&args),
        metrics,
        server::shutdown_signal(),
    )
    .await?;
    // Metrics stay up through the drain and stop with the server.
    if let Some((stop, task)) = stop_metrics {
        let _ = stop.send(());
        task.await??;
    }
    tracing::info!("stopped");
    Ok(())
}
