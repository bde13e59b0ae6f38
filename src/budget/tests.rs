use std::convert::Infallible;

use http_body_util::BodyExt;
use tonic::Code;
use tonic::body::Body;
use tonic_types::StatusExt;
use tower::{Layer, Service, ServiceExt};

use super::layer::Framing;
use super::*;
use crate::error::{REASON_BUDGET_EXHAUSTED, REASON_MESSAGE_TOO_LARGE};

const CREATE: &str = "/ecr.v1.EcrService/CreateRepository";
const CHECK: &str = "/ecr.v1.EcrService/BatchCheckLayerAvailability";
const HEALTH: &str = "/grpc.health.v1.Health/Check";

/// One gRPC message: the 5-byte prefix and `length` bytes.
fn message(length: usize) -> Vec<u8> {
    let mut bytes = vec![0];
    bytes.extend_from_slice(&u32::try_from(length).unwrap().to_be_bytes());
    bytes.resize(5 + length, b'x');
    bytes
}

#[test]
fn framing_finds_every_message_however_the_bytes_are_split() {
    let lengths = [3, 0, 70_000, 1];
    let body: Vec<u8> = lengths.iter().flat_map(|&n| message(n)).collect();
    for chunk in [1, 2, 4, 5, 6, 7, 1000, body.len()] {
        let mut framing = Framing::default();
        let mut seen = Vec::new();
        for piece in body.chunks(chunk) {
            framing
                .feed(piece, |length| {
                    seen.push(length);
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(seen, lengths, "chunks of {chunk}");
        assert!(!framing.mid_message());
    }
    let mut framing = Framing::default();
    framing.feed(&message(10)[..8], |_| Ok(())).unwrap();
    assert!(framing.mid_message());
}

#[test]
fn limits_come_from_the_table_and_the_digest_count() {
    let settings = BudgetSettings::default();
    assert_eq!(settings.max_layer_digests, 2_000);
    assert_eq!(settings.message_limit(CREATE), SMALL_MESSAGE);
    assert_eq!(settings.message_limit(HEALTH), SMALL_MESSAGE);
    assert_eq!(
        settings.message_limit(CHECK),
        2_000 * LAYER_DIGEST_WIRE_BYTES + 64 * 1024
    );
    assert_eq!(
        settings.message_limit("/ecr.v1.EcrService/UploadLayerPart"),
        20 * 1024 * 1024 + 64 * 1024
    );
    // Only ecr.v1 methods have rows.
    assert_eq!(
        settings.message_limit("/other.Service/UploadLayerPart"),
        SMALL_MESSAGE
    );
    assert_eq!(settings.largest_message(), 20 * 1024 * 1024 + 64 * 1024);
    // The default digest count's worst case is a quarter of the budget.
    assert!(settings.message_limit(CHECK) * 4 <= DEFAULT_BUDGET);
    assert_eq!(settings.check(), Ok(()));
}

#[test]
fn settings_a_request_could_never_fit_are_refused() {
    let too_many = BudgetSettings {
        max_layer_digests: 10_000,
        ..BudgetSettings::default()
    };
    let error = too_many.check().unwrap_err().to_string();
    assert!(
        error.starts_with("BatchCheckLayerAvailability's requests may take 40095536 bytes"),
        "{error}"
    );
    assert!(error.ends_with("lower --max-layer-digests or raise the budget"));
    let small = BudgetSettings {
        max_request_bytes_in_flight: 1024 * 1024,
        max_layer_digests: 10,
    };
    let error = small.check().unwrap_err().to_string();
    assert!(error.starts_with("UploadLayerPart's"), "{error}");
}

/// A server double: reads the whole request body, then answers with a body
/// that never ends (the call stays in flight until the response is dropped).
async fn call(layer: &BudgetLayer, path: &str, chunks: Vec<Vec<u8>>) -> Answer {
    let handler = tower::service_fn(|request: http::Request<Body>| async move {
        let response = match request.into_body().collect().await {
            Ok(_) => http::Response::new(Body::new(http_body_util::StreamBody::new(
                futures::stream::pending::<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>(),
            ))),
            Err(status) => status.into_http(),
        };
        Ok::<_, Infallible>(response)
    });
    let frames = chunks
        .into_iter()
        .map(|chunk| Ok::<_, tonic::Status>(http_body::Frame::data(bytes::Bytes::from(chunk))));
    let request = http::Request::builder()
        .uri(path)
        .body(Body::new(http_body_util::StreamBody::new(
            futures::stream::iter(frames),
        )))
        .unwrap();
    let mut service = layer.layer(handler);
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    match tonic::Status::from_header_map(response.headers()) {
        Some(status) if status.code() != Code::Ok => Answer::Refused(status),
        _ => Answer::InFlight(response),
    }
}

#[derive(Debug)]
enum Answer {
    InFlight(#[allow(dead_code)] http::Response<Body>),
    Refused(tonic::Status),
}

impl Answer {
    fn refused(self) -> tonic::Status {
        match self {
            Answer::Refused(status) => status,
            Answer::InFlight(_) => panic!("the call was not refused"),
        }
    }
}

fn layer(budget: usize) -> BudgetLayer {
    BudgetLayer::new(BudgetSettings {
        max_request_bytes_in_flight: budget,
        ..BudgetSettings::default()
    })
}

#[tokio::test]
async fn a_message_over_its_methods_limit_is_out_of_range() {
    let layer = layer(DEFAULT_BUDGET);
    let status = call(&layer, CREATE, vec![message(SMALL_MESSAGE + 1)])
        .await
        .refused();
    assert_eq!(status.code(), Code::OutOfRange);
    assert_eq!(
        status.message(),
        format!(
            "request message of {} bytes is over CreateRepository's limit of {SMALL_MESSAGE} bytes",
            SMALL_MESSAGE + 1
        )
    );
    let info = status.get_details_error_info().unwrap();
    assert_eq!(info.reason, REASON_MESSAGE_TOO_LARGE);
    assert_eq!(info.metadata["limit_bytes"], SMALL_MESSAGE.to_string());
    // Refused on its prefix alone: nothing was charged.
    assert_eq!(layer.available(), DEFAULT_BUDGET);
    // The same size is fine for the layer check.
    let answer = call(&layer, CHECK, vec![message(SMALL_MESSAGE + 1)]).await;
    assert!(matches!(answer, Answer::InFlight(_)), "{answer:?}");
}

#[tokio::test]
async fn a_unary_answer_gives_its_bytes_back_before_it_is_sent() {
    // A client that never reads its answers (a zero receive window) must
    // not hold the budget: the double's answer never ends, yet the request's
    // bytes are free once the handler has answered.
    let layer = layer(100_000);
    let unread = call(&layer, CREATE, vec![message(60_000)]).await;
    assert!(matches!(unread, Answer::InFlight(_)), "{unread:?}");
    assert_eq!(layer.available(), 100_000);
}

#[tokio::test]
async fn bytes_stay_charged_until_the_response_ends_and_the_budget_refuses_past_it() {
    // A streamed answer (the layer check) may still be using its request.
    let layer = layer(100_000);
    let first = call(&layer, CHECK, vec![message(60_000)]).await;
    assert!(matches!(first, Answer::InFlight(_)), "{first:?}");
    assert_eq!(layer.available(), 40_000);

    let status = call(&layer, CHECK, vec![message(50_000)]).await.refused();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().unwrap().reason,
        REASON_BUDGET_EXHAUSTED
    );
    assert!(details.retry_info().unwrap().retry_delay.is_some());
    // Probes are never charged, even with the budget spent.
    let probe = call(&layer, HEALTH, vec![message(50_000)]).await;
    assert!(matches!(probe, Answer::InFlight(_)), "{probe:?}");
    assert_eq!(layer.available(), 40_000);

    drop(first);
    assert_eq!(layer.available(), 100_000);
    let again = call(&layer, CHECK, vec![message(50_000)]).await;
    assert!(matches!(again, Answer::InFlight(_)), "{again:?}");
}

#[tokio::test]
async fn a_body_that_ends_inside_a_message_is_invalid_argument() {
    let layer = layer(DEFAULT_BUDGET);
    let mut truncated = message(100);
    truncated.truncate(50);
    let status = call(&layer, CREATE, vec![truncated]).await.refused();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "malformed request: the body ended inside a message"
    );
    // Its charge went with it.
    assert_eq!(layer.available(), DEFAULT_BUDGET);
}
