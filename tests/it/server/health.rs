//! gRPC health: serving, then not serving on shutdown; answering while
//! the upstream is down.

use super::*;

#[tokio::test]
async fn health_serves_the_server_and_the_service_then_not_serving_on_shutdown() {
    let mut facade = TestFacade::start(&moto().url).await;
    assert_eq!(health_of(&facade, "").await, ServingStatus::Serving);
    assert_eq!(
        health_of(&facade, "ecr.v1.EcrService").await,
        ServingStatus::Serving
    );

    let mut watch = HealthClient::new(facade.channel().await)
        .watch(HealthCheckRequest {
            service: "ecr.v1.EcrService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap().status;
    assert_eq!(first, ServingStatus::Serving as i32);
    facade.begin_shutdown();
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .expect("a status change")
        .unwrap()
        .unwrap()
        .status;
    assert_eq!(next, ServingStatus::NotServing as i32);
    drop(watch);
    facade.stop().await.unwrap();
}

#[tokio::test]
async fn health_keeps_answering_while_the_upstream_is_down() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let facade = TestFacade::start("http://127.0.0.1:1").await;
    let mut client = facade.client().await;
    let status = client
        .describe_images(pb::DescribeImagesRequest {
            repository_name: "any-repo".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let health = HealthClient::new(facade.channel().await)
        .check(HealthCheckRequest {
            service: "ecr.v1.EcrService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}
