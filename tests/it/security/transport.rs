//! TLS and mTLS: trusted servers, refused clients, identities from
//! certificate SANs, a TLS connection that never asks anything.

use super::*;

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
