//! Prometheus metrics, served as text on their own listener
//! (`--metrics-listen`).
//!
//! - `ecr_facade_rpc_requests_total{method,code}` and
//!   `ecr_facade_rpc_duration_seconds{method}`: every RPC, by final code;
//! - `ecr_facade_rpcs_in_flight`, `ecr_facade_streams_in_flight`;
//! - `ecr_facade_rpcs_shed_total`: calls refused at the concurrency limit;
//! - `ecr_facade_upstream_calls_total{action,outcome}` and
//!   `ecr_facade_upstream_duration_seconds{action}`: calls to ECR
//!   (`outcome` is `ok` or the error's `ErrorInfo.reason`);
//! - `ecr_facade_token_cache_events_total{event}`: `hit`, `miss`, `refresh`,
//!   `refresh_failure`, `stale_served`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    action: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100µs … ~3.3s, doubling.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Token-cache events counted by [`Metrics::token_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEvent {
    /// A key answered from the cache.
    Hit,
    /// A key that needed an upstream answer.
    Miss,
    /// An upstream token fetch.
    Refresh,
    /// A failed upstream token fetch.
    RefreshFailure,
    /// A still-valid cached token served because a refresh failed.
    StaleServed,
}

impl TokenEvent {
    fn label(self) -> &'static str {
        match self {
            TokenEvent::Hit => "hit",
            TokenEvent::Miss => "miss",
            TokenEvent::Refresh => "refresh",
            TokenEvent::RefreshFailure => "refresh_failure",
            TokenEvent::StaleServed => "stale_served",
        }
    }
}

/// All of the facade's metrics, in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_duration: Histograms<MethodLabels>,
    rpcs_in_flight: Gauge,
    streams_in_flight: Gauge,
    rpcs_shed: Counter,
    upstream_calls: Family<UpstreamLabels, Counter>,
    upstream_duration: Histograms<ActionLabels>,
    token_events: Family<EventLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ecr_facade");
        let metrics = Self {
            rpc_requests: Family::default(),
            rpc_duration: Family::new_with_constructor(latency_histogram),
            rpcs_in_flight: Gauge::default(),
            streams_in_flight: Gauge::default(),
            rpcs_shed: Counter::default(),
            upstream_calls: Family::default(),
            upstream_duration: Family::new_with_constructor(latency_histogram),
            token_events: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "rpc_requests",
            "RPCs answered, by method and gRPC code",
            metrics.rpc_requests.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "RPC latency, request to last byte",
            metrics.rpc_duration.clone(),
        );
        registry.register(
            "rpcs_in_flight",
            "RPCs being served",
            metrics.rpcs_in_flight.clone(),
        );
        registry.register(
            "streams_in_flight",
            "Layer-availability streams being served",
            metrics.streams_in_flight.clone(),
        );
        registry.register(
            "rpcs_shed",
            "RPCs refused at the concurrency limit",
            metrics.rpcs_shed.clone(),
        );
        registry.register(
            "upstream_calls",
            "Calls to ECR, by action and outcome",
            metrics.upstream_calls.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Latency of calls to ECR, retries included",
            metrics.upstream_duration.clone(),
        );
        registry.register(
            "token_cache_events",
            "Authorization-token cache events",
            metrics.token_events.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// A new, empty set of metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// An RPC started.
    pub fn rpc_started(&self, stream: bool) {
        self.rpcs_in_flight.inc();
        if stream {
            self.streams_in_flight.inc();
        }
    }

    /// An RPC ended with `code` after `elapsed`. `method` is a bounded label
    /// (static: nothing is allocated per call).
    pub fn rpc_finished(
        &self,
        method: &'static str,
        code: tonic::Code,
        elapsed: Duration,
        stream: bool,
    ) {
        self.rpcs_in_flight.dec();
        if stream {
            self.streams_in_flight.dec();
        }
        self.rpc_requests
            .get_or_create(&RpcLabels {
                method,
                code: code_label(code),
            })
            .inc();
        self.rpc_duration
            .get_or_create(&MethodLabels { method })
            .observe(elapsed.as_secs_f64());
    }

    /// An RPC was refused at the concurrency limit.
    pub fn rpc_shed(&self) {
        self.rpcs_shed.inc();
    }

    /// A call to ECR ended with `outcome` (`ok` or an error reason).
    pub fn upstream(&self, action: &str, outcome: &str, elapsed: Duration) {
        self.upstream_calls
            .get_or_create(&UpstreamLabels {
                action: action.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.upstream_duration
            .get_or_create(&ActionLabels {
                action: action.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a token-cache event.
    pub fn token_event(&self, event: TokenEvent) {
        self.token_events
            .get_or_create(&EventLabels {
                event: event.label(),
            })
            .inc();
    }

    /// How many `event`s so far.
    pub fn token_events(&self, event: TokenEvent) -> u64 {
        self.token_events
            .get_or_create(&EventLabels {
                event: event.label(),
            })
            .get()
    }

    /// RPCs being served now.
    pub fn rpcs_in_flight(&self) -> i64 {
        self.rpcs_in_flight.get()
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics.encode(),
                )
            }
        }),
    );
    // Prometheus scrapes with one or two connections.
    axum::serve(crate::listener::http1(listener, 64), app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// A gRPC code's label value: its name as `tonic::Code`'s `Debug` spells it
/// (`Ok`, `InvalidArgument`, …).
fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The address metrics are served on, for logs.
pub fn describe(addr: SocketAddr) -> String {
    format!("http://{addr}/metrics")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_labels_are_the_codes_debug_names() {
        for number in 0..=16 {
            let code = tonic::Code::from(number);
            assert_eq!(code_label(code), format!("{code:?}"));
        }
    }

    #[test]
    fn exposition_has_every_family_with_labels() {
        let metrics = Metrics::default();
        metrics.rpc_started(true);
        metrics.rpc_finished(
            "/ecr.v1.EcrService/BatchCheckLayerAvailability",
            tonic::Code::Ok,
            Duration::from_millis(3),
            true,
        );
        metrics.rpc_shed();
        metrics.upstream(
            "DescribeImages",
            "RepositoryNotFoundException",
            Duration::from_millis(8),
        );
        metrics.token_event(TokenEvent::Hit);
        metrics.token_event(TokenEvent::Hit);
        let text = metrics.encode();
        for line in [
            r#"ecr_facade_rpc_requests_total{method="/ecr.v1.EcrService/BatchCheckLayerAvailability",code="Ok"} 1"#,
            r#"ecr_facade_rpc_duration_seconds_count{method="/ecr.v1.EcrService/BatchCheckLayerAvailability"} 1"#,
            "ecr_facade_rpcs_in_flight 0",
            "ecr_facade_streams_in_flight 0",
            "ecr_facade_rpcs_shed_total 1",
            r#"ecr_facade_upstream_calls_total{action="DescribeImages",outcome="RepositoryNotFoundException"} 1"#,
            r#"ecr_facade_upstream_duration_seconds_count{action="DescribeImages"} 1"#,
            r#"ecr_facade_token_cache_events_total{event="hit"} 2"#,
        ] {
            assert!(text.contains(line), "missing {line} in:\n{text}");
        }
    }
}
