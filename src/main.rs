//! `ecr-facade`: parses flags and wires the library together.

use clap::Parser;
use ecr_facade::config::{Cli, Command, ServeArgs, UpstreamSettings};
use ecr_facade::server::{self, ServerSettings};
use ecr_facade::service::{EcrFacade, FacadeSettings};
use ecr_facade::telemetry;
use ecr_facade::validate::Limits;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let upstream = UpstreamSettings::from(&args);
    let client = upstream.load_client().await?;
    let facade = EcrFacade::new(
        client,
        FacadeSettings {
            limits: Limits {
                max_layer_digests: args.max_layer_digests as usize,
            },
            upstream_concurrency: args.upstream_concurrency as usize,
            token_min_ttl: args.token_min_ttl,
            rpc_timeout: args.rpc_timeout,
        },
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(
        listen = %listener.local_addr()?,
        endpoint_url = args.endpoint_url.as_deref().unwrap_or("aws default"),
        region = args.region.as_deref().unwrap_or("aws default chain"),
        "ecr-facade serving ecr.v1.EcrService"
    );
    server::serve(
        listener,
        facade,
        ServerSettings {
            drain_timeout: args.drain_timeout,
        },
        server::shutdown_signal(),
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}
