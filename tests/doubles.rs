//! What moto cannot do, through a test double: the counting proxy of
//! `common::proxy` answers chosen actions itself (GetDownloadUrlForLayer,
//! pagination, faults) and counts every upstream call; the rest goes to moto.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::proxy::{Proxy, Reply};
use common::{FacadeBuilder, TestFacade, digest, moto, unique_name};
use ecr_facade::pb;
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn get_download_url_for_layer_is_forwarded_and_answered() {
    let proxy = Proxy::start(None).await;
    proxy.set_hook(|action, body, _| match action {
        "GetDownloadUrlForLayer" if body["layerDigest"] == "sha256:abc" => Some(Reply::ok(json!({
            "downloadUrl": "https://prod-us-east-1-starport-layer-bucket.s3.amazonaws.com/abc?X-Amz-Signature=x",
            "layerDigest": "sha256:abc",
        }))),
        "GetDownloadUrlForLayer" => Some(Reply::error(
            400,
            "LayersNotFoundException",
            "The specified layer does not exist in the repository",
        )),
        _ => None,
    });
    let facade = TestFacade::start(&proxy.url).await;
    let mut client = facade.client().await;
    let answer = client
        .get_download_url_for_layer(pb::GetDownloadUrlForLayerRequest {
            registry_id: Some("123456789012".into()),
            repository_name: "team/app".into(),
            layer_digest: "sha256:abc".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.layer_digest.as_deref(), Some("sha256:abc"));
    assert!(
        answer
            .download_url
            .unwrap()
            .starts_with("https://prod-us-east-1-starport")
    );
    let sent = &proxy.calls()[0].body;
    assert_eq!(sent["repositoryName"], "team/app");
    assert_eq!(sent["registryId"], "123456789012");

    let missing = client
        .get_download_url_for_layer(pb::GetDownloadUrlForLayerRequest {
            registry_id: None,
            repository_name: "team/app".into(),
            layer_digest: "sha256:def".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let info = missing.get_details_error_info().unwrap();
    assert_eq!(info.reason, "LayersNotFoundException");
    assert_eq!(info.metadata["request_id"], "proxy-double-request-id");
    assert!(
        missing.message().contains("does not exist"),
        "{}",
        missing.message()
    );
}

/// Pages of `size` over 25 repositories, with tokens "page-N".
fn paginated(body: &Value) -> Reply {
    let size = body["maxResults"].as_u64().unwrap_or(100) as usize;
    let start = body["nextToken"]
        .as_str()
        .and_then(|t| t.strip_prefix("page-"))
        .map_or(0, |n| n.parse::<usize>().unwrap());
    let end = (start + size).min(25);
    let repositories: Vec<Value> = (start..end)
        .map(|i| json!({"repositoryName": format!("repo-{i:02}"), "registryId": "123456789012", "createdAt": 1.7e9}))
        .collect();
    let mut answer = json!({ "repositories": repositories });
    if end < 25 {
        answer["nextToken"] = json!(format!("page-{end}"));
    }
    Reply::ok(answer)
}

#[tokio::test]
async fn describe_repositories_pages_through_max_results_and_next_token() {
    let proxy = Proxy::start(None).await;
    proxy.set_hook(|action, body, _| (action == "DescribeRepositories").then(|| paginated(body)));
    let facade = TestFacade::start(&proxy.url).await;
    let mut client = facade.client().await;
    let mut names = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = client
            .describe_repositories(pb::DescribeRepositoriesRequest {
                max_results: Some(10),
                next_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        names.extend(
            page.repositories
                .into_iter()
                .map(|r| r.repository_name.unwrap()),
        );
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25);
    assert_eq!(names[24], "repo-24");
    let sent: Vec<Value> = proxy.calls().into_iter().map(|c| c.body).collect();
    assert_eq!(sent[0]["maxResults"], 10);
    assert!(sent[0].get("nextToken").is_none());
    assert_eq!(sent[1]["nextToken"], "page-10");
    assert_eq!(sent[2]["nextToken"], "page-20");
}

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
    client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: repository.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
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

/// ECR's answer when none of the asked layers exists.
fn all_missing(body: &Value) -> Reply {
    let failures: Vec<Value> = body["layerDigests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| json!({"layerDigest": d, "failureCode": "MissingLayerDigest", "failureReason": "absent"}))
        .collect();
    Reply::ok(json!({ "layers": [], "failures": failures }))
}

#[tokio::test]
async fn a_client_that_cancels_stops_the_upstream_fan_out() {
    let proxy = Proxy::start(None).await;
    proxy.set_delay("BatchCheckLayerAvailability", Duration::from_millis(100));
    proxy.set_hook(|action, body, _| {
        (action == "BatchCheckLayerAvailability").then(|| all_missing(body))
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

fn token_reply(body: &Value, serial: usize) -> Reply {
    token_reply_valid_for(body, serial, 12 * 3600)
}

fn token_reply_valid_for(body: &Value, serial: usize, seconds: u64) -> Reply {
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + seconds;
    let registries: Vec<String> = match body["registryIds"].as_array() {
        Some(ids) => ids.iter().map(|i| i.as_str().unwrap().to_owned()).collect(),
        None => vec!["123456789012".to_owned()],
    };
    let data: Vec<Value> = registries
        .iter()
        .map(|id| {
            json!({
                "authorizationToken": format!("QVdTOnNlY3JldC0{serial}"),
                "expiresAt": expires,
                "proxyEndpoint": format!("https://{id}.dkr.ecr.us-east-1.amazonaws.com"),
            })
        })
        .collect();
    Reply::ok(json!({ "authorizationData": data }))
}

#[tokio::test]
async fn concurrent_token_requests_make_one_upstream_call() {
    let proxy = Proxy::start(None).await;
    proxy.set_delay("GetAuthorizationToken", Duration::from_millis(200));
    proxy.set_hook(|action, body, nth| {
        (action == "GetAuthorizationToken").then(|| token_reply(body, nth))
    });
    let facade = TestFacade::start(&proxy.url).await;
    let channel = facade.channel().await;
    let calls = (0..40).map(|_| {
        let mut client = pb::ecr_service_client::EcrServiceClient::new(channel.clone());
        tokio::spawn(async move {
            client
                .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
                .await
                .unwrap()
                .into_inner()
        })
    });
    for answer in futures::future::join_all(calls).await {
        let data = answer.unwrap().authorization_data;
        assert_eq!(
            data[0].authorization_token.as_deref(),
            Some("QVdTOnNlY3JldC01")
        );
    }
    assert_eq!(proxy.count("GetAuthorizationToken"), 1);

    // Explicit registries have keys of their own: asking [a, b] then [b, c]
    // fetches a+b in one call, then only c.
    let mut client = facade.client().await;
    let ask = |ids: &[&str]| pb::GetAuthorizationTokenRequest {
        registry_ids: ids.iter().map(|s| s.to_string()).collect(),
    };
    client
        .get_authorization_token(ask(&["111111111111", "222222222222"]))
        .await
        .unwrap();
    let answer = client
        .get_authorization_token(ask(&["222222222222", "333333333333"]))
        .await
        .unwrap()
        .into_inner()
        .authorization_data;
    assert_eq!(answer.len(), 2);
    assert!(
        answer[1]
            .proxy_endpoint
            .as_deref()
            .unwrap()
            .contains("333333333333")
    );
    let asked: Vec<Value> = proxy
        .calls()
        .iter()
        .filter(|c| c.action == "GetAuthorizationToken")
        .map(|c| c.body["registryIds"].clone())
        .collect();
    assert_eq!(asked[1], json!(["111111111111", "222222222222"]));
    assert_eq!(asked[2], json!(["333333333333"]));
    assert_eq!(facade.facade.tokens().stats().fetches, 3);
}

#[tokio::test]
async fn throttling_is_retried_then_answered_with_retry_info() {
    let proxy = Proxy::start(Some(&moto().url)).await;
    let throttle_first = Arc::new(AtomicUsize::new(2));
    let budget = throttle_first.clone();
    proxy.set_hook(move |action, _, _| {
        let throttled = action == "DescribeRepositories"
            && budget
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        throttled.then(|| Reply::error(400, "ThrottlingException", "Rate exceeded"))
    });
    let facade = TestFacade::start(&proxy.url).await;
    let mut client = facade.client().await;
    client
        .describe_repositories(pb::DescribeRepositoriesRequest::default())
        .await
        .expect("two throttles are absorbed by SDK retries");
    assert_eq!(proxy.count("DescribeRepositories"), 3);

    throttle_first.store(usize::MAX, Ordering::SeqCst);
    let status = client
        .describe_repositories(pb::DescribeRepositoriesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "ThrottlingException"
    );
    assert!(
        status
            .get_details_retry_info()
            .unwrap()
            .retry_delay
            .is_some()
    );
    assert_eq!(proxy.count("DescribeRepositories"), 6, "max attempts = 3");
}

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
async fn the_callers_deadline_bounds_the_upstream_call() {
    use ecr_facade::pb::ecr_service_server::EcrService;

    let proxy = Proxy::start(Some(&moto().url)).await;
    proxy.set_delay("DescribeRepositories", Duration::from_secs(3));
    let facade = TestFacade::start(&proxy.url).await;
    // Called in-process, to see the handler's own answer and timing (the
    // over-gRPC test below checks what a caller receives).
    let mut request = tonic::Request::new(pb::DescribeRepositoriesRequest::default());
    request
        .metadata_mut()
        .insert("grpc-timeout", "300m".parse().unwrap());
    let started = std::time::Instant::now();
    let status = facade
        .facade
        .describe_repositories(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.get_details_error_info().unwrap().reason,
        "DEADLINE_EXCEEDED"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered before the upstream did"
    );
    // The facade abandoned its upstream call: the proxy sees the connection go.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(proxy.in_flight(), 0, "upstream call still running");
    assert_eq!(
        proxy.count("DescribeRepositories"),
        1,
        "no retry after the deadline"
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.in_flight(), 0, "upstream call still running");
}

#[tokio::test]
async fn the_server_default_timeout_bounds_a_stream() {
    let proxy = Proxy::start(None).await;
    proxy.set_delay("BatchCheckLayerAvailability", Duration::from_millis(200));
    proxy.set_hook(|action, body, _| {
        (action == "BatchCheckLayerAvailability").then(|| all_missing(body))
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

#[tokio::test]
async fn a_failed_token_refresh_serves_the_still_valid_cached_token() {
    let proxy = Proxy::start(None).await;
    proxy.set_hook(|action, body, nth| {
        (action == "GetAuthorizationToken").then(|| match nth {
            1 => token_reply_valid_for(body, nth, 13 * 3600),
            _ => Reply::error(500, "ServerException", "token service down"),
        })
    });
    let mut builder = FacadeBuilder::new(&proxy.url);
    // The token is cached on arrival, then needs a refresh within seconds.
    builder.settings.token_min_ttl = Duration::from_secs(13 * 3600 - 2);
    let facade = builder.start().await;
    let mut client = facade.client().await;
    let first = client
        .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = client
        .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
        .await
        .expect("the cached token is served while the refresh fails")
        .into_inner();
    assert_eq!(
        second.authorization_data[0].authorization_token,
        first.authorization_data[0].authorization_token
    );
    assert_eq!(
        proxy.count("GetAuthorizationToken"),
        4,
        "one fetch, then a refresh tried 3 times"
    );
    let stats = facade.facade.tokens().stats();
    assert_eq!((stats.stale_served, stats.fetch_failures), (1, 1));
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
    assert_eq!(status.code(), Code::Unavailable);
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
