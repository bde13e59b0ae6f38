//! Who a call is in the logs: its request id (the caller's `x-request-id`
//! when well formed, else a new one) and its `rpc` span, joined to the
//! caller's trace (W3C `traceparent`, else B3).

use http::HeaderName;
use tracing::{Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::REQUEST_ID_HEADER;

// Parsed once, as `REQUEST_ID_HEADER` (see there).
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static B3: HeaderName = HeaderName::from_static("b3");
static B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
static B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");

/// The `rpc` span of a call — the parent of everything logged during it —
/// with its method, request id and the caller's trace context; `code` and
/// `latency_ms` are recorded when the call ends.
pub(super) fn rpc_span(method: &str, request_id: &str, headers: &http::HeaderMap) -> Span {
    let trace = TraceContext::from_headers(headers);
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
        let _ = span.set_parent(crate::telemetry::parent_from_headers(headers));
    }
    span
}

/// The caller's request id when well formed (1–128 visible ASCII
/// characters), else a new one.
pub(super) fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Trace context from W3C `traceparent`, else B3 (single `b3` header or
/// `x-b3-traceid`/`x-b3-spanid`).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct TraceContext {
    pub trace_id: Option<String>,
    pub parent_id: Option<String>,
}

fn is_hex(value: &str, len: usize) -> bool {
    value.len() == len && value.bytes().all(|b| b.is_ascii_hexdigit())
}

impl TraceContext {
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
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
