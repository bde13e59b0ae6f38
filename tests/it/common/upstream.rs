//! The upstreams a scenario runs against — moto server and an emulator of
//! the test's own — behind a counting proxy, with the facade in front, and
//! [`against_both!`] to run a scenario once per upstream.

use ecr_facade::emulator::{Emulator, EmulatorConfig};
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use super::proxy::Proxy;
use super::{FacadeBuilder, TestFacade, moto};

/// An emulator of `config` on an ephemeral loopback port; stops when dropped.
pub async fn start_emulator(config: EmulatorConfig) -> Emulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Emulator::start(listener, config).await.unwrap()
}

/// A facade, configured by `configure`, straight in front of a fresh
/// emulator of this test's own.
pub async fn facade_on_emulator(
    configure: impl FnOnce(&mut FacadeBuilder),
) -> (Emulator, TestFacade) {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let mut builder = FacadeBuilder::new(&emulator.url());
    configure(&mut builder);
    (emulator, builder.start().await)
}

/// The facade (default settings) in front of a fresh emulator, seeded with
/// the demo images or empty.
pub async fn emulator_facade(seed_demo: bool) -> (Emulator, TestFacade) {
    let emulator = start_emulator(EmulatorConfig {
        seed_demo,
        ..EmulatorConfig::default()
    })
    .await;
    let facade = TestFacade::start(&emulator.url()).await;
    (emulator, facade)
}

/// Which ECR implementation answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Moto,
    Emulator,
}

/// A running upstream: the shared moto server, or an emulator of this test's own.
pub struct Upstream {
    pub url: String,
    _emulator: Option<Emulator>,
}

impl Upstream {
    pub async fn start(kind: Kind) -> Self {
        match kind {
            Kind::Moto => Self {
                url: moto().url.clone(),
                _emulator: None,
            },
            Kind::Emulator => {
                let emulator = start_emulator(EmulatorConfig::default()).await;
                Self {
                    url: emulator.url(),
                    _emulator: Some(emulator),
                }
            }
        }
    }
}

/// What a scenario runs against: the upstream, the counting proxy in front
/// of it (what reached ECR), and the facade in front of that, alive while
/// this is.
pub struct Setup {
    pub upstream: Upstream,
    pub proxy: Proxy,
    _facade: TestFacade,
}

/// Starts `kind`'s upstream, a proxy and a facade: a client of the facade,
/// and the [`Setup`] to keep.
pub async fn setup(kind: Kind) -> (EcrServiceClient<Channel>, Setup) {
    let upstream = Upstream::start(kind).await;
    let proxy = Proxy::start(Some(&upstream.url)).await;
    let facade = TestFacade::start(&proxy.url).await;
    let client = facade.client().await;
    let setup = Setup {
        upstream,
        proxy,
        _facade: facade,
    };
    (client, setup)
}

/// Runs each scenario against moto and against the emulator.
macro_rules! against_both {
    ($($scenario:ident),+ $(,)?) => {
        mod moto {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario($crate::common::upstream::Kind::Moto).await
            })+
        }
        mod emulator {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario($crate::common::upstream::Kind::Emulator).await
            })+
        }
    };
}
pub(crate) use against_both;

/// Creates repository `name`.
pub async fn create(client: &mut EcrServiceClient<Channel>, name: &str) -> pb::Repository {
    client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: name.to_owned(),
            ..Default::default()
        })
        .await
        .expect("create repository")
        .into_inner()
        .repository
        .expect("repository in the answer")
}

/// Asserts `status` is `code` with ECR's `reason` in an `ErrorInfo`.
pub fn assert_ecr_error(status: &tonic::Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo detail");
    assert_eq!(info.reason, reason);
    assert_eq!(info.domain, "ecr.amazonaws.com");
    assert!(!status.message().is_empty());
}

/// Asserts `status` is INVALID_ARGUMENT: the fields its `BadRequest` names,
/// in order.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("a BadRequest detail")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}
