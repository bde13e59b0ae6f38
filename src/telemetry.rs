//! Logging and tracing: the global subscriber (text or JSON lines) and,
//! with `--otlp-endpoint`, OpenTelemetry span export over OTLP/gRPC.
//!
//! The RPC spans take their parent from the caller's W3C `traceparent`, or
//! its B3 headers when it sends no `traceparent` ([`parent_from_headers`]),
//! so the facade's spans join the caller's trace.
//!
//! Whatever `RUST_LOG` says, the AWS SDK's crates log at most at `debug`
//! ([`secret_safe_targets`]): at `trace` they print whole HTTP requests and
//! responses, i.e. GetAuthorizationToken's `docker login` password and the
//! request's session token.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

mod b3;

/// Whether spans are exported (set once by [`init`] with an endpoint).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: without an exporter a span's OpenTelemetry
/// parent has no use, and extracting it costs every call. Only [`init`]
/// sets it: a program that installs its own OpenTelemetry layer instead
/// gets no parents from callers' `traceparent`.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Keeps the span exporter alive; [`Telemetry::shutdown`] flushes it.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes the spans not yet exported.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "flushing spans to the otlp endpoint failed");
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber; `RUST_LOG` overrides the default `info`.
/// Text lines are coloured only on a terminal. With `otlp_endpoint`, spans
/// are also exported there (OTLP over gRPC, batched).
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = otlp_endpoint.map(otlp_provider).transpose()?;
    let otel = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("ecr-facade")));
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .with(filter)
        .with(secret_safe_targets())
        .try_init()?;
    EXPORTING.store(provider.is_some(), Ordering::Relaxed);
    Ok(Telemetry { provider })
}

/// The crates whose `trace` events print request or response bodies or
/// headers (the SDK's orchestrator logs "read HTTP response body" and the
/// deserialized output, SigV4 the request it signs): capped at `debug`.
const BODY_LOGGING_CRATES: [&str; 8] = [
    "aws_config",
    "aws_runtime",
    "aws_sdk_ecr",
    "aws_sigv4",
    "aws_smithy_http_client",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_types",
];

/// A second global filter (both must enable an event): everything passes
/// but the SDK's `trace` events. A separate filter, not `RUST_LOG`
/// directives, so it only ever lowers a level: `RUST_LOG=warn` stays warn.
pub fn secret_safe_targets() -> Targets {
    BODY_LOGGING_CRATES.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |targets, name| targets.with_target(*name, LevelFilter::DEBUG),
    )
}

fn otlp_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("ecr-facade")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The caller's trace context, to parent the RPC span on: W3C
/// `traceparent`/`tracestate` when valid, else B3 ([`b3`]).
pub fn parent_from_headers(headers: &http::HeaderMap) -> opentelemetry::Context {
    let w3c = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if w3c.span().span_context().is_valid() {
        return w3c;
    }
    match b3::span_context(headers) {
        Some(parent) => opentelemetry::Context::new().with_remote_span_context(parent),
        None => w3c,
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    use super::b3::tests::headers;

    fn parent_ids(pairs: &[(&'static str, &str)]) -> (String, String) {
        let parent = parent_from_headers(&headers(pairs));
        let context = parent.span().span_context().clone();
        assert!(context.is_valid() && context.is_remote(), "{pairs:?}");
        (
            context.trace_id().to_string(),
            context.span_id().to_string(),
        )
    }

    #[test]
    fn b3_is_the_parent_when_there_is_no_traceparent() {
        let b3 = ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1");
        assert_eq!(
            parent_ids(&[b3]),
            (
                "80f198ee56343ba864fe8b2a57d3eff7".into(),
                "e457b5a2e4d86bd1".into()
            )
        );
        let multi = [
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ];
        assert_eq!(parent_ids(&multi).1, "e457b5a2e4d86bd1");
        // A valid traceparent wins; an invalid one falls back to B3.
        let w3c = (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        assert_eq!(parent_ids(&[w3c, b3]).1, "00f067aa0ba902b7");
        assert_eq!(
            parent_ids(&[("traceparent", "00-zz-01"), b3]).1,
            "e457b5a2e4d86bd1"
        );
        let none = parent_from_headers(&http::HeaderMap::new());
        assert!(!none.span().span_context().is_valid());
    }

    #[test]
    fn the_sdk_logs_at_most_at_debug_and_everything_else_as_rust_log_says() {
        let targets = secret_safe_targets();
        for sdk in [
            "aws_smithy_runtime::client::orchestrator::http",
            "aws_smithy_runtime::client::orchestrator",
            "aws_sigv4::http_request::sign",
        ] {
            assert!(!targets.would_enable(sdk, &Level::TRACE), "{sdk}");
            assert!(targets.would_enable(sdk, &Level::DEBUG), "{sdk}");
        }
        for other in ["ecr_facade::service", "h2::proto::connection", "hyper"] {
            assert!(targets.would_enable(other, &Level::TRACE), "{other}");
        }
    }
}
