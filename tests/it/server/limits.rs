//! The server's limits: a flood shed past the concurrency limit while
//! health answers, a request over the message size limit.

use super::*;

#[tokio::test]
async fn a_flood_past_the_limit_is_shed_while_health_answers() {
    use tonic_types::StatusExt;

    let proxy = Proxy::start(Some(&moto().url)).await;
    proxy.set_delay("DescribeRepositories", Duration::from_millis(600));
    let mut builder = FacadeBuilder::new(&proxy.url);
    builder.server.max_concurrent_rpcs = 3;
    let facade = builder.start().await;
    let channel = facade.channel().await;
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let mut client = pb::ecr_service_client::EcrServiceClient::new(channel.clone());
            tokio::spawn(async move {
                client
                    .describe_repositories(pb::DescribeRepositoriesRequest::default())
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Probes are exempt from the limit.
    assert_eq!(
        health_of(&facade, "ecr.v1.EcrService").await,
        ServingStatus::Serving
    );
    let mut served = 0;
    let mut shed = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => served += 1,
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                assert_eq!(
                    status.get_details_error_info().unwrap().reason,
                    "OVERLOADED"
                );
                assert!(status.get_details_retry_info().is_some());
                shed += 1;
            }
        }
    }
    assert_eq!((served, shed), (3, 9));
    assert_eq!(
        proxy.count("DescribeRepositories"),
        3,
        "shed calls never reach ECR"
    );
    let text = facade.metrics.encode();
    assert!(text.contains("ecr_facade_rpcs_shed_total 9"), "{text}");
    assert!(text.contains("ecr_facade_rpcs_in_flight 0"), "{text}");
}

#[tokio::test]
async fn a_request_over_the_message_size_limit_is_refused() {
    let proxy = Proxy::start(Some(&moto().url)).await;
    let facade = TestFacade::start(&proxy.url).await;
    let mut client = facade.client().await;
    // 17,000 digests of 1,000 characters: past the layer check's request limit.
    let status = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: "big-request".into(),
            layer_digests: (0..17_000).map(|i| format!("{i:01000}")).collect(),
            registry_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert_eq!(proxy.total(), 0);
}
