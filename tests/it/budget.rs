//! The memory budget over real gRPC, against the facade in front of the
//! embedded emulator: per-method message limits, the budget of request
//! bytes in flight (held by a caller that sends a message's prefix and
//! stalls), malformed request bodies (truncated, or not protobuf), and the
//! string bounds of validation.

use bytes::Bytes;
use ecr_facade::budget::{BudgetSettings, SMALL_MESSAGE};
use ecr_facade::emulator::Emulator;
use ecr_facade::error::{REASON_BUDGET_EXHAUSTED, REASON_MESSAGE_TOO_LARGE};
use ecr_facade::pb;

use crate::common::upstream::violated_fields;
use futures::StreamExt;
use http_body::Frame;
use tonic::body::Body;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use tower::ServiceExt;

const CHECK: &str = "/ecr.v1.EcrService/BatchCheckLayerAvailability";

async fn start(budget: BudgetSettings) -> (Emulator, crate::common::TestFacade) {
    crate::common::upstream::facade_on_emulator(|builder| {
        builder.settings.limits.max_layer_digests = budget.max_layer_digests;
        builder.server.budget = budget;
    })
    .await
}

#[tokio::test]
async fn a_small_method_refuses_a_large_message_before_upstream() {
    let (emulator, facade) = start(BudgetSettings::default()).await;
    let mut client = facade.client().await;
    // 300 KiB of tags: within tonic's 16 MiB, over CreateRepository's limit.
    let tags = (0..1200)
        .map(|i| pb::Tag {
            key: format!("k{i}"),
            value: "v".repeat(250),
        })
        .collect();
    let status = client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: "too-large".into(),
            tags,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, REASON_MESSAGE_TOO_LARGE);
    assert_eq!(info.metadata["limit_bytes"], SMALL_MESSAGE.to_string());
    assert_eq!(emulator.total_calls(), 0);
}

/// Feeds the body of a [`raw_call`]; dropping it ends the body.
type Feed = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, Status>>;

/// A raw call of `path` whose body is fed by hand, starting with `first`.
fn raw_call(
    channel: &tonic::transport::Channel,
    path: &str,
    first: Vec<u8>,
) -> (Feed, tokio::task::JoinHandle<http::Response<Body>>) {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.try_send(Ok(Frame::data(Bytes::from(first)))).unwrap();
    let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://facade{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Body::new(body))
        .unwrap();
    let channel = channel.clone();
    let task = tokio::spawn(async move { channel.oneshot(request).await.unwrap() });
    (tx, task)
}

/// A BatchCheckLayerAvailability call whose first frame declares a message
/// of `declared` bytes and carries only a few of them.
fn stalled_call(
    channel: &tonic::transport::Channel,
    declared: u32,
) -> (Feed, tokio::task::JoinHandle<http::Response<Body>>) {
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&declared.to_be_bytes());
    prefix.extend_from_slice(b"\x0a\x05stall");
    raw_call(channel, CHECK, prefix)
}

/// The status of a call's trailers-only answer.
async fn status_of(call: tokio::task::JoinHandle<http::Response<Body>>) -> Status {
    let response = call.await.unwrap();
    Status::from_header_map(response.headers()).expect("a trailers-only answer")
}

async fn check_layers(
    client: &mut pb::ecr_service_client::EcrServiceClient<tonic::transport::Channel>,
    digests: Vec<String>,
) -> Result<usize, Status> {
    let request = pb::BatchCheckLayerAvailabilityRequest {
        repository_name: "budget".into(),
        layer_digests: digests,
        registry_id: None,
    };
    let mut stream = client
        .batch_check_layer_availability(request)
        .await?
        .into_inner();
    let mut answered = 0;
    while let Some(message) = stream.next().await {
        let message = message?;
        answered += message.layers.len() + message.failures.len();
    }
    Ok(answered)
}

#[tokio::test]
async fn a_stalled_caller_holds_its_declared_bytes_and_others_are_told_to_retry() {
    let settings = BudgetSettings {
        max_request_bytes_in_flight: 32 * 1024 * 1024,
        max_layer_digests: 8_000,
    };
    let (_emulator, facade) = start(settings).await;
    let channel = facade.channel().await;
    let mut client = pb::ecr_service_client::EcrServiceClient::new(channel.clone());
    client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: "budget".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    // 2,000 digests of 1,000 characters: about 2 MB on the wire.
    let big = || -> Vec<String> { (0..2_000).map(|i| format!("sha256:{i:0993}")).collect() };

    // The stall declares 32,000,000 bytes and sends a few: 1.5 MiB remain.
    // If the big call wins the race to the budget, the stall is the one
    // refused: try again.
    let mut refused = None;
    for _ in 0..20 {
        let (feed, stalled) = stalled_call(&channel, 32_000_000);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        match check_layers(&mut client, big()).await {
            Err(status) if status.code() == Code::ResourceExhausted => {
                refused = Some((status, feed, stalled));
                break;
            }
            _ => {
                drop(feed);
                let _ = stalled.await;
            }
        }
    }
    let (status, feed, stalled) =
        refused.expect("the budget refused the call while the stall held it");
    let details = status.get_error_details();
    assert_eq!(
        details.error_info().unwrap().reason,
        REASON_BUDGET_EXHAUSTED
    );
    assert!(details.retry_info().unwrap().retry_delay.is_some());
    // Small calls still fit.
    let answered = check_layers(&mut client, vec![crate::common::digest(1)]).await;
    assert_eq!(answered.unwrap(), 1);

    // The stall's body ends inside its message: INVALID_ARGUMENT, and its
    // bytes are given back.
    drop(feed);
    let status = status_of(stalled).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(check_layers(&mut client, big()).await.unwrap(), 2_000);
}

#[tokio::test]
async fn a_request_that_is_not_protobuf_is_invalid_argument() {
    let (emulator, facade) = start(BudgetSettings::default()).await;
    let channel = facade.channel().await;
    // Field 1 with wire type 7, which does not exist.
    let mut message = vec![0u8, 0, 0, 0, 2];
    message.extend_from_slice(&[0x0f, 0x00]);
    let (feed, call) = raw_call(&channel, "/ecr.v1.EcrService/CreateRepository", message);
    drop(feed);
    let status = status_of(call).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("malformed request message: "),
        "{}",
        status.message()
    );
    assert_eq!(emulator.total_calls(), 0);
}

#[tokio::test]
async fn oversized_strings_are_invalid_argument_before_upstream() {
    let (emulator, facade) = start(BudgetSettings::default()).await;
    let mut client = facade.client().await;
    let status = client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: "strings".into(),
            tags: vec![pb::Tag {
                key: "k".repeat(129),
                value: "v".repeat(257),
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["tags[0].key", "tags[0].value"]);

    let status = client
        .describe_images(pb::DescribeImagesRequest {
            repository_name: "strings".into(),
            next_token: Some("t".repeat(8193)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["next_token"]);
    assert_eq!(emulator.total_calls(), 0);
}
