//! Injected faults (throttling, server errors, latency), set in-process or
//! through the admin endpoints, which need the admin token.
use std::time::Duration;

use ecr_facade::emulator::{AdminToken, Emulator, EmulatorConfig, FaultSpec};

use super::{client, code, emulator_and_client, http};
use crate::common::upstream::start_emulator;

#[tokio::test]
async fn faults_throttle_and_fail_then_calls_pass() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let ecr = client(&emulator, 3);
    let throttle_twice = FaultSpec {
        throttle_next: 2,
        ..Default::default()
    };
    emulator
        .set_fault("DescribeRepositories", throttle_twice)
        .unwrap();
    ecr.describe_repositories().send().await.unwrap();
    assert_eq!(emulator.calls("DescribeRepositories"), 3);

    let always_fail = FaultSpec {
        fail_all: true,
        ..Default::default()
    };
    emulator
        .set_fault("DescribeRepositories", always_fail)
        .unwrap();
    let err = ecr.describe_repositories().send().await.unwrap_err();
    assert_eq!(code(&err), "ServerException");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 500);
    assert_eq!(emulator.calls("DescribeRepositories"), 6);
    emulator.clear_faults();
    ecr.describe_repositories().send().await.unwrap();
    // The admin stats count every attempt, refused ones too.
    let stats = admin_stats(&emulator).await;
    assert_eq!(stats["calls"]["DescribeRepositories"], 7);
}

/// Latency delays the answer by at least the given time.
#[tokio::test]
async fn a_latency_fault_delays_the_answer() {
    let (emulator, ecr) = emulator_and_client().await;
    let slow = FaultSpec {
        latency: Duration::from_millis(300),
        ..Default::default()
    };
    emulator.set_fault("*", slow).unwrap();
    let started = std::time::Instant::now();
    ecr.describe_repositories().send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

/// PUT /_emulator/faults/ListImages (throttle once) with `auth`'s header line.
fn put_list_images_fault(auth: &str) -> String {
    let spec = r#"{"throttle_next": 1}"#;
    format!(
        "PUT /_emulator/faults/ListImages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         {auth}Content-Length: {}\r\n\r\n{spec}",
        spec.len()
    )
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// GET /_emulator/stats with the admin token: the answer's JSON.
async fn admin_stats(emulator: &Emulator) -> serde_json::Value {
    let auth = bearer(emulator.admin_token());
    let stats =
        format!("GET /_emulator/stats HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    let (status, _, body) = http(emulator, stats.as_bytes()).await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn the_admin_endpoints_refuse_a_missing_or_wrong_token() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let wrong = bearer(&format!("{}x", emulator.admin_token()));
    for refused in ["", wrong.as_str(), "Authorization: Bearer \r\n"] {
        let request = put_list_images_fault(refused);
        let (status, head, _) = http(&emulator, request.as_bytes()).await;
        assert_eq!(status, 401, "{refused:?}");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
    }
    let stats = "GET /_emulator/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(http(&emulator, stats.as_bytes()).await.0, 401);
    assert_eq!(emulator.faults().specs_snapshot().len(), 0);
}

/// The faults again, set through the admin endpoints with the admin token.
#[tokio::test]
async fn faults_set_through_the_admin_endpoints_apply_and_are_counted() {
    let (emulator, once) = emulator_and_client().await;
    let auth = bearer(emulator.admin_token());
    let request = put_list_images_fault(&auth);
    assert_eq!(http(&emulator, request.as_bytes()).await.0, 204);
    let list = || once.list_images().repository_name("a/b").send();
    assert_eq!(code(&list().await.unwrap_err()), "ThrottlingException");
    assert_eq!(
        code(&list().await.unwrap_err()),
        "RepositoryNotFoundException"
    );
    let stats = admin_stats(&emulator).await;
    assert_eq!(stats["calls"]["ListImages"], 2);
    assert_eq!(stats["total"], emulator.total_calls());
    let bad = format!(
        "PUT /_emulator/faults/NoSuchOp HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    assert_eq!(http(&emulator, bad.as_bytes()).await.0, 400);
}

#[tokio::test]
async fn a_configured_admin_token_is_required_and_never_shown() {
    let token = "configured-admin-token-0001";
    let config = EmulatorConfig {
        admin_token: Some(AdminToken::parse(token).unwrap()),
        ..Default::default()
    };
    let emulator = start_emulator(config).await;
    assert_eq!(emulator.admin_token(), token);
    assert!(!format!("{emulator:?}").contains(token));
    let delete = |auth: String| {
        format!("DELETE /_emulator/stats HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")
    };
    let (status, _, body) = http(&emulator, delete(String::new()).as_bytes()).await;
    assert_eq!(status, 401);
    assert!(!String::from_utf8_lossy(&body).contains(token));
    let auth = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(http(&emulator, delete(auth).as_bytes()).await.0, 204);
    // Another emulator's random token does not open this one.
    let other = start_emulator(EmulatorConfig::default()).await;
    assert_ne!(other.admin_token(), token);
    let auth = format!("Authorization: Bearer {}\r\n", other.admin_token());
    assert_eq!(http(&emulator, delete(auth).as_bytes()).await.0, 401);
    other.shutdown().await;
    emulator.shutdown().await;
}
