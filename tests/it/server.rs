//! The server around the service: health, reflection (v1 and v1alpha),
//! graceful shutdown, request ids, metrics, limits, and real callers —
//! grpcurl, Python grpcio clients, botocore's JSON.

mod callers;
mod health;
mod lifecycle;
mod limits;

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
