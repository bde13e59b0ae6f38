//! Transport security and authorization over real gRPC: TLS and mTLS with an
//! in-test PKI, identities from certificate SANs and bearer tokens, policy
//! decisions with their `google.rpc.ErrorInfo`, read-only mode, open health
//! and reflection, and policy reloads (direct and by SIGHUP).
//!
//! Most tests serve `guarded.rs` — a double of the handlers that authorize
//! first, as the facade's do — through the real `server::serve`; `facade`
//! runs the real facade. `setup.rs` holds the PKI files, the policy and the
//! assertions; `pki.rs` makes the certificates.

mod facade;
mod guarded;
pub(crate) mod pki;
mod policy;
mod setup;
mod transport;

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
