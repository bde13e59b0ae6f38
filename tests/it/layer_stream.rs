//! BatchCheckLayerAvailability's streamed fan-out: batches of ECR's 100
//! digests within the upstream concurrency limit, every digest answered
//! once, a cancelled caller stopping the fan-out, a failed batch ending the
//! stream with its status. The counting proxy sees what reached upstream.

use std::time::Duration;

use crate::common::proxy::{Proxy, Reply};
use crate::common::{FacadeBuilder, digest, moto, unique_name};
use ecr_facade::pb;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn the_layer_stream_batches_by_a_hundred_within_the_concurrency_limit() {
    let proxy = Proxy::start(Some(&moto().url)).await;
    proxy.set_delay("BatchCheckLayerAvailability", Duration::from_millis(40));
    let mut builder = FacadeBuilder::new(&proxy.url);
    builder.settings.upstream_concurrency = 4;
    // More than the default 2,000 digests: 24 batches, the last one short.
    builder.settings.limits.max_layer_digests = 2_345;
    let facade = builder.start().await;
    let mut client = facade.client().await;
    let repository = unique_name("stream");
    crate::common::upstream::create(&mut client, &repository).await;
    let asked: Vec<String> = (0..2_345).map(digest).collect();
    let mut stream = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: repository,
            layer_digests: asked.clone(),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut answered = Vec::new();
    let mut messages = 0;
    while let Some(message) = stream.message().await.unwrap() {
        messages += 1;
        assert!(message.layers.len() + message.failures.len() <= 100);
        answered.extend(message.failures.into_iter().map(|f| {
            assert_eq!(
                f.failure_code,
                pb::LayerFailureCode::MissingLayerDigest as i32
            );
            f.layer_digest.unwrap()
        }));
        answered.extend(message.layers.into_iter().map(|l| l.layer_digest.unwrap()));
    }
    assert_eq!(messages, 24);
    answered.sort();
    let mut expected = asked;
    expected.sort();
    assert_eq!(answered, expected, "every digest answered exactly once");
    let batches: Vec<usize> = proxy
        .calls()
        .iter()
        .filter(|c| c.action == "BatchCheckLayerAvailability")
        .map(|c| c.body["layerDigests"].as_array().unwrap().len())
        .collect();
    assert_eq!(batches.len(), 24);
    assert!(batches.iter().all(|&n| n <= 100));
    assert_eq!(batches.iter().sum::<usize>(), 2_345);
    assert_eq!(
        proxy.peak_in_flight(),
        4,
        "concurrency limit as seen upstream"
    );
}

#[tokio::test]
async fn a_client_that_cancels_stops_the_upstream_fan_out() {
    let proxy = Proxy::start(None).await;
    proxy.set_delay("BatchCheckLayerAvailability", Duration::from_millis(100));
    proxy.set_hook(|action, body, _| {
        (action == "BatchCheckLayerAvailability").then(|| Reply::all_layers_missing(body))
    });
    let mut builder = FacadeBuilder::new(&proxy.url);
    builder.settings.upstream_concurrency = 2;
    let facade = builder.start().await;
    let mut client = facade.client().await;
    let mut stream = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: "ab".into(),
            layer_digests: (0..2_000).map(digest).collect(),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().unwrap();
    drop(stream);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after_cancel = proxy.count("BatchCheckLayerAvailability");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        proxy.count("BatchCheckLayerAvailability"),
        after_cancel,
        "fan-out went on"
    );
    assert!(after_cancel < 10, "{after_cancel} of 20 batches were asked");
    assert_eq!(
        proxy.in_flight(),
        0,
        "outstanding upstream calls were abandoned"
    );
}

#[tokio::test]
async fn a_failing_batch_ends_the_stream_with_its_status() {
    let proxy = Proxy::start(None).await;
    proxy.set_hook(|action, body, nth| {
        (action == "BatchCheckLayerAvailability").then(|| {
            if nth >= 2 {
                return Reply::error(500, "ServerException", "internal failure");
            }
            let layers: Vec<Value> = body["layerDigests"]
                .as_array()
                .unwrap()
                .iter()
                .map(
                    |d| json!({"layerDigest": d, "layerAvailability": "AVAILABLE", "layerSize": 1}),
                )
                .collect();
            Reply::ok(json!({ "layers": layers, "failures": [] }))
        })
    });
    let mut builder = FacadeBuilder::new(&proxy.url);
    builder.settings.upstream_concurrency = 1;
    let facade = builder.start().await;
    let mut client = facade.client().await;
    let mut stream = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: "ab".into(),
            layer_digests: (0..500).map(digest).collect(),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.layers.len(), 100);
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "ServerException"
    );
    // The SDK retried the failing batch (3 attempts); nothing ran after it.
    assert_eq!(proxy.count("BatchCheckLayerAvailability"), 4);
}
