//! Transport security and authorization over real gRPC: TLS and mTLS with an
//! in-test PKI, identities from certificate SANs and bearer tokens, policy
//! decisions with their `google.rpc.ErrorInfo`, read-only mode, open health
//! and reflection, and policy reloads (direct and by SIGHUP).
//!
//! The server is `fixtures/guarded.rs`: the security layer and TLS config on
//! a tonic builder, with handlers that authorize first, as the facade's do.

mod guarded;
mod pki;
mod setup;

use crate::common::TestFacade;
use crate::common::upstream::facade_on_emulator;
use ecr_facade::emulator::Emulator;
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
#[cfg(unix)]
use ecr_facade::security::watch_sighup;
use ecr_facade::security::{SecurityArgs, token_sha256_hex};
use pki::Pki;
use setup::*;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_types::StatusExt;

const NOT_ALLOWED: &str = "ACTION_NOT_ALLOWED";

#[tokio::test]
async fn tls_serves_clients_that_trust_the_ca() {
    let files = Files::new();
    let server = start(files.tls()).await;
    let channel = server.tls(files.pki.ca_pem(), None).await.unwrap();
    let mut client = EcrServiceClient::new(channel);
    // No policy: anyone may call, and nobody is identified.
    let created = client.create_repository(create("any/repo")).await;
    assert_reached(created, "anonymous");

    let stranger = Pki::new("another ca");
    let error = server.tls(stranger.ca_pem(), None).await.unwrap_err();
    assert!(format!("{error:?}").contains("UnknownIssuer"), "{error:?}");
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_certificate_from_the_ca() {
    let files = Files::new();
    let server = start(files.mtls(false)).await;
    let refusal = tls_refusal(server.tls(files.pki.ca_pem(), None).await).await;
    assert!(refusal.contains("CertificateRequired"), "{refusal}");

    let foreign = Pki::new("foreign ca").client_with_uri(BUILDER);
    let identity = Some((foreign.cert.as_str(), foreign.key.as_str()));
    let refusal = tls_refusal(server.tls(files.pki.ca_pem(), identity).await).await;
    assert!(refusal.contains("UnknownCA"), "{refusal}");
}

#[tokio::test]
async fn the_caller_is_the_certificates_uri_san_else_its_dns_san() {
    let files = Files::new();
    let server = start(files.mtls(false)).await;

    let mut builder = files
        .client_as(&server, &files.pki.client_with_uri(BUILDER))
        .await;
    assert_reached(
        builder.create_repository(create("team-a/app")).await,
        BUILDER,
    );
    let refused = builder.create_repository(create("team-b/app")).await;
    assert_denied(refused, NOT_ALLOWED, "CreateRepository", "team-b/app");
    let listing = pb::DescribeRepositoriesRequest::default();
    let refused = builder.describe_repositories(listing).await;
    assert_denied(refused, NOT_ALLOWED, "DescribeRepositories", "*");

    let mut puller = files
        .client_as(&server, &files.pki.client_with_dns(PULLER))
        .await;
    assert_reached(puller.describe_images(describe("team-b/app")).await, PULLER);
    let listing = pb::DescribeRepositoriesRequest::default();
    assert_reached(puller.describe_repositories(listing).await, PULLER);
    let named = pb::DescribeRepositoriesRequest {
        repository_names: vec!["team-a/app".into(), "team-b/app".into()],
        ..Default::default()
    };
    assert_reached(puller.describe_repositories(named).await, PULLER);
    let refused = puller.create_repository(create("team-b/app")).await;
    assert_denied(refused, NOT_ALLOWED, "CreateRepository", "team-b/app");

    // A certificate with neither a URI nor a DNS SAN names nobody.
    let mut nameless = files
        .client_as(&server, &files.pki.client(Vec::new()))
        .await;
    let result = nameless.describe_images(describe("team-a/app")).await;
    assert_unauthenticated(result, "no credentials");
}

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

/// The real facade (not the guarded test server): TLS, mTLS identities and
/// the policy reach its handlers through the server wiring of `serve`.
#[tokio::test]
async fn the_facade_itself_enforces_mtls_and_the_policy() {
    use ecr_facade::emulator::EmulatorConfig;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

    let files = Files::new();
    let emulator = crate::common::upstream::start_emulator(EmulatorConfig::default()).await;
    let mut builder = crate::common::FacadeBuilder::new(&emulator.url());
    builder.security = files.mtls(false).security().unwrap();
    let facade = builder.start().await;
    let addr = facade.addr;
    let ca = files.pki.ca_pem().to_owned();
    let connect = move |client: Option<pki::Pem>| {
        let ca = ca.clone();
        async move {
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .domain_name("localhost");
            if let Some(client) = &client {
                tls = tls.identity(tonic::transport::Identity::from_pem(
                    &client.cert,
                    &client.key,
                ));
            }
            Endpoint::from_shared(format!("https://{addr}"))
                .unwrap()
                .tls_config(tls)
                .unwrap()
                .connect()
                .await
        }
    };
    let builder_channel = connect(Some(files.pki.client_with_uri(BUILDER)))
        .await
        .unwrap();
    let mut client = EcrServiceClient::new(builder_channel.clone());
    let created = client
        .create_repository(create("team-a/app"))
        .await
        .expect("the builder may create in team-a")
        .into_inner();
    assert_eq!(
        created.repository.unwrap().repository_name.as_deref(),
        Some("team-a/app")
    );
    assert_denied(
        client.create_repository(create("team-b/app")).await,
        NOT_ALLOWED,
        "CreateRepository",
        "team-b/app",
    );
    // Probes need no identity, even under mTLS policy checks.
    let health = HealthClient::new(builder_channel)
        .check(HealthCheckRequest {
            service: "ecr.v1.EcrService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);
    // Without a client certificate the handshake itself is refused.
    let refusal = tls_refusal(connect(None).await).await;
    assert!(refusal.contains("CertificateRequired"), "{refusal}");
    assert_eq!(
        emulator.calls("CreateRepository"),
        1,
        "the refused call never reached ECR"
    );
}

const ELSEWHERE: &str = "999999999999";

/// The real facade, in front of an emulator, under a policy granting the
/// [`TOKEN`] caller every action on `team-a/*`.
struct TeamA {
    /// The upstream, to count what reached it.
    emulator: Emulator,
    client: EcrServiceClient<tonic::transport::Channel>,
    _facade: TestFacade,
    /// Holds the policy file.
    _files: Files,
}

async fn team_a() -> TeamA {
    let files = Files::new();
    let policy = files.dir.write(
        "registries.toml",
        format!(
            "[[caller]]\nname = \"team-a\"\ntoken_sha256 = \"{}\"\n\
             actions = [\"*\"]\nrepositories = [\"team-a/*\"]\n",
            token_sha256_hex(TOKEN)
        ),
    );
    let security = SecurityArgs {
        auth_policy: Some(policy),
        ..SecurityArgs::default()
    }
    .security()
    .unwrap();
    let (emulator, facade) = facade_on_emulator(|builder| builder.security = security).await;
    TeamA {
        emulator,
        client: facade.client().await,
        _facade: facade,
        _files: files,
    }
}

/// `message` as the [`TOKEN`] caller sends it.
fn as_team_a<T>(message: T) -> tonic::Request<T> {
    with_authorization(message, &format!("Bearer {TOKEN}"))
}

/// A push of `team-a/app` into [`ELSEWHERE`]: authorized on its header, the
/// stream's first message.
fn push_elsewhere() -> Vec<pb::PushLayerRequest> {
    let header = pb::PushLayerRequest {
        message: Some(pb::push_layer_request::Message::Header(
            pb::PushLayerHeader {
                registry_id: Some(ELSEWHERE.into()),
                repository_name: "team-a/app".into(),
                ..Default::default()
            },
        )),
    };
    let chunk = pb::PushLayerRequest {
        message: Some(pb::push_layer_request::Message::Chunk(
            bytes::Bytes::from_static(b"layer"),
        )),
    };
    vec![header, chunk]
}

/// Asserts `result` is PERMISSION_DENIED for `action` in [`ELSEWHERE`].
fn assert_refused_elsewhere<T>(result: Result<T, tonic::Status>, action: &str) {
    let Err(status) = result else {
        panic!("{action} in {ELSEWHERE} was served");
    };
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().ends_with("in registry \"999999999999\""),
        "{}",
        status.message()
    );
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, NOT_ALLOWED);
    assert_eq!(info.metadata["registry"], ELSEWHERE);
    assert_eq!(info.metadata["action"], action);
}

/// The escalation of issue 11: a caller granted `team-a/*` in the facade's
/// own registry tried to create and delete `team-a/app` in registry
/// 999999999999. The real facade refuses both before they reach ECR.
#[tokio::test]
async fn the_facade_refuses_registries_the_policy_does_not_grant() {
    // Bound whole: its facade and policy file must outlive the calls.
    let TeamA {
        emulator,
        mut client,
        _facade,
        _files,
    } = team_a().await;
    let mut elsewhere = create("team-a/app");
    elsewhere.registry_id = Some(ELSEWHERE.into());
    let refused = client.create_repository(as_team_a(elsewhere)).await;
    assert_refused_elsewhere(refused, "CreateRepository");
    let delete = pb::DeleteRepositoryRequest {
        registry_id: Some(ELSEWHERE.into()),
        repository_name: "team-a/app".into(),
        force: Some(true),
    };
    let refused = client.delete_repository(as_team_a(delete)).await;
    assert_refused_elsewhere(refused, "DeleteRepository");
    let push = as_team_a(tokio_stream::iter(push_elsewhere()));
    assert_refused_elsewhere(client.push_layer(push).await, "PushLayer");
    let token = pb::GetAuthorizationTokenRequest {
        registry_ids: vec![ELSEWHERE.into()],
    };
    let refused = client
        .get_authorization_token(as_team_a(token))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    assert_eq!(emulator.calls("CreateRepository"), 0);
    assert_eq!(emulator.calls("DeleteRepository"), 0);
    assert_eq!(emulator.calls("GetAuthorizationToken"), 0);
    assert_eq!(emulator.calls("InitiateLayerUpload"), 0);
}

/// The same caller in the own registry (no registry_id) is served.
#[tokio::test]
async fn the_policy_grants_the_own_registry() {
    let mut team_a = team_a().await;
    team_a
        .client
        .create_repository(as_team_a(create("team-a/app")))
        .await
        .expect("team-a/app in the own registry is granted");
    assert_eq!(team_a.emulator.calls("CreateRepository"), 1);
}

#[tokio::test]
async fn a_tls_connection_that_never_makes_a_request_is_closed() {
    use ecr_facade::emulator::EmulatorConfig;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

    let files = Files::new();
    let emulator = crate::common::upstream::start_emulator(EmulatorConfig::default()).await;
    let mut builder = crate::common::FacadeBuilder::new(&emulator.url());
    builder.security = files.tls().security().unwrap();
    builder.server.connections.handshake_timeout = Duration::from_millis(300);
    let facade = builder.start().await;
    // Nothing sent: the TLS handshake never starts.
    let mut idle = tokio::net::TcpStream::connect(facade.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), idle.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the idle socket stayed open: {read:?}"
    );
    // A client that completes TLS and calls is served.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(files.pki.ca_pem()))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", facade.addr))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    EcrServiceClient::new(channel)
        .describe_repositories(pb::DescribeRepositoriesRequest::default())
        .await
        .unwrap();
}
