//! The server around the service: health, reflection (v1 and v1alpha),
//! graceful shutdown, and real callers — grpcurl and a Python grpcio client.

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::{FacadeBuilder, TestFacade, digest, moto, repo_root, venv_bin};
use ecr_facade::pb;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn health_of(facade: &TestFacade, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(facade.channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    ServingStatus::try_from(status).unwrap()
}

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
async fn reflection_v1_lists_the_services_and_resolves_error_details() {
    let facade = TestFacade::start(&moto().url).await;
    let mut reflection = ServerReflectionClient::new(facade.channel().await);
    let ask = |request: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let requests = vec![
        ask(MessageRequest::ListServices(String::new())),
        ask(MessageRequest::FileContainingSymbol(
            "google.rpc.BadRequest".into(),
        )),
        ask(MessageRequest::FileContainingSymbol(
            "ecr.v1.EcrService".into(),
        )),
    ];
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "ecr.v1.EcrService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    for _ in 0..2 {
        let answer = answers.message().await.unwrap().unwrap().message_response;
        assert!(
            matches!(answer, Some(MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
            "{answer:?}"
        );
    }
}

fn grpcurl(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(venv_bin("grpcurl"))
        .args(args)
        .output()
        .expect("running grpcurl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test]
async fn grpcurl_lists_describes_calls_and_decodes_error_details() {
    let facade = TestFacade::start(&moto().url).await;
    let addr = facade.addr.to_string();
    let addr = addr.as_str();
    // grpcurl 1.8 speaks reflection v1alpha only: this exercises that service.
    let (ok, listed) = tokio::task::spawn_blocking({
        let addr = addr.to_owned();
        move || grpcurl(&["-plaintext", &addr, "list"])
    })
    .await
    .unwrap();
    assert!(ok, "{listed}");
    assert!(listed.contains("ecr.v1.EcrService"), "{listed}");
    assert!(listed.contains("grpc.health.v1.Health"), "{listed}");

    let owned = addr.to_owned();
    let (ok, described) = tokio::task::spawn_blocking(move || {
        grpcurl(&["-plaintext", &owned, "describe", "ecr.v1.EcrService"])
    })
    .await
    .unwrap();
    assert!(ok, "{described}");
    assert!(
        described.contains("rpc BatchCheckLayerAvailability"),
        "{described}"
    );
    assert!(
        described.contains("returns ( stream .ecr.v1.BatchCheckLayerAvailabilityResponse )"),
        "{described}"
    );
    assert!(described.contains("//"), "comments shown: {described}");

    let name = common::unique_name("grpcurl");
    let owned = addr.to_owned();
    let body = format!(r#"{{"repository_name": "{name}"}}"#);
    let (ok, created) = tokio::task::spawn_blocking(move || {
        grpcurl(&[
            "-plaintext",
            "-d",
            &body,
            &owned,
            "ecr.v1.EcrService/CreateRepository",
        ])
    })
    .await
    .unwrap();
    assert!(ok, "{created}");
    assert!(
        created.contains(&format!("\"repositoryName\": \"{name}\"")),
        "{created}"
    );

    let owned = addr.to_owned();
    let (ok, refused) = tokio::task::spawn_blocking(move || {
        grpcurl(&[
            "-plaintext",
            "-d",
            r#"{"repository_name": "Bad_Name!", "image_ids": [{}, {}, {}, {"image_tag": ""}]}"#,
            &owned,
            "ecr.v1.EcrService/BatchGetImage",
        ])
    })
    .await
    .unwrap();
    assert!(!ok);
    assert!(refused.contains("Code: InvalidArgument"), "{refused}");
    assert!(
        refused.contains("google.rpc.BadRequest"),
        "details decoded: {refused}"
    );
    assert!(refused.contains("image_ids[3].image_tag"), "{refused}");
    assert!(
        refused.contains(r#""field":"repository_name""#),
        "{refused}"
    );
}

#[tokio::test]
async fn a_python_grpcio_client_calls_the_service() {
    let facade = TestFacade::start(&moto().url).await;
    let output = tokio::process::Command::new(venv_bin("python"))
        .arg(repo_root().join("tests/python/client_check.py"))
        .arg(facade.addr.to_string())
        .arg(repo_root().join("proto"))
        .output()
        .await
        .expect("running the python client");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "python client failed:\n{text}");
}

#[tokio::test]
async fn shutdown_lets_a_running_stream_finish_and_refuses_new_calls() {
    let proxy = Proxy::start(Some(&moto().url)).await;
    proxy.set_delay("BatchCheckLayerAvailability", Duration::from_millis(100));
    let mut builder = FacadeBuilder::new(&proxy.url);
    builder.settings.upstream_concurrency = 1;
    let mut facade = builder.start().await;
    let mut client = facade.client().await;
    let repository = common::unique_name("drain");
    client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: repository.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
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
