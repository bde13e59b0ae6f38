//! Upstream failures as callers see them: canonical codes with ECR's
//! `ErrorInfo` (throttling retried then RESOURCE_EXHAUSTED with
//! `RetryInfo`, server errors), an unreachable upstream, and the facade's
//! own credentials rejected or missing — told to the operator, not blamed
//! on the caller.

use crate::common::proxy::{Proxy, Reply};
use crate::common::upstream::{assert_ecr_error, emulator_facade};
use crate::common::{TestFacade, moto};
use ecr_facade::pb;
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn an_unreachable_upstream_is_unavailable() {
    // Port 1 on loopback: nothing listens there, connections are refused.
    let facade = TestFacade::start("http://127.0.0.1:1").await;
    let mut client = facade.client().await;
    let status = client
        .describe_repositories(pb::DescribeRepositoriesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "UPSTREAM_UNREACHABLE"
    );
}

#[tokio::test]
async fn rejected_facade_credentials_tell_the_operator() {
    let proxy = Proxy::start(None).await;
    proxy.set_hook(|_, _, _| {
        Some(Reply::error(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ))
    });
    let facade = TestFacade::start(&proxy.url).await;
    let mut client = facade.client().await;
    let status = client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: "ab".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);
    assert!(
        status.message().contains("facade's own aws credentials"),
        "{}",
        status.message()
    );
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "UnrecognizedClientException"
    );
}

#[tokio::test]
async fn missing_facade_credentials_tell_the_operator() {
    use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError, future};

    #[derive(Debug)]
    struct NoCredentials;
    impl ProvideCredentials for NoCredentials {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
                "no credentials in this test",
            )))
        }
    }

    let proxy = Proxy::start(Some(&moto().url)).await;
    let config = aws_sdk_ecr::Config::builder()
        .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
        .region(aws_sdk_ecr::config::Region::new("us-east-1"))
        .endpoint_url(&proxy.url)
        .credentials_provider(NoCredentials)
        .build();
    let facade = ecr_facade::service::EcrFacade::new(
        aws_sdk_ecr::Client::from_conf(config),
        Default::default(),
        ecr_facade::metrics::Metrics::new(),
    );
    let status = ecr_facade::pb::ecr_service_server::EcrService::describe_repositories(
        &facade,
        tonic::Request::new(pb::DescribeRepositoriesRequest::default()),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert!(
        status.message().contains("no aws credentials"),
        "{}",
        status.message()
    );
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "UPSTREAM_CREDENTIALS_MISSING"
    );
    assert_eq!(proxy.total(), 0);
}

#[tokio::test]
async fn emulator_faults_reach_callers_as_canonical_codes() {
    use ecr_facade::emulator::FaultSpec;

    let (emulator, facade) = emulator_facade(false).await;
    let mut client = facade.client().await;
    let describe = pb::DescribeRepositoriesRequest::default;

    // Two throttles are absorbed by the SDK's retries.
    emulator
        .set_fault(
            "DescribeRepositories",
            FaultSpec {
                throttle_next: 2,
                ..FaultSpec::default()
            },
        )
        .unwrap();
    client.describe_repositories(describe()).await.unwrap();
    assert_eq!(emulator.calls("DescribeRepositories"), 3);

    // Throttled throughout: RESOURCE_EXHAUSTED with RetryInfo after 3 attempts.
    emulator
        .set_fault(
            "DescribeRepositories",
            FaultSpec {
                throttle_all: true,
                ..FaultSpec::default()
            },
        )
        .unwrap();
    let throttled = client.describe_repositories(describe()).await.unwrap_err();
    assert_ecr_error(&throttled, Code::ResourceExhausted, "ThrottlingException");
    assert!(throttled.get_details_retry_info().is_some());
    assert_eq!(emulator.calls("DescribeRepositories"), 6);

    // Server errors: INTERNAL after the retries.
    emulator
        .set_fault(
            "DescribeRepositories",
            FaultSpec {
                fail_all: true,
                ..FaultSpec::default()
            },
        )
        .unwrap();
    let failed = client.describe_repositories(describe()).await.unwrap_err();
    assert_ecr_error(&failed, Code::Internal, "ServerException");
    assert_eq!(emulator.calls("DescribeRepositories"), 9);

    emulator.clear_faults();
    client
        .describe_repositories(describe())
        .await
        .expect("healthy again");
}
