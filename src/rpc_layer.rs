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
//!
//! Here: the layer, admission and shedding, and `call`, which runs the
//! steps; `trace` (request id, `rpc` span), `gate` (the request side) and
//! `answer` (the answer side, `EndOnTrailers`) are its parts.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::{Instrument, Span, field};

use crate::call_bounds::CallLimits;
use crate::call_slot::{EndGuard, Ending, Slot, Unsent, Watchdog};
use crate::deadline::{self, CallDeadline};
use crate::error::Error;
use crate::listener::ConnInfo;
use crate::metrics::Metrics;

mod answer;
mod gate;
mod trace;
use answer::Answering;
use gate::{Gate, GatedRequest};

/// Header carrying the request id.
pub const REQUEST_ID: &str = "x-request-id";

// Header names looked up on every call, parsed once: a `&str` key is parsed
// again on every lookup (about 3,000 instructions per call in all).
static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static(REQUEST_ID);
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

    /// The gate that takes the call's global slot when its request has
    /// arrived (see `gate`).
    fn gate(&self) -> Gate {
        Gate {
            limiter: Arc::clone(&self.layer.limiter),
            max_concurrent: self.layer.max_concurrent,
            metrics: Arc::clone(&self.layer.metrics),
        }
    }

    /// What the call's end records and gives back: its span, start, metric
    /// label and permits.
    fn ending(
        &self,
        span: &Span,
        method: &str,
        stream: bool,
        (global, connection): (Option<OwnedSemaphorePermit>, Option<OwnedSemaphorePermit>),
        conn: Option<&ConnInfo>,
    ) -> Ending {
        Ending {
            span: span.clone(),
            start: std::time::Instant::now(),
            method: metric_label(method),
            stream,
            metrics: Arc::clone(&self.layer.metrics),
            _global: global,
            _connection: connection,
            caller: None,
            conn: conn.cloned(),
        }
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
        let request_id = trace::request_id(request.headers());
        let span = trace::rpc_span(&method, &request_id, request.headers());
        // Server streams are counted as streams, and their answers are
        // bounded by the deadline rather than --send-timeout.
        let stream = gate::is_server_streaming(&method);
        let exempt = crate::open_services::is_open_method(&method);
        let conn = request.extensions().get::<ConnInfo>();
        if let Some(conn) = conn {
            conn.mark_active();
        }
        let permits = match self.admit(exempt, &method, conn) {
            Ok(permits) => permits,
            Err(refusal) => return Box::pin(shed(&self.layer, refusal, span, method, request_id)),
        };
        // Health and reflection streams (Watch, grpcurl sessions) live as
        // long as their callers want; they hold no slot.
        let deadline = (!exempt).then(|| {
            let budget = self.layer.limits.budget(&method, request.headers());
            Instant::now() + deadline::with_margin(budget)
        });
        let gate = (!exempt && permits.0.is_none()).then(|| self.gate());
        self.layer.metrics.rpc_started(stream);
        let ending = self.ending(&span, &method, stream, permits, conn);
        let slot = Slot::new(ending, deadline);
        let request = slotted(request, &slot, gate, deadline);
        let answering = Answering {
            guard: EndGuard(slot),
            deadline,
            stream,
            request_id,
            watchdog: self.layer.watchdog.clone(),
            unsent: self.layer.unsent.clone(),
            send_timeout: self.layer.limits.send_timeout,
        };
        let response = self.inner.call(request).instrument(span);
        Box::pin(answering.answer(response))
    }
}

/// The request as the handler gets it: its body gated, and the call's
/// deadline and slot in its extensions.
fn slotted<B>(
    request: http::Request<B>,
    slot: &Slot,
    gate: Option<Gate>,
    deadline: Option<Instant>,
) -> http::Request<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
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
    request
}

fn with_request_id(mut response: http::Response<Body>, request_id: &str) -> http::Response<Body> {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER.clone(), value);
    }
    response
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

/// Why a call was shed at the global limit of `max_concurrent` calls.
fn global_limit_message(max_concurrent: usize) -> String {
    format!(
        "the facade is serving its limit of {max_concurrent} concurrent calls; retry with backoff"
    )
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
        Refusal::Global => global_limit_message(layer.max_concurrent),
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

fn grpc_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get(&GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from)
}

#[cfg(test)]
mod tests;
