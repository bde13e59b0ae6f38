//! The server around the service: health, reflection (v1 and v1alpha),
//! graceful shutdown, and real callers — grpcurl and a Python grpcio client.

use std::time::Duration;

use crate::common::proxy::Proxy;
use crate::common::{FacadeBuilder, TestFacade, digest, moto, repo_root, sha256_digest, venv_bin};
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

/// grpcurl with `args`: whether it succeeded, and its stdout and stderr.
async fn grpcurl(args: &[&str]) -> (bool, String) {
    grpcurl_with_input(args, String::new()).await
}

#[tokio::test]
async fn grpcurl_lists_describes_calls_and_decodes_error_details() {
    let facade = TestFacade::start(&moto().url).await;
    let addr = facade.addr.to_string();
    let addr = addr.as_str();
    // grpcurl 1.8 speaks reflection v1alpha only: this exercises that service.
    let (ok, listed) = grpcurl(&["-plaintext", addr, "list"]).await;
    assert!(ok, "{listed}");
    assert!(listed.contains("ecr.v1.EcrService"), "{listed}");
    assert!(listed.contains("grpc.health.v1.Health"), "{listed}");

    let describe = ["-plaintext", addr, "describe", "ecr.v1.EcrService"];
    let (ok, described) = grpcurl(&describe).await;
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

    let name = crate::common::unique_name("grpcurl");
    let body = format!(r#"{{"repository_name": "{name}"}}"#);
    let create = "ecr.v1.EcrService/CreateRepository";
    let (ok, created) = grpcurl(&["-plaintext", "-d", &body, addr, create]).await;
    assert!(ok, "{created}");
    assert!(
        created.contains(&format!("\"repositoryName\": \"{name}\"")),
        "{created}"
    );

    let body = r#"{"repository_name": "Bad_Name!", "image_ids": [{}, {}, {}, {"image_tag": ""}]}"#;
    let get = "ecr.v1.EcrService/BatchGetImage";
    let (ok, refused) = grpcurl(&["-plaintext", "-d", body, addr, get]).await;
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

/// Without reflection, the README's flags: service.proto imports nothing of
/// google.rpc, so error_details.proto is named too, or the details stay raw.
#[tokio::test]
async fn grpcurl_with_local_protos_takes_ecr_json_and_decodes_error_details() {
    let facade = TestFacade::start(&moto().url).await;
    let addr = facade.addr.to_string();
    let proto_dir = repo_root().join("proto");
    let (ok, refused) = grpcurl(&[
        "-plaintext",
        "-import-path",
        proto_dir.to_str().unwrap(),
        "-proto",
        "ecr/v1/service.proto",
        "-proto",
        "google/rpc/error_details.proto",
        "-d",
        r#"{"repositoryName": "Bad_Name!", "tags": [{"Key": "team", "Value": "a"}]}"#,
        &addr,
        "ecr.v1.EcrService/CreateRepository",
    ])
    .await;
    assert!(!ok);
    assert!(refused.contains("Code: InvalidArgument"), "{refused}");
    assert!(
        refused.contains(r#""fieldViolations":[{"field":"repository_name""#),
        "details decoded: {refused}"
    );
}

/// The README's JSON promise: for every served method with a botocore
/// operation, the body boto3 would send to ECR (enum names mapped) decodes as
/// the ecr.v1 request. The script lists the methods by reflection.
#[tokio::test]
async fn botocore_json_of_every_served_action_decodes_as_the_request() {
    let facade = TestFacade::start(&moto().url).await;
    let output = tokio::process::Command::new(venv_bin("python"))
        .arg(repo_root().join("tests/python/botocore_json_check.py"))
        .arg(facade.addr.to_string())
        .arg(venv_bin("grpcurl"))
        .arg(crate::common::unique_name("botocore-json"))
        .output()
        .await
        .expect("running the botocore json check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "botocore json check failed:\n{text}"
    );
    assert!(
        text.contains("ok   CreateRepository (every member)"),
        "{text}"
    );
}

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

/// grpcurl with `input` on its standard input (`-d @`: one JSON message
/// after another, for streaming calls): whether it succeeded, and its
/// stdout and stderr. It runs on a blocking thread, so that the in-process
/// facade it calls keeps serving.
async fn grpcurl_with_input(args: &[&str], input: String) -> (bool, String) {
    let args: Vec<String> = args.iter().map(|&arg| arg.to_owned()).collect();
    tokio::task::spawn_blocking(move || run_grpcurl(&args, &input))
        .await
        .unwrap()
}

fn run_grpcurl(args: &[String], input: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(venv_bin("grpcurl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running grpcurl");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// grpcurl pushes a layer and a config (PushLayer, messages on stdin), puts
/// a manifest, and pulls the layer back (PullLayer, base64 chunks).
#[tokio::test]
async fn grpcurl_pushes_tags_and_pulls_a_layer() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (_emulator, facade) = crate::common::upstream::emulator_facade(false).await;
    let addr = facade.addr.to_string();
    let name = crate::common::unique_name("grpcurl-push");
    let call = |method: &str, input: String| {
        let (addr, method) = (addr.clone(), format!("ecr.v1.EcrService/{method}"));
        async move { grpcurl_with_input(&["-plaintext", "-d", "@", &addr, &method], input).await }
    };
    let (ok, out) = call(
        "CreateRepository",
        format!(r#"{{"repository_name": "{name}"}}"#),
    )
    .await;
    assert!(ok, "{out}");
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let config = br#"{"os":"linux"}"#.to_vec();
    for blob in [&layer, &config] {
        let mut input = format!(r#"{{"header": {{"repository_name": "{name}"}}}}"#);
        for chunk in blob.chunks(100_000) {
            input.push_str(&format!(r#" {{"chunk": "{}"}}"#, b64.encode(chunk)));
        }
        let (ok, out) = call("PushLayer", input).await;
        assert!(ok, "{out}");
        assert!(
            out.contains(&format!(r#""layerDigest": "{}""#, sha256_digest(blob))),
            "{out}"
        );
    }
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": config.len(), "digest": sha256_digest(&config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                    "size": layer.len(), "digest": sha256_digest(&layer)}],
    })
    .to_string();
    let put =
        serde_json::json!({"repository_name": name, "image_manifest": manifest, "image_tag": "v1"});
    let (ok, out) = call("PutImage", put.to_string()).await;
    assert!(ok, "{out}");
    let pull = format!(
        r#"{{"repository_name": "{name}", "layer_digest": "{}"}}"#,
        sha256_digest(&layer)
    );
    let (ok, out) = call("PullLayer", pull).await;
    assert!(ok, "{out}");
    // grpcurl prints one JSON object per message.
    let mut pulled = Vec::new();
    let stream = serde_json::Deserializer::from_str(&out).into_iter::<serde_json::Value>();
    for message in stream {
        let message = message.expect("grpcurl prints JSON messages");
        if let Some(chunk) = message["chunk"].as_str() {
            pulled.extend(b64.decode(chunk).unwrap());
        }
    }
    assert!(pulled == layer, "pulled {} bytes", pulled.len());
}

/// The README's Python example: push a real image, promote it by tag, pull
/// the layer back — with stubs generated from proto/ by grpcio-tools —
/// through a facade in front of the emulator, and (without the pull: moto
/// has no download URLs) in front of moto.
#[tokio::test]
async fn the_python_push_pull_example_runs() {
    let stubs = std::env::temp_dir().join(crate::common::unique_name("py-stubs"));
    std::fs::create_dir_all(&stubs).unwrap();
    let proto = repo_root().join("proto");
    let generated = tokio::process::Command::new(venv_bin("python"))
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", proto.display()))
        .arg(format!("--python_out={}", stubs.display()))
        .arg(format!("--grpc_python_out={}", stubs.display()))
        .arg(proto.join("ecr/v1/service.proto"))
        .arg(proto.join("ecr/v1/types.proto"))
        .status()
        .await
        .unwrap();
    assert!(generated.success());
    let (_emulator, on_emulator) = crate::common::upstream::emulator_facade(false).await;
    let on_moto = TestFacade::start(&moto().url).await;
    for (facade, extra, last_line) in [
        (&on_emulator, None, "identical"),
        (&on_moto, Some("--no-pull"), "on one image"),
    ] {
        let output = tokio::process::Command::new(venv_bin("python"))
            .arg(repo_root().join("examples/python/push_pull.py"))
            .arg(facade.addr.to_string())
            .args(extra)
            .env("PYTHONPATH", &stubs)
            .output()
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "push_pull.py failed:\n{text}");
        assert!(text.trim_end().ends_with(last_line), "{text}");
    }
    let _ = std::fs::remove_dir_all(&stubs);
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
