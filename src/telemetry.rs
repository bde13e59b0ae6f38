//! Logging: the subscriber (text or JSON) and one span per RPC.

use std::time::Duration;

use tower_http::classify::{GrpcErrorsAsFailures, GrpcFailureClass, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::{Span, field};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; `RUST_LOG` overrides the default `info`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

/// The tower layer that opens one `rpc` span per call, with the method, the
/// final gRPC code and the latency.
pub type RpcTraceLayer = TraceLayer<
    SharedClassifier<GrpcErrorsAsFailures>,
    fn(&http::Request<tonic::body::Body>) -> Span,
    (),
    fn(&http::Response<tonic::body::Body>, Duration, &Span),
    (),
    fn(Option<&http::HeaderMap>, Duration, &Span),
    fn(GrpcFailureClass, Duration, &Span),
>;

/// Builds the [`RpcTraceLayer`].
pub fn rpc_trace_layer() -> RpcTraceLayer {
    TraceLayer::new_for_grpc()
        .make_span_with(make_span as fn(&http::Request<tonic::body::Body>) -> Span)
        .on_request(())
        .on_response(on_response as fn(&http::Response<tonic::body::Body>, Duration, &Span))
        .on_body_chunk(())
        .on_eos(on_eos as fn(Option<&http::HeaderMap>, Duration, &Span))
        .on_failure(on_failure as fn(GrpcFailureClass, Duration, &Span))
}

fn make_span(request: &http::Request<tonic::body::Body>) -> Span {
    tracing::info_span!(
        "rpc",
        method = %request.uri().path(),
        code = field::Empty,
        latency_ms = field::Empty,
    )
}

fn grpc_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from)
}

fn finish(span: &Span, code: tonic::Code, latency: Duration) {
    span.record("code", field::debug(code));
    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
    if code == tonic::Code::Ok {
        tracing::info!(parent: span, "rpc finished");
    } else {
        tracing::warn!(parent: span, "rpc failed");
    }
}

/// A trailers-only response (every error tonic answers) carries its code in
/// the headers; OK responses carry it in the trailers, seen in `on_eos`.
fn on_response(response: &http::Response<tonic::body::Body>, latency: Duration, span: &Span) {
    if let Some(code) = grpc_code(response.headers())
        && code == tonic::Code::Ok
    {
        finish(span, code, latency);
    }
}

fn on_eos(trailers: Option<&http::HeaderMap>, duration: Duration, span: &Span) {
    let code = trailers.and_then(grpc_code).unwrap_or(tonic::Code::Unknown);
    if code == tonic::Code::Ok {
        finish(span, code, duration);
    }
}

fn on_failure(class: GrpcFailureClass, latency: Duration, span: &Span) {
    let code = match class {
        GrpcFailureClass::Status(status) => tonic::Code::from(status.code_raw()),
        _ => tonic::Code::Unknown,
    };
    finish(span, code, latency);
}
