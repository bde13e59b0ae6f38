//! The real facade (not the guarded double) enforcing mTLS, the policy and
//! its registries, in front of an emulator.

use super::*;

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
