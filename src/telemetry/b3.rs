//! B3 trace context (Zipkin's `b3` single header, or `x-b3-traceid` +
//! `x-b3-spanid` + `x-b3-sampled`/`x-b3-flags`), read as an OpenTelemetry
//! remote parent for callers — meshes such as Linkerd and older Istio —
//! that send B3 instead of W3C `traceparent`.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// The caller's B3 span context, if its headers carry a valid one.
pub fn span_context(headers: &http::HeaderMap) -> Option<SpanContext> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (trace, span, sampled) = match get("b3") {
        Some(single) => {
            // {trace}-{span}[-{sampling}[-{parent}]]; a lone sampling flag
            // carries no context.
            let mut parts = single.trim().split('-');
            (parts.next()?, parts.next()?, parts.next())
        }
        None => {
            let debug = get("x-b3-flags").map(str::trim) == Some("1");
            let sampled = if debug {
                Some("d")
            } else {
                get("x-b3-sampled")
            };
            (get("x-b3-traceid")?, get("x-b3-spanid")?, sampled)
        }
    };
    let trace_id = trace_id(trace.trim())?;
    let span_id = span_id(span.trim())?;
    let flags = match sampled.map(str::trim) {
        Some("0" | "false") => TraceFlags::default(),
        // "1", "true", "d" (debug), or absent: a deferred decision is ours,
        // and the facade records what it exports.
        _ => TraceFlags::SAMPLED,
    };
    Some(SpanContext::new(
        trace_id,
        span_id,
        flags,
        true,
        TraceState::default(),
    ))
}

/// A 128-bit trace id, or a 64-bit one (B3 allows both) widened with zeros.
fn trace_id(hex: &str) -> Option<TraceId> {
    if !(hex.len() == 32 || hex.len() == 16) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = TraceId::from_hex(hex).ok()?;
    (id != TraceId::INVALID).then_some(id)
}

fn span_id(hex: &str) -> Option<SpanId> {
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = SpanId::from_hex(hex).ok()?;
    (id != SpanId::INVALID).then_some(id)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Request headers of `pairs` (also used by the telemetry tests).
    pub(in crate::telemetry) fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (http::HeaderName::from_static(name), value.parse().unwrap()))
            .collect()
    }

    #[test]
    fn the_single_header_names_trace_span_and_sampling() {
        let context = span_context(&headers(&[(
            "b3",
            "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
        )]))
        .unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "80f198ee56343ba864fe8b2a57d3eff7"
        );
        assert_eq!(context.span_id().to_string(), "e457b5a2e4d86bd1");
        assert!(context.is_sampled() && context.is_remote());
        let unsampled =
            span_context(&headers(&[("b3", "80f198ee56343ba8-e457b5a2e4d86bd1-0")])).unwrap();
        assert_eq!(
            unsampled.trace_id().to_string(),
            "000000000000000080f198ee56343ba8"
        );
        assert!(!unsampled.is_sampled());
    }

    #[test]
    fn the_multi_headers_name_trace_span_and_sampling() {
        let context = span_context(&headers(&[
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-sampled", "0"),
        ]))
        .unwrap();
        assert_eq!(context.span_id().to_string(), "e457b5a2e4d86bd1");
        assert!(!context.is_sampled());
        let debug = span_context(&headers(&[
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-sampled", "0"),
            ("x-b3-flags", "1"),
        ]))
        .unwrap();
        assert!(debug.is_sampled());
    }

    #[test]
    fn malformed_or_partial_b3_is_no_context() {
        for bad in [
            vec![("b3", "1")],
            vec![("b3", "0")],
            vec![("b3", "zz-e457b5a2e4d86bd1")],
            vec![("b3", "00000000000000000000000000000000-e457b5a2e4d86bd1")],
            vec![("b3", "80f198ee56343ba864fe8b2a57d3eff7-0000000000000000")],
            vec![("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86b")],
            vec![("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7")],
            vec![("x-b3-spanid", "e457b5a2e4d86bd1")],
            vec![
                ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff"),
                ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ],
        ] {
            assert!(span_context(&headers(&bad)).is_none(), "{bad:?}");
        }
    }
}
