//! Command-line flags of the emulator (each also read from
//! `ECR_FACADE_EMULATOR_<FLAG>`), meant to be flattened into a subcommand.
//! Names avoid the facade's own `serve` flags. They become an
//! [`EmulatorConfig`](super::EmulatorConfig) in `src/config/settings.rs`.

use std::time::Duration;

use clap::Args;

use super::config::{DEFAULT_ACCOUNT_ID, DEFAULT_REGION};
use super::faults::{FaultSpec, parse_fault_arg};
use super::secret::AdminToken;
use crate::flag_parsers::parse_byte_size;

/// Flags of the ECR emulator.
#[derive(Debug, Clone, Args)]
pub struct EmulatorArgs {
    /// Account id of the emulated registry (12 digits); requests without
    /// `registryId` address it.
    #[arg(long, env = "ECR_FACADE_EMULATOR_ACCOUNT_ID", default_value = DEFAULT_ACCOUNT_ID)]
    pub account_id: String,

    /// Region shown in repository ARNs and URIs and in proxy endpoints.
    #[arg(long, env = "ECR_FACADE_EMULATOR_REGION", default_value = DEFAULT_REGION)]
    pub emulator_region: String,

    /// Bytes of layers, upload parts and manifests the emulator may hold
    /// (suffixes KiB, MiB, GiB allowed); beyond it, LimitExceededException.
    #[arg(long, env = "ECR_FACADE_EMULATOR_MAX_BLOB_BYTES", default_value = "512MiB",
          value_parser = parse_byte_size::<u64>)]
    pub max_blob_bytes: u64,

    /// How long a GetDownloadUrlForLayer URL stays valid.
    #[arg(long, env = "ECR_FACADE_EMULATOR_DOWNLOAD_URL_TTL", default_value = "1h",
          value_parser = humantime::parse_duration)]
    pub download_url_ttl: Duration,

    /// Fault injection, repeatable: OP:SPEC with OP an ECR operation or `*`
    /// and SPEC comma-separated latency=<duration>, throttle=<n>|all,
    /// fail=<n>|all, corrupt=all (download URLs serve one altered byte; on
    /// GetDownloadUrlForLayer or `*`), e.g.
    /// `DescribeRepositories:latency=20ms,throttle=2`.
    /// The environment variable takes several, separated by `;`.
    #[arg(long = "fault", env = "ECR_FACADE_EMULATOR_FAULT", value_name = "OP:SPEC",
          value_delimiter = ';', value_parser = parse_fault_arg)]
    pub faults: Vec<(String, FaultSpec)>,

    /// Create the demo repository `demo/hello` with one image tagged `latest`.
    #[arg(long, env = "ECR_FACADE_EMULATOR_SEED_DEMO")]
    pub seed_demo: bool,

    /// Token the admin endpoints (`/_emulator/faults`, `/_emulator/stats`)
    /// require as `Authorization: Bearer <token>`: 16 to 256 visible ASCII
    /// characters. Without it a random token is generated that only
    /// in-process callers can read, so the endpoints are unusable from
    /// outside. Never logged.
    #[arg(long, env = "ECR_EMULATOR_ADMIN_TOKEN", hide_env_values = true,
          value_parser = AdminToken::from_arg)]
    pub admin_token: Option<AdminToken>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        emulator: EmulatorArgs,
    }

    fn parse(args: &[&str]) -> Result<EmulatorArgs, clap::Error> {
        let argv = std::iter::once("emulator").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.emulator)
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = parse(&[]).unwrap().emulator_config().unwrap();
        assert_eq!(config.account_id, "123456789012");
        assert_eq!(config.region, "us-east-1");
        assert_eq!(config.max_blob_bytes, 512 * 1024 * 1024);
        assert_eq!(config.download_url_ttl, Duration::from_secs(3600));
        assert!(config.faults.is_empty());
        assert!(!config.seed_demo);
        assert!(config.admin_token.is_none());
    }

    #[test]
    fn every_flag_is_read() {
        let args = parse(&[
            "--account-id",
            "210987654321",
            "--emulator-region",
            "eu-west-1",
            "--max-blob-bytes",
            "64KiB",
            "--download-url-ttl",
            "5m",
            "--fault",
            "ListImages:throttle=1",
            "--fault",
            "*:latency=5ms",
            "--seed-demo",
            "--admin-token",
            "0123456789abcdef-0123",
        ])
        .unwrap();
        let config = args.emulator_config().unwrap();
        assert_eq!(config.account_id, "210987654321");
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(config.max_blob_bytes, 65536);
        assert_eq!(config.download_url_ttl, Duration::from_secs(300));
        assert_eq!(config.faults.len(), 2);
        assert_eq!(config.faults[0].0, "ListImages");
        assert_eq!(config.faults[0].1.throttle_next, 1);
        assert_eq!(config.faults[1].1.latency, Duration::from_millis(5));
        assert!(config.seed_demo);
        assert_eq!(
            config.admin_token.unwrap().expose(),
            "0123456789abcdef-0123"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--fault", "NoSuchOp:fail=1"]).is_err());
        assert!(parse(&["--max-blob-bytes", "12XB"]).is_err());
        assert!(parse(&["--download-url-ttl", "soon"]).is_err());
        assert!(
            parse(&["--account-id", "123"])
                .unwrap()
                .emulator_config()
                .is_err()
        );
        assert!(
            parse(&["--emulator-region", "US East"])
                .unwrap()
                .emulator_config()
                .is_err()
        );
        assert!(
            parse(&["--max-blob-bytes", "0"])
                .unwrap()
                .emulator_config()
                .is_err()
        );
        // A bad token is refused without being quoted back.
        let err = parse(&["--admin-token", "guessable"])
            .unwrap()
            .emulator_config()
            .unwrap_err();
        assert!(!err.to_string().contains("guessable"), "{err}");
        assert!(
            parse(&["--download-url-ttl", "0s"])
                .unwrap()
                .emulator_config()
                .is_err()
        );
    }

    #[test]
    fn flags_are_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
