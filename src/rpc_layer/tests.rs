//! Unit tests of the RPC envelope: request ids, trace context, metric
//! labels, and a stream ended by the layer at its deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tonic::body::Body;
use tracing::Span;

use super::answer::{EndOnTrailers, OVERRUN};
use super::trace::{TraceContext, request_id};
use super::{REQUEST_ID, metric_label};
use crate::call_slot::{EndGuard, Ending, Slot};
use crate::metrics::Metrics;

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
    let never = futures::stream::pending::<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>();
    let mut body = EndOnTrailers::new(
        Body::new(http_body_util::StreamBody::new(never)),
        EndGuard(slot),
    );
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
