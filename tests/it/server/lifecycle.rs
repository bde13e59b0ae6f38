//! A call's life around the handler: graceful shutdown, request ids,
//! metrics.

use super::*;

#[tokio::test]
async fn shutdown_lets_a_running_stream_finish_and_refuses_new_calls() {
    let proxy = Proxy::start(Some(&moto().url)).await;
    proxy.set_delay("BatchCheckLayerAvailability", Duration::from_millis(100));
    let mut builder = FacadeBuilder::new(&proxy.url);
    builder.settings.upstream_concurrency = 1;
    let mut facade = builder.start().await;
    let mut client = facade.client().await;
    let repository = crate::common::unique_name("drain");
    crate::common::upstream::create(&mut client, &repository).await;
    let mut stream = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: repository,
            layer_digests: (0..1_000).map(digest).collect(),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut messages = vec![stream.message().await.unwrap().unwrap()];
    facade.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A new connection is refused while the stream drains.
    let addr = facade.url();
    let served = tokio::time::timeout(Duration::from_secs(2), async move {
        let Ok(channel) = tonic::transport::Channel::from_shared(addr)
            .unwrap()
            .connect()
            .await
        else {
            return false;
        };
        pb::ecr_service_client::EcrServiceClient::new(channel)
            .describe_repositories(pb::DescribeRepositoriesRequest::default())
            .await
            .is_ok()
    })
    .await;
    assert_ne!(served, Ok(true), "a new call was served during shutdown");

    while let Some(message) = stream.message().await.unwrap() {
        messages.push(message);
    }
    assert_eq!(messages.len(), 10, "the in-flight stream completed");
    let answered: usize = messages
        .iter()
        .map(|m| m.layers.len() + m.failures.len())
        .sum();
    assert_eq!(answered, 1_000);
    facade.stop().await.expect("clean exit after draining");
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let facade = TestFacade::start(&moto().url).await;
    let mut client = facade.client().await;
    let mut request = tonic::Request::new(pb::DescribeRepositoriesRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "caller-chosen-42".parse().unwrap());
    let answer = client.describe_repositories(request).await.unwrap();
    assert_eq!(
        answer.metadata().get("x-request-id").unwrap(),
        "caller-chosen-42"
    );

    // On an error (trailers-only) answer too, and one is made when absent.
    let refused = client
        .create_repository(pb::CreateRepositoryRequest::default())
        .await
        .unwrap_err();
    let made = refused
        .metadata()
        .get("x-request-id")
        .expect("a request id")
        .to_str()
        .unwrap();
    assert_eq!(made.len(), 36, "a uuid: {made}");
}

#[tokio::test]
async fn metrics_count_rpcs_upstream_calls_and_token_events() {
    let proxy = Proxy::start(Some(&moto().url)).await;
    let facade = TestFacade::start(&proxy.url).await;
    let mut client = facade.client().await;
    client
        .describe_repositories(pb::DescribeRepositoriesRequest::default())
        .await
        .unwrap();
    client
        .delete_repository(pb::DeleteRepositoryRequest {
            repository_name: crate::common::unique_name("absent"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    client
        .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
        .await
        .unwrap();
    let text = facade.metrics.encode();
    for line in [
        r#"ecr_facade_rpc_requests_total{method="/ecr.v1.EcrService/DescribeRepositories",code="Ok"} 1"#,
        r#"ecr_facade_rpc_requests_total{method="/ecr.v1.EcrService/DeleteRepository",code="NotFound"} 1"#,
        r#"ecr_facade_upstream_calls_total{action="DescribeRepositories",outcome="ok"} 1"#,
        r#"ecr_facade_upstream_calls_total{action="DeleteRepository",outcome="RepositoryNotFoundException"} 1"#,
        r#"ecr_facade_upstream_calls_total{action="GetAuthorizationToken",outcome="ok"} 1"#,
        r#"ecr_facade_token_cache_events_total{event="miss"} 1"#,
        r#"ecr_facade_token_cache_events_total{event="refresh"} 1"#,
        r#"ecr_facade_rpc_duration_seconds_count{method="/ecr.v1.EcrService/DescribeRepositories"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
}
