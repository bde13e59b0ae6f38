//! The envelope of every RPC, as one tower layer on the gRPC server:
//!
//! - a request id (`x-request-id` accepted when well formed, else generated),
//!   echoed in the response headers;
//! - one `rpc` span — the parent of everything logged during the call — with
//!   the method, request id, trace context (W3C `traceparent` or B3), final
//!   code and latency, and one log line when the call ends;
//! - the global concurrency limit: past `max_concurrent` RPCs a call is shed
//!   at once with RESOURCE_EXHAUSTED and a `RetryInfo` (never queued);
//!   health and reflection are exempt so probes keep answering;
//! - the RPC metrics (count by code, latency, in flight).
//!
//! The end of a call is when its response body ends (trailers), so a
//! stream's latency covers its last message; a call whose body is dropped
//! first (client gone) ends as `Cancelled`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};
use tracing::{Instrument, Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::FACADE_DOMAIN;
use crate::metrics::Metrics;

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

// Header names looked up on every call, parsed once: a `&str` key is parsed
// again on every lookup (about 3,000 instructions per call in all).
static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static(REQUEST_ID);
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static B3: HeaderName = HeaderName::from_static("b3");
static B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
static B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// Back-off suggested to a shed caller.
pub const SHED_RETRY_DELAY: Duration = Duration::from_millis(250);

/// The method that answers as a server stream (counted as a stream).
const STREAMING_METHOD: &str = "/ecr.v1.EcrService/BatchCheckLayerAvailability";

/// Builds the [`Rpc`] service around the server's router.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    metrics: Arc<Metrics>,
    limiter: Arc<Semaphore>,
    max_concurrent: usize,
}

impl RpcLayer {
    /// At most `max_concurrent` RPCs (health and reflection aside) at once.
    pub fn new(metrics: Arc<Metrics>, max_concurrent: usize) -> Self {
        Self {
            metrics,
            limiter: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
        }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = Rpc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rpc {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`RpcLayer`].
#[derive(Debug, Clone)]
pub struct Rpc<S> {
    inner: S,
    layer: RpcLayer,
}

impl<S, B, ResBody> Service<http::Request<B>> for Rpc<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let request_id = request_id(request.headers());
        let trace = TraceContext::from_headers(request.headers());
        let span = tracing::info_span!(
            "rpc",
            method = %method,
            request_id = %request_id,
            trace_id = trace.trace_id.as_deref(),
            parent_span_id = trace.parent_id.as_deref(),
            code = field::Empty,
            latency_ms = field::Empty,
        );
        // Joins the caller's trace when spans are exported.
        if crate::telemetry::exporting() {
            let _ = span.set_parent(crate::telemetry::parent_from_headers(request.headers()));
        }
        let stream = method == STREAMING_METHOD;
        let exempt = crate::security::is_open_method(&method);
        let permit = if exempt {
            None
        } else {
            match Arc::clone(&self.layer.limiter).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => return Box::pin(shed(&self.layer, span, method, request_id)),
            }
        };
        self.layer.metrics.rpc_started(stream);
        let mut end = RpcEnd {
            span: span.clone(),
            start: Instant::now(),
            method: metric_label(&method),
            stream,
            metrics: Arc::clone(&self.layer.metrics),
            permit,
            done: false,
        };
        let response = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let mut response = response.await?.map(Body::new);
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response
                    .headers_mut()
                    .insert(REQUEST_ID_HEADER.clone(), value);
            }
            // Errors are trailers-only responses: the code is in the headers.
            if let Some(code) = grpc_code(response.headers()) {
                end.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(EndOnTrailers {
                    inner: body,
                    end: Some(end),
                })
            }))
        })
    }
}

/// The paths of the methods served, as metric labels (made once).
static SERVED_METHODS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let ecr = crate::security::ACTIONS
        .iter()
        .map(|action| &*format!("/ecr.v1.EcrService/{action}").leak());
    let open = [
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ];
    ecr.chain(open).collect()
});

/// The `method` label of the metrics: the path for the methods served,
/// `unknown` for anything else (a client must not mint label values).
fn metric_label(path: &str) -> &'static str {
    SERVED_METHODS
        .iter()
        .find(|served| **served == path)
        .copied()
        .unwrap_or("unknown")
}

/// Refuses a call at the concurrency limit, without queueing it.
fn shed<E: Send + 'static>(
    layer: &RpcLayer,
    span: Span,
    method: String,
    request_id: String,
) -> impl Future<Output = Result<http::Response<Body>, E>> + Send + use<E> {
    layer.metrics.rpc_shed();
    let status = tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        format!(
            "the facade is serving its limit of {} concurrent calls; retry with backoff",
            layer.max_concurrent
        ),
        ErrorDetails::with_error_info("OVERLOADED", FACADE_DOMAIN, [])
            .set_retry_info(Some(SHED_RETRY_DELAY))
            .to_owned(),
    );
    span.record("code", field::debug(tonic::Code::ResourceExhausted));
    tracing::warn!(parent: &span, method, "rpc shed at the concurrency limit");
    let mut response = status.into_http::<Body>();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER.clone(), value);
    }
    std::future::ready(Ok(response))
}

/// The caller's request id when well formed (1–128 visible ASCII
/// characters), else a new one.
fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Trace context from W3C `traceparent`, else B3 (single `b3` header or
/// `x-b3-traceid`/`x-b3-spanid`).
#[derive(Debug, Default, PartialEq, Eq)]
struct TraceContext {
    trace_id: Option<String>,
    parent_id: Option<String>,
}

fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit())
}

impl TraceContext {
    fn from_headers(headers: &http::HeaderMap) -> Self {
        let get = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(parent) = get(&TRACEPARENT) {
            let parts: Vec<&str> = parent.trim().split('-').collect();
            if let [version, trace, span, flags] = parts[..]
                && is_hex(version, 2)
                && is_hex(trace, 32)
                && is_hex(span, 16)
                && is_hex(flags, 2)
                && trace.bytes().any(|b| b != b'0')
            {
                return Self {
                    trace_id: Some(trace.to_ascii_lowercase()),
                    parent_id: Some(span.to_ascii_lowercase()),
                };
            }
        }
        let (trace, span) = match get(&B3) {
            Some(single) => {
                let mut parts = single.split('-');
                (parts.next(), parts.next())
            }
            None => (get(&B3_TRACE_ID), get(&B3_SPAN_ID)),
        };
        match (trace, span) {
            (Some(trace), Some(span))
                if (is_hex(trace, 32) || is_hex(trace, 16)) && is_hex(span, 16) =>
            {
                Self {
                    trace_id: Some(trace.to_ascii_lowercase()),
                    parent_id: Some(span.to_ascii_lowercase()),
                }
            }
            _ => Self::default(),
        }
    }
}

/// Ends one RPC exactly once: log line, metrics, concurrency permit.
struct RpcEnd {
    span: Span,
    start: Instant,
    method: &'static str,
    stream: bool,
    metrics: Arc<Metrics>,
    permit: Option<OwnedSemaphorePermit>,
    done: bool,
}

impl RpcEnd {
    fn finish(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        self.permit.take();
        self.metrics
            .rpc_finished(self.method, code, elapsed, self.stream);
        self.span.record("code", field::debug(code));
        self.span
            .record("latency_ms", elapsed.as_secs_f64() * 1000.0);
        match code {
            // Probes call every few seconds per pod: their successes are
            // debug-level noise.
            tonic::Code::Ok if self.method.starts_with("/grpc.health.") => {
                tracing::debug!(parent: &self.span, "rpc finished")
            }
            tonic::Code::Ok => tracing::info!(parent: &self.span, "rpc finished"),
            _ => tracing::warn!(parent: &self.span, "rpc failed"),
        }
    }
}

impl Drop for RpcEnd {
    fn drop(&mut self) {
        // The response body was dropped before its trailers: the client went
        // away (or the connection broke) mid-call.
        self.finish(tonic::Code::Cancelled);
    }
}

/// A response body that ends its RPC when the trailers go out.
struct EndOnTrailers {
    inner: Body,
    end: Option<RpcEnd>,
}

impl http_body::Body for EndOnTrailers {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|t| grpc_code(t).unwrap_or(tonic::Code::Unknown)),
            Poll::Ready(Some(Err(status))) => Some(status.code()),
            Poll::Ready(None) => Some(tonic::Code::Unknown),
            Poll::Pending => None,
        };
        if let Some(code) = code
            && let Some(mut end) = self.end.take()
        {
            end.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn grpc_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get(&GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_well_formed_request_id_is_kept_else_one_is_made() {
        assert_eq!(request_id(&headers(&[(REQUEST_ID, "abc-123")])), "abc-123");
        for bad in ["", "has space", &"x".repeat(129)] {
            let made = request_id(&headers(&[(REQUEST_ID, bad)]));
            assert_ne!(made, bad);
            assert!(uuid::Uuid::parse_str(&made).is_ok());
        }
        assert!(uuid::Uuid::parse_str(&request_id(&http::HeaderMap::new())).is_ok());
    }

    #[test]
    fn only_served_methods_become_metric_labels() {
        assert_eq!(
            metric_label("/ecr.v1.EcrService/DescribeImages"),
            "/ecr.v1.EcrService/DescribeImages"
        );
        assert_eq!(
            metric_label("/grpc.health.v1.Health/Check"),
            "/grpc.health.v1.Health/Check"
        );
        assert_eq!(metric_label("/ecr.v1.EcrService/Nope"), "unknown");
        assert_eq!(metric_label("/made/up/path-123"), "unknown");
        assert_eq!(metric_label("/grpc.health.v1.Health/Made-up"), "unknown");
    }

    #[test]
    fn every_rpc_of_the_service_has_its_own_label() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap();
        let mut seen = 0;
        for file in set.file.iter().filter(|f| f.package() == "ecr.v1") {
            for service in &file.service {
                for method in &service.method {
                    let path = format!("/ecr.v1.{}/{}", service.name(), method.name());
                    assert_eq!(metric_label(&path), path);
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, crate::security::ACTIONS.len());
    }

    #[test]
    fn w3c_then_b3_trace_context() {
        let w3c = TraceContext::from_headers(&headers(&[(
            "traceparent",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        )]));
        assert_eq!(
            w3c.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(w3c.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        let zero = TraceContext::from_headers(&headers(&[(
            "traceparent",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        )]));
        assert_eq!(zero, TraceContext::default());
        let single = TraceContext::from_headers(&headers(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1",
        )]));
        assert_eq!(single.parent_id.as_deref(), Some("e457b5a2e4d86bd1"));
        let multi = TraceContext::from_headers(&headers(&[
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ]));
        assert_eq!(multi.trace_id.as_deref(), Some("463ac35c9f6413ad"));
        assert_eq!(
            TraceContext::from_headers(&headers(&[("traceparent", "junk")])),
            TraceContext::default()
        );
    }
}
