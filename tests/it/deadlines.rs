//! Deadlines: a slow upstream (the SDK's timeouts), the caller's
//! `grpc-timeout` bounding and abandoning the upstream call, the server's
//! default timeout bounding a stream.

use std::time::Duration;

use crate::common::proxy::{Proxy, Reply};
use crate::common::{FacadeBuilder, TestFacade, digest, moto};
use ecr_facade::pb;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn a_slow_upstream_is_a_deadline_exceeded() {
    let proxy = Proxy::start(Some(&moto().url)).await;
    proxy.set_delay("DescribeRepositories", Duration::from_secs(5));
    let mut builder = FacadeBuilder::new(&proxy.url);
    builder.upstream.max_attempts = 1;
    builder.upstream.attempt_timeout = Duration::from_millis(300);
    builder.upstream.operation_timeout = Duration::from_millis(600);
    let facade = builder.start().await;
    let mut client = facade.client().await;
    let status = client
        .describe_repositories(pb::DescribeRepositoriesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "UPSTREAM_TIMEOUT"
    );
}

#[tokio::test]
async fn a_client_deadline_over_grpc_abandons_the_upstream_call() {
    let proxy = Proxy::start(Some(&moto().url)).await;
    proxy.set_delay("DescribeRepositories", Duration::from_secs(3));
    let facade = TestFacade::start(&proxy.url).await;
    let mut client = facade.client().await;
    let mut request = tonic::Request::new(pb::DescribeRepositoriesRequest::default());
    // The deadline as the header alone: tonic's client-side timer (what
    // `set_timeout` also starts) would race the facade's answer by a few
    // milliseconds on a loaded machine; this test is about the server.
    request
        .metadata_mut()
        .insert("grpc-timeout", "300m".parse().unwrap());
    let status = client.describe_repositories(request).await.unwrap_err();
    // The facade answers just before the deadline, with its details.
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "DEADLINE_EXCEEDED"
    );
    // The facade abandoned its upstream call: the proxy sees the connection
    // go, and no retry follows the deadline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.in_flight(), 0, "upstream call still running");
    assert_eq!(
        proxy.count("DescribeRepositories"),
        1,
        "no retry after the deadline"
    );
}

#[tokio::test]
async fn the_server_default_timeout_bounds_a_stream() {
    let proxy = Proxy::start(None).await;
    proxy.set_delay("BatchCheckLayerAvailability", Duration::from_millis(200));
    proxy.set_hook(|action, body, _| {
        (action == "BatchCheckLayerAvailability").then(|| Reply::all_layers_missing(body))
    });
    let mut builder = FacadeBuilder::new(&proxy.url);
    builder.settings.upstream_concurrency = 1;
    builder.settings.rpc_timeout = Duration::from_millis(500);
    let facade = builder.start().await;
    let mut client = facade.client().await;
    let mut stream = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: "slow-stream".into(),
            layer_digests: (0..1_000).map(digest).collect(),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    let status = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream finished within its deadline"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.in_flight(), 0);
    assert!(proxy.count("BatchCheckLayerAvailability") <= 4);
}
