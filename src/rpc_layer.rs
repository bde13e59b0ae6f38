//! The envelope of every RPC, as one tower layer on the gRPC server:
//!
//! - a request id (`x-request-id` accepted when well formed, else generated),
//!   echoed in the response headers;
//! - one `rpc` span — the parent of everything logged during the call — with
//!   the method, request id, trace context (W3C `traceparent` or B3), final
//!   code and latency, and one log line when the call ends;
//! - the global concurrency limit: past `max_concurrent` RPCs a call is shed
//!   at once with RESOURCE_EXHAUSTED and a `RetryInfo` (never queued) when
//!   its request has arrived (`gate`: headers alone take no global slot),
//!   and a call past its connection's cap (`CallLimits::per_connection`)
//!   when its headers arrive;
//!   health and reflection are exempt so probes keep answering;
//!   a unary call gives its global slot back once its handler has answered
//!   (what is left is sending an answer already in memory, bounded by the
//!   connection's slot and `--send-timeout`), a stream when it ends;
//! - the call's deadline, fixed when its headers arrive
//!   ([`CallLimits::budget`]) and handed to the handler as a
//!   [`CallDeadline`]: receiving the request and running the handler are cut
//!   off at it (DEADLINE_EXCEEDED), and sending the answer is too — by the
//!   [`Watchdog`], which gives the slot back even when the client never
//!   reads (see `call_slot`);
//! - the RPC metrics (count by code, latency, in flight).
//!
//! The end of a call is when its response body ends (trailers), so a
//! stream's latency covers its last message; a call whose body is dropped
//! first, or whose request body broke (client gone), ends as `Cancelled`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::{Instrument, Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::call_bounds::CallLimits;
use crate::call_slot::{EndGuard, Ending, Slot, Unsent, Watchdog};
use crate::deadline::{self, CallDeadline};
use crate::error::Error;
use crate::listener::ConnInfo;
use crate::metrics::Metrics;

mod gate;
use gate::{Gate, GatedRequest};

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

/// Builds the [`Rpc`] service around the server's router.
#[derive(Debug, Clone)]
pub struct RpcLayer {
    metrics: Arc<Metrics>,
    limiter: Arc<Semaphore>,
    max_concurrent: usize,
    limits: CallLimits,
    watchdog: Watchdog,
    /// Answered unary calls waiting for their client, at most
    /// `max_concurrent` (as many as held their global slot before they gave
    /// it back at the answer, so no more memory waits than then).
    unsent: Unsent,
}

impl RpcLayer {
    /// At most `max_concurrent` RPCs (health and reflection aside) at once,
    /// each bounded by the default [`CallLimits`].
    pub fn new(metrics: Arc<Metrics>, max_concurrent: usize) -> Self {
        Self {
            metrics,
            limiter: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            limits: CallLimits::default(),
            watchdog: Watchdog::default(),
            unsent: Unsent::new(max_concurrent),
        }
    }

    /// The same layer with `limits` on every call.
    pub fn with_limits(self, limits: CallLimits) -> Self {
        Self { limits, ..self }
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

/// Why a call was refused before it started.
enum Refusal {
    Global,
    Connection(usize),
}

impl<S> Rpc<S> {
    /// The permits a call takes with its headers: its connection's, and the
    /// global one for client-streaming methods only (the others take it
    /// when their request has arrived, see `gate`); exempt methods none.
    fn admit(
        &self,
        exempt: bool,
        method: &str,
        conn: Option<&ConnInfo>,
    ) -> Result<(Option<OwnedSemaphorePermit>, Option<OwnedSemaphorePermit>), Refusal> {
        if exempt {
            return Ok((None, None));
        }
        let global = if gate::is_client_streaming(method) {
            let permit = Arc::clone(&self.layer.limiter)
                .try_acquire_owned()
                .map_err(|_| Refusal::Global)?;
            Some(permit)
        } else {
            None
        };
        let connection = match conn {
            Some(conn) => Some(
                conn.try_call()
                    .ok_or(Refusal::Connection(self.layer.limits.per_connection))?,
            ),
            None => None,
        };
        Ok((global, connection))
    }
}

impl<S, B, ResBody> Service<http::Request<B>> for Rpc<S>
where
    S: Service<http::Request<Body>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<tonic::codegen::StdError>,
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
        // Server streams are counted as streams, and their answers are
        // bounded by the deadline rather than --send-timeout.
        let stream = gate::is_server_streaming(&method);
        let exempt = crate::open_services::is_open_method(&method);
        let conn = request.extensions().get::<ConnInfo>();
        if let Some(conn) = conn {
            conn.mark_active();
        }
        let (global, connection) = match self.admit(exempt, &method, conn) {
            Ok(permits) => permits,
            Err(refusal) => return Box::pin(shed(&self.layer, refusal, span, method, request_id)),
        };
        // Health and reflection streams (Watch, grpcurl sessions) live as
        // long as their callers want; they hold no slot.
        let deadline = (!exempt).then(|| {
            let budget = self.layer.limits.budget(&method, request.headers());
            Instant::now() + deadline::with_margin(budget)
        });
        let gate = (!exempt && global.is_none()).then(|| Gate {
            limiter: Arc::clone(&self.layer.limiter),
            max_concurrent: self.layer.max_concurrent,
            metrics: Arc::clone(&self.layer.metrics),
        });
        self.layer.metrics.rpc_started(stream);
        let ending = Ending {
            span: span.clone(),
            start: std::time::Instant::now(),
            method: metric_label(&method),
            stream,
            metrics: Arc::clone(&self.layer.metrics),
            _global: global,
            _connection: connection,
            caller: None,
            conn: conn.cloned(),
        };
        let slot = Slot::new(ending, deadline);
        let mut request = request.map(|body| {
            Body::new(GatedRequest {
                inner: body,
                slot: slot.clone(),
                gate,
            })
        });

        if let Some(at) = deadline {
            request.extensions_mut().insert(CallDeadline(at));
        }
        request.extensions_mut().insert(slot.clone());
        let guard = EndGuard(slot);
        let watchdog = self.layer.watchdog.clone();
        let unsent = self.layer.unsent.clone();
        let send_timeout = self.layer.limits.send_timeout;
        let response = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let response = match deadline {
                Some(at) => match tokio::time::timeout_at(at, response).await {
                    Ok(response) => response?,
                    // The request never arrived whole, or the handler
                    // overran: it is dropped here.
                    Err(_) => {
                        guard.0.finish(tonic::Code::DeadlineExceeded);
                        return Ok(with_request_id(
                            deadline_status().into_http::<Body>(),
                            &request_id,
                        ));
                    }
                },
                None => response.await?,
            };
            let response = with_request_id(response.map(Body::new), &request_id);
            // Errors are trailers-only responses: the code is in the headers.
            if let Some(code) = grpc_code(response.headers()) {
                guard.0.finish(code);
                return Ok(response);
            }
            if deadline.is_some() {
                // A unary answer is ready: taking it is up to the client,
                // within --send-timeout. Its work is done, so its global
                // slot goes back now (a client that never reads must not
                // starve the others); its connection's slot stays until the
                // body ends, and past `max_concurrent` waiting answers the
                // oldest is ended. A stream keeps its slot: its handler
                // works on.
                let send_by = (!stream).then(|| Instant::now() + send_timeout);
                watchdog.watch(&guard.0, send_by);
                if !stream {
                    guard.0.answer_ready(&unsent);
                }
            }
            Ok(response.map(|body| {
                Body::new(EndOnTrailers {
                    inner: body,
                    guard: Some(guard),
                    ended: false,
                    overrun: None,
                })
            }))
        })
    }
}

fn with_request_id(mut response: http::Response<Body>, request_id: &str) -> http::Response<Body> {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER.clone(), value);
    }
    response
}

/// The answer of a call whose deadline passed in the layer (before its
/// handler answered, or while its answer was being sent).
fn deadline_status() -> tonic::Status {
    Error::deadline_exceeded(
        "the call did not finish within its deadline (receiving the request, handling it \
         and sending the answer all count)",
    )
    .to_status()
}

/// The paths of the methods served, as metric labels (made once).
static SERVED_METHODS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let ecr = crate::model::Action::ALL
        .iter()
        .map(|action| action.method());
    ecr.chain(crate::open_services::OPEN_METHODS.iter().copied())
        .collect()
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

/// RESOURCE_EXHAUSTED with `RetryInfo`: the answer of a shed call.
pub(crate) fn shed_status(message: String) -> tonic::Status {
    Error::shed(message).to_status()
}

/// Refuses a call at a concurrency limit, without queueing it.
fn shed<E: Send + 'static>(
    layer: &RpcLayer,
    refusal: Refusal,
    span: Span,
    method: String,
    request_id: String,
) -> impl Future<Output = Result<http::Response<Body>, E>> + Send + use<E> {
    layer.metrics.rpc_shed();
    let message = match refusal {
        Refusal::Global => format!(
            "the facade is serving its limit of {} concurrent calls; retry with backoff",
            layer.max_concurrent
        ),
        Refusal::Connection(limit) => format!(
            "this connection has {limit} calls in flight, its limit; retry with backoff \
             or spread calls over more connections"
        ),
    };
    span.record("code", field::debug(tonic::Code::ResourceExhausted));
    tracing::warn!(parent: &span, method, reason = %message, "rpc shed at a concurrency limit");
    let response = with_request_id(shed_status(message).into_http::<Body>(), &request_id);
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

/// How long past its deadline a stream whose handler keeps it open (while
/// the client reads) may run before the layer ends it: long enough for a
/// handler that watches the deadline itself to answer with its own details.
const OVERRUN: Duration = Duration::from_millis(100);

/// A response body that ends its RPC when the trailers go out. It ends the
/// call with DEADLINE_EXCEEDED trailers itself when the watchdog did (the
/// client was not reading), or when the handler keeps the stream open
/// [`OVERRUN`] past the deadline.
struct EndOnTrailers {
    inner: Body,
    guard: Option<EndGuard>,
    ended: bool,
    /// Started when the inner body first waits (a unary answer never does,
    /// so it costs no timer).
    overrun: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl EndOnTrailers {
    fn end_with_deadline(
        &mut self,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>> {
        self.ended = true;
        if let Some(guard) = self.guard.take() {
            guard.0.finish(tonic::Code::DeadlineExceeded);
        }
        let mut trailers = deadline_status().into_http::<Body>().into_parts().0.headers;
        trailers.remove(http::header::CONTENT_TYPE);
        Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
    }
}

impl http_body::Body for EndOnTrailers {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.guard.as_ref().is_some_and(|guard| guard.0.expired()) {
            return self.end_with_deadline();
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|t| grpc_code(t).unwrap_or(tonic::Code::Unknown)),
            Poll::Ready(Some(Err(status))) => Some(status.code()),
            Poll::Ready(None) => Some(tonic::Code::Unknown),
            Poll::Pending => {
                let deadline = self.guard.as_ref().and_then(|guard| guard.0.deadline());
                if let Some(deadline) = deadline {
                    let timer = self.overrun.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep_until(deadline + OVERRUN))
                    });
                    if timer.as_mut().poll(cx).is_ready() {
                        return self.end_with_deadline();
                    }
                }
                None
            }
        };
        if let Some(code) = code
            && let Some(guard) = self.guard.take()
        {
            guard.0.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
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

    #[tokio::test(start_paused = true)]
    async fn a_stream_held_open_past_its_deadline_is_ended_by_the_layer() {
        let metrics = Metrics::new();
        metrics.rpc_started(true);
        let ending = Ending {
            span: Span::none(),
            start: std::time::Instant::now(),
            method: "unknown",
            stream: true,
            metrics: Arc::clone(&metrics),
            _global: None,
            _connection: None,
            caller: None,
            conn: None,
        };
        let deadline = Instant::now() + Duration::from_secs(1);
        let slot = Slot::new(ending, Some(deadline));
        let never =
            futures::stream::pending::<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>();
        let mut body = EndOnTrailers {
            inner: Body::new(http_body_util::StreamBody::new(never)),
            guard: Some(EndGuard(slot)),
            ended: false,
            overrun: None,
        };
        let frame = http_body_util::BodyExt::frame(&mut body)
            .await
            .unwrap()
            .unwrap();
        assert!(Instant::now() >= deadline + OVERRUN);
        assert_eq!(frame.into_trailers().unwrap()["grpc-status"], "4");
        assert!(http_body_util::BodyExt::frame(&mut body).await.is_none());
        assert_eq!(metrics.rpcs_in_flight(), 0);
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
        assert_eq!(seen, crate::model::Action::ALL.len());
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
