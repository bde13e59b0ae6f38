//! What bounds one call and one connection: the flags, and the deadline a
//! call gets when its first byte (its headers) arrives.
//!
//! A call's deadline covers receiving the request, the handler and sending
//! the response (enforced by [`crate::rpc_layer`]); without it a caller that
//! sends headers and never a body, or never reads its answer, would hold a
//! concurrency slot forever. The deadline is the caller's `grpc-timeout`
//! capped by `--rpc-timeout` — except for the *transfer* methods
//! ([`Action::is_transfer`]: long uploads and downloads of layers), whose
//! deadline is the caller's `grpc-timeout` capped by `--max-transfer-timeout`,
//! and that cap without one (a stalled transfer ends sooner, at
//! `--transfer-idle-timeout`); without a `grpc-timeout` every other call gets
//! `--rpc-timeout`.

use std::time::Duration;

use clap::Args;
use http::HeaderMap;

use crate::model::Action;

/// Flags bounding calls and connections (flattened into `serve`); they
/// become [`CallLimits`] and [`ConnectionLimits`] in `src/config/settings.rs`.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Deadline of a layer transfer (PushLayer, PullLayer): the caller's
    /// grpc-timeout capped by this, or this without one. Other calls are
    /// bounded by --rpc-timeout.
    #[arg(long, env = "ECR_FACADE_MAX_TRANSFER_TIMEOUT", default_value = "1h", value_parser = humantime::parse_duration)]
    pub max_transfer_timeout: Duration,

    /// Most RPCs one client connection may have in flight (health and
    /// reflection aside); more are shed with RESOURCE_EXHAUSTED, so one
    /// connection cannot take every slot of --max-concurrent-rpcs.
    #[arg(long, env = "ECR_FACADE_MAX_CONCURRENT_RPCS_PER_CONNECTION", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_rpcs_per_connection: u32,

    /// Most RPCs one authenticated caller (client certificate or policy
    /// token) may have in flight; more are shed with RESOURCE_EXHAUSTED.
    /// Default: a quarter of --max-concurrent-rpcs (at least 1).
    #[arg(long, env = "ECR_FACADE_MAX_CONCURRENT_RPCS_PER_CALLER",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_rpcs_per_caller: Option<u32>,

    /// Most client connections open at once; past it a new connection is
    /// closed as soon as it is accepted.
    #[arg(long, env = "ECR_FACADE_MAX_CONNECTIONS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// How long a client has to take a unary answer once it is ready; past
    /// it (plus 1s) the call ends and its connection is closed: the client is
    /// not reading. Streamed answers are bounded by the call's deadline.
    #[arg(long, env = "ECR_FACADE_SEND_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub send_timeout: Duration,

    /// A new connection must complete its TLS handshake (if any), the HTTP/2
    /// preface and its first request within this time, or it is closed.
    #[arg(long, env = "ECR_FACADE_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,
}

/// The per-call bounds the RPC layer enforces.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Deadline of a call without `grpc-timeout`, and the cap of one with it.
    pub rpc_timeout: Duration,
    /// The cap of a caller's `grpc-timeout` on a transfer method.
    pub max_transfer_timeout: Duration,
    /// RPCs one connection may have in flight.
    pub per_connection: usize,
    /// RPCs one authenticated caller may have in flight; `None`: a quarter
    /// of the global limit.
    pub per_caller: Option<usize>,
    /// Time a client has to take a unary answer once it is ready.
    pub send_timeout: Duration,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            rpc_timeout: Duration::from_secs(60),
            max_transfer_timeout: Duration::from_secs(3600),
            per_connection: 128,
            per_caller: None,
            send_timeout: Duration::from_secs(10),
        }
    }
}

impl CallLimits {
    /// The per-caller share of a global limit of `global` calls.
    pub fn caller_share(&self, global: usize) -> usize {
        self.per_caller.unwrap_or(global / 4).max(1)
    }

    /// How long a call of `method` with request `headers` may take, counted
    /// from its headers: the caller's `grpc-timeout` (malformed ones are
    /// ignored) capped by the method's limit, else that limit.
    pub fn budget(&self, method: &str, headers: &HeaderMap) -> Duration {
        // Calls that move layer bytes last as long as the bytes take.
        let cap = if Action::from_method(method).is_some_and(Action::is_transfer) {
            self.max_transfer_timeout.max(self.rpc_timeout)
        } else {
            self.rpc_timeout
        };
        crate::deadline::grpc_timeout_header(headers).map_or(cap, |asked| asked.min(cap))
    }
}

/// The per-connection bounds the listener enforces.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Time a new connection has to deliver its first request.
    pub handshake_timeout: Duration,
    /// TCP keepalive idle time and probe interval of accepted sockets
    /// (`None`: the OS default, usually off).
    pub tcp_keepalive: Option<Duration>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            handshake_timeout: Duration::from_secs(10),
            tcp_keepalive: Some(Duration::from_secs(30)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPLOAD: &str = Action::PushLayer.method();
    const DESCRIBE: &str = Action::DescribeImages.method();

    fn limits() -> CallLimits {
        CallLimits {
            rpc_timeout: Duration::from_secs(60),
            max_transfer_timeout: Duration::from_secs(3600),
            ..CallLimits::default()
        }
    }

    /// The budget in seconds of a call of `method` with `grpc-timeout`
    /// `timeout` (none when `None`).
    fn budget_secs(method: &str, timeout: Option<&str>) -> u64 {
        let mut headers = HeaderMap::new();
        if let Some(value) = timeout {
            headers.insert("grpc-timeout", value.parse().unwrap());
        }
        limits().budget(method, &headers).as_secs()
    }

    #[test]
    fn rpc_timeout_caps_every_call_but_transfers() {
        assert_eq!(budget_secs(DESCRIBE, None), 60);
        assert_eq!(budget_secs(DESCRIBE, Some("2S")), 2);
        assert_eq!(budget_secs(DESCRIBE, Some("30M")), 60);
        assert_eq!(budget_secs(DESCRIBE, Some("junk")), 60);
    }

    #[test]
    fn a_transfer_may_ask_for_more_up_to_its_cap() {
        // Without a grpc-timeout a transfer gets its cap: a large layer
        // takes longer than a unary call (stalls end at the idle timeout).
        assert_eq!(budget_secs(UPLOAD, None), 3600);
        assert_eq!(budget_secs(UPLOAD, Some("30M")), 1800);
        assert_eq!(budget_secs(UPLOAD, Some("5H")), 3600);
    }

    #[test]
    fn the_flags_have_their_documented_defaults_and_refuse_zero() {
        use crate::config::Cli;
        use clap::Parser;
        let server = crate::config::parse_serve(&[]).settings().unwrap().server;
        let calls = server.calls;
        assert_eq!(calls.per_connection, 128);
        assert_eq!(calls.caller_share(1024), 256);
        assert_eq!(calls.max_transfer_timeout, Duration::from_secs(3600));
        assert_eq!(calls.send_timeout, Duration::from_secs(10));
        let connections = server.connections;
        assert_eq!(connections.max_connections, 1000);
        assert_eq!(connections.handshake_timeout, Duration::from_secs(10));
        assert_eq!(connections.tcp_keepalive, Some(Duration::from_secs(30)));
        for flag in [
            "--max-concurrent-rpcs-per-connection",
            "--max-concurrent-rpcs-per-caller",
            "--max-connections",
        ] {
            assert!(
                Cli::try_parse_from(["ecr-facade", "serve", flag, "0"]).is_err(),
                "{flag} 0 accepted"
            );
        }
    }

    #[test]
    fn the_caller_share_defaults_to_a_quarter_and_is_never_zero() {
        let limits = limits();
        assert_eq!(limits.caller_share(1024), 256);
        assert_eq!(limits.caller_share(3), 1);
        let fixed = CallLimits {
            per_caller: Some(5),
            ..limits
        };
        assert_eq!(fixed.caller_share(1024), 5);
    }
}
