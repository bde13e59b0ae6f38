//! Command-line flags (each also read from `ECR_FACADE_<FLAG>`), the
//! settings built from them ([`settings`](Settings): the one place a flag
//! becomes a setting) and the one `aws_sdk_ecr::Client`.

use std::net::SocketAddr;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use clap::{Args, Parser, Subcommand};

pub use crate::telemetry::LogFormat;

mod ranges;
mod settings;

use crate::flag_parsers::{parse_byte_size, parse_token_min_ttl};
pub use ranges::RangeError;
pub use settings::Settings;

/// Command line of the `ecr-facade` binary.
#[derive(Debug, Parser)]
#[command(
    name = "ecr-facade",
    version,
    about = "A validated, streaming gRPC facade for Amazon ECR"
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gRPC service (ecr.v1.EcrService, health, reflection).
    Serve(Box<ServeArgs>),
    /// Run the embedded ECR emulator alone: ECR's wire protocol (AWS JSON
    /// 1.1) for any AWS SDK, the AWS CLI or boto3 via --endpoint-url.
    Emulator(EmulatorCommandArgs),
}

/// Flags of `ecr-facade emulator`.
#[derive(Debug, Clone, Args)]
pub struct EmulatorCommandArgs {
    /// Address the emulator listens on (keep it on loopback: it accepts any
    /// signature and has a fault-injection admin endpoint).
    #[arg(
        long,
        env = "ECR_FACADE_EMULATOR_LISTEN",
        default_value = "127.0.0.1:4510"
    )]
    pub listen: SocketAddr,

    /// Log format.
    #[arg(long, env = "ECR_FACADE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The emulator itself.
    #[command(flatten)]
    pub emulator: crate::emulator::EmulatorArgs,
}

/// Flags of `ecr-facade serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address the gRPC server listens on.
    #[arg(long, env = "ECR_FACADE_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// ECR endpoint override (e.g. a local emulator). The SDK's own
    /// AWS_ENDPOINT_URL keeps working when this is unset.
    #[arg(long, env = "ECR_FACADE_ENDPOINT_URL", conflicts_with = "emulator")]
    pub endpoint_url: Option<String>,

    /// Forward to the embedded ECR emulator (in memory, on an ephemeral
    /// loopback port) instead of AWS: no AWS account or credentials needed.
    #[arg(long, env = "ECR_FACADE_EMULATOR")]
    pub emulator: bool,

    /// The embedded emulator, with --emulator.
    #[command(flatten)]
    pub emulator_args: crate::emulator::EmulatorArgs,

    /// AWS region of the registry. Default: the AWS default chain
    /// (AWS_REGION, profile, instance metadata).
    #[arg(long, env = "ECR_FACADE_REGION")]
    pub region: Option<String>,

    /// Log format.
    #[arg(long, env = "ECR_FACADE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Attempts per upstream call, first try included (SDK standard retry
    /// mode with exponential backoff).
    #[arg(long, env = "ECR_FACADE_MAX_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub max_attempts: u32,

    /// Timeout to establish a connection to ECR.
    #[arg(long, env = "ECR_FACADE_CONNECT_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,

    /// Timeout of one upstream attempt.
    #[arg(long, env = "ECR_FACADE_ATTEMPT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub attempt_timeout: Duration,

    /// Timeout of one upstream call, all retries included.
    #[arg(long, env = "ECR_FACADE_OPERATION_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub operation_timeout: Duration,

    /// A cached authorization token is served only while it stays valid for
    /// at least this long; otherwise a fresh one is fetched. Between 1m and
    /// 11h (ECR's tokens last 12 hours).
    #[arg(long, env = "ECR_FACADE_TOKEN_MIN_TTL", default_value = "6h", value_parser = parse_token_min_ttl)]
    pub token_min_ttl: Duration,

    /// Most layer digests one BatchCheckLayerAvailability request may carry.
    /// Its request limit is 4,003 bytes a digest (1,000 characters of up to
    /// 4 bytes), which must fit --max-request-bytes-in-flight.
    #[arg(long, env = "ECR_FACADE_MAX_LAYER_DIGESTS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_layer_digests: u32,

    /// Request bytes all calls may hold at once (each call's from its first
    /// message until its response ends; health and reflection aside). Past
    /// it, calls are refused with RESOURCE_EXHAUSTED and a RetryInfo.
    /// Accepts KiB, MiB and GiB suffixes.
    #[arg(long, env = "ECR_FACADE_MAX_REQUEST_BYTES_IN_FLIGHT", default_value = "32MiB",
          value_parser = parse_byte_size::<usize>)]
    pub max_request_bytes_in_flight: usize,

    /// Most upstream batches (of ≤ 100 digests) one BatchCheckLayerAvailability
    /// stream runs at once.
    #[arg(long, env = "ECR_FACADE_UPSTREAM_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub upstream_concurrency: u32,

    /// Budget of one RPC, upstream calls and retries included, when the caller
    /// sets no shorter deadline (grpc-timeout).
    #[arg(long, env = "ECR_FACADE_RPC_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub rpc_timeout: Duration,

    /// Most RPCs served at once (health and reflection aside); more are shed
    /// at once with RESOURCE_EXHAUSTED, never queued.
    #[arg(long, env = "ECR_FACADE_MAX_CONCURRENT_RPCS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_rpcs: u32,

    /// Most PushLayer streams served at once, server-wide; more are refused
    /// with RESOURCE_EXHAUSTED and a RetryInfo. Each push holds up to ≈ 26 MB
    /// while a part is uploaded (the part, and the SDK's base64 JSON body of
    /// it), so the default keeps pushes within ≈ 100 MB.
    #[arg(long, env = "ECR_FACADE_MAX_CONCURRENT_PUSHES", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrent_pushes: u32,

    /// A transfer whose caller (push) or download URL (pull) sends nothing
    /// for this long is abandoned.
    #[arg(long, env = "ECR_FACADE_TRANSFER_IDLE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub transfer_idle_timeout: Duration,

    /// Most HTTP/2 streams (calls) one client connection may have open.
    #[arg(long, env = "ECR_FACADE_MAX_CONCURRENT_STREAMS", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,

    /// Interval of HTTP/2 keepalive pings to clients.
    #[arg(long, env = "ECR_FACADE_HTTP2_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_interval: Duration,

    /// A keepalive ping unanswered this long closes the connection.
    #[arg(long, env = "ECR_FACADE_HTTP2_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http2_keepalive_timeout: Duration,

    /// OTLP/gRPC endpoint (e.g. http://otel-collector:4317) to export RPC
    /// spans to, parented on the caller's W3C traceparent. Off when unset.
    #[arg(long, env = "ECR_FACADE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Close client connections older than this gracefully, so clients
    /// without a mesh reconnect and spread over new replicas (e.g. 5m).
    /// Off when unset.
    #[arg(long, env = "ECR_FACADE_MAX_CONNECTION_AGE", value_parser = humantime::parse_duration)]
    pub max_connection_age: Option<Duration>,

    /// Address of the Prometheus metrics listener (GET /metrics). Off when
    /// unset.
    #[arg(long, env = "ECR_FACADE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// TLS, mTLS and per-caller authorization.
    #[command(flatten)]
    pub security: crate::security::SecurityArgs,

    /// Bounds on calls and connections (per-connection and per-caller
    /// shares, connection cap, handshake timeout, transfer deadlines).
    #[command(flatten)]
    pub limits: crate::call_bounds::LimitArgs,

    /// On SIGTERM/SIGINT, how long in-flight calls and streams may run
    /// before the server exits anyway.
    #[arg(long, env = "ECR_FACADE_DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,
}

/// Settings of the upstream SDK client.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// Endpoint override.
    pub endpoint_url: Option<String>,
    /// Region override.
    pub region: Option<String>,
    /// Attempts per call.
    pub max_attempts: u32,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Per-attempt timeout.
    pub attempt_timeout: Duration,
    /// Whole-call timeout.
    pub operation_timeout: Duration,
}

impl UpstreamSettings {
    fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard().with_max_attempts(self.max_attempts)
    }

    fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect_timeout)
            .operation_attempt_timeout(self.attempt_timeout)
            .operation_timeout(self.operation_timeout)
            .build()
    }

    /// Loads the AWS default chain (credentials, region, `AWS_ENDPOINT_URL`)
    /// with these overrides and builds the one shared ECR client.
    pub async fn load_client(&self) -> anyhow::Result<aws_sdk_ecr::Client> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(self.retry_config())
            .timeout_config(self.timeout_config());
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk_config = loader.load().await;
        anyhow::ensure!(
            sdk_config.region().is_some(),
            "no AWS region configured: pass --region or set AWS_REGION"
        );
        Ok(aws_sdk_ecr::Client::new(&sdk_config))
    }

    /// Builds a client with fixed credentials, for a local upstream (tests,
    /// emulator): nothing is read from the environment.
    pub fn static_client(
        &self,
        credentials: aws_credential_types::Credentials,
    ) -> aws_sdk_ecr::Client {
        let mut config = aws_sdk_ecr::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(
                self.region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".to_owned()),
            ))
            .credentials_provider(credentials)
            .retry_config(self.retry_config())
            .timeout_config(self.timeout_config());
        if let Some(url) = &self.endpoint_url {
            config = config.endpoint_url(url);
        }
        aws_sdk_ecr::Client::from_conf(config.build())
    }
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            region: None,
            max_attempts: 3,
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// The flags of `ecr-facade serve <flags>`, for the unit tests.
#[cfg(test)]
pub(crate) fn parse_serve(flags: &[&str]) -> ServeArgs {
    let argv = ["ecr-facade", "serve"].iter().chain(flags);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Serve(args) => *args,
        Command::Emulator(_) => unreachable!("parsed serve"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let args = parse_serve(&[]);
        assert_eq!(args.listen, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(args.token_min_ttl, Duration::from_secs(6 * 3600));
        assert_eq!(args.max_layer_digests, 2_000);
        assert_eq!(args.max_request_bytes_in_flight, 32 * 1024 * 1024);
        assert_eq!(args.upstream_concurrency, 8);
        assert_eq!(args.log_format, LogFormat::Text);
    }

    #[test]
    fn out_of_range_knobs_are_refused() {
        for bad in [
            ["ecr-facade", "serve", "--upstream-concurrency", "0"],
            ["ecr-facade", "serve", "--max-attempts", "0"],
            ["ecr-facade", "serve", "--max-layer-digests", "0"],
            ["ecr-facade", "serve", "--token-min-ttl", "soon"],
            ["ecr-facade", "serve", "--token-min-ttl", "12h"],
            ["ecr-facade", "serve", "--token-min-ttl", "0s"],
            ["ecr-facade", "serve", "--max-layer-digests", "100001"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
