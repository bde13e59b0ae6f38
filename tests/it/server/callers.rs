//! Real callers: reflection v1, grpcurl (reflection v1alpha and local
//! protos, push and pull), Python grpcio clients, botocore's JSON.

use super::*;

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
