//! The policy: bearer-token callers, read-only mode, open health and
//! reflection, reloads (direct and by SIGHUP).

use super::*;

#[tokio::test]
async fn bearer_tokens_identify_callers_by_their_sha256() {
    let files = Files::new();
    let server = start(files.plaintext_with_policy()).await;
    let mut client = EcrServiceClient::new(server.plaintext().await);
    let token_request = || pb::GetAuthorizationTokenRequest::default();

    let bearer = format!("Bearer {TOKEN}");
    let result = client
        .get_authorization_token(with_authorization(token_request(), &bearer))
        .await;
    assert_reached(result, "token:ci");
    let result = client
        .describe_images(with_authorization(describe("team-a/app"), &bearer))
        .await;
    assert_denied(result, NOT_ALLOWED, "DescribeImages", "team-a/app");

    for (authorization, message) in [
        ("Bearer wrong-token".to_owned(), "unknown bearer token"),
        (format!("Basic {TOKEN}"), "malformed authorization metadata"),
    ] {
        let request = with_authorization(token_request(), &authorization);
        let result = client.get_authorization_token(request).await;
        assert_unauthenticated(result, message);
    }
    let result = client.get_authorization_token(token_request()).await;
    assert_unauthenticated(result, "no credentials");
}

#[tokio::test]
async fn read_only_refuses_create_repository_but_not_reads() {
    let files = Files::new();
    let server = start(files.mtls(true)).await;
    let mut builder = files
        .client_as(&server, &files.pki.client_with_uri(BUILDER))
        .await;
    let refused = builder.create_repository(create("team-a/app")).await;
    assert_denied(refused, "READ_ONLY", "CreateRepository", "team-a/app");
    assert_reached(
        builder.describe_images(describe("team-a/app")).await,
        BUILDER,
    );
}

#[tokio::test]
async fn health_and_reflection_stay_open_without_credentials() {
    let files = Files::new();
    let server = start(files.plaintext_with_policy()).await;
    let channel = server.plaintext().await;
    let result = EcrServiceClient::new(channel.clone())
        .describe_images(describe("team-a/app"))
        .await;
    assert_unauthenticated(result, "no credentials");

    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "ecr.v1.EcrService".into(),
        })
        .await
        .unwrap();
    assert_eq!(health.into_inner().status(), ServingStatus::Serving);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer {answer:?}");
    };
    assert!(list.service.iter().any(|s| s.name == "ecr.v1.EcrService"));
}

#[tokio::test]
async fn reload_swaps_the_policy_on_open_connections_and_keeps_it_when_invalid() {
    let files = Files::new();
    let server = start(files.mtls(false)).await;
    let store = server.authorizer.store().clone();
    let mut builder = files
        .client_as(&server, &files.pki.client_with_uri(BUILDER))
        .await;
    let refused = builder.create_repository(create("team-b/app")).await;
    assert_denied(refused, NOT_ALLOWED, "CreateRepository", "team-b/app");

    std::fs::write(&files.policy, policy().replace("team-a/*", "team-b/*")).unwrap();
    store.reload().unwrap();
    // The same connection, under the new policy.
    assert_reached(
        builder.create_repository(create("team-b/app")).await,
        BUILDER,
    );

    std::fs::write(&files.policy, "[[caller]]\ncertificate = 3\n").unwrap();
    let error = store.reload().unwrap_err().to_string();
    assert!(error.starts_with("invalid policy file"), "{error}");
    assert!(
        error.contains("policy.toml: line 2: invalid type"),
        "{error}"
    );
    assert_reached(
        builder.create_repository(create("team-b/app")).await,
        BUILDER,
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_policy_and_an_invalid_file_keeps_the_old_one() {
    let files = Files::new();
    let server = start(files.mtls(false)).await;
    let store = server.authorizer.store().clone();
    let mut reloads = store.reloads();
    // The handler is installed when `watch_sighup` returns, before any
    // signal is sent; tokio's handler then serves the whole process.
    tokio::spawn(watch_sighup(store).unwrap());
    let hangup = || {
        // SAFETY: kill(2) with our own pid and a signal tokio now handles.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGHUP) }, 0);
    };
    let mut builder = files
        .client_as(&server, &files.pki.client_with_uri(BUILDER))
        .await;
    let refused = builder.create_repository(create("team-b/app")).await;
    assert_denied(refused, NOT_ALLOWED, "CreateRepository", "team-b/app");

    std::fs::write(&files.policy, policy().replace("team-a/*", "team-b/*")).unwrap();
    hangup();
    reloaded(&mut reloads).await;
    assert_reached(
        builder.create_repository(create("team-b/app")).await,
        BUILDER,
    );

    std::fs::write(&files.policy, "not = [toml").unwrap();
    hangup();
    reloaded(&mut reloads).await;
    assert_reached(
        builder.create_repository(create("team-b/app")).await,
        BUILDER,
    );
}
