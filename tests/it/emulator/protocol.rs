//! AWS JSON 1.1 as ECR speaks it: errors for unknown operations and bad
//! bodies, oversized bodies refused unread, and twelve-hour authorization
//! tokens.
use ecr_facade::emulator::EmulatorConfig;

use super::{emulator_and_client, http};
use crate::common::upstream::start_emulator;

#[tokio::test]
async fn authorization_tokens_last_twelve_hours() {
    let (_emulator, ecr) = emulator_and_client().await;
    let answer = ecr.get_authorization_token().send().await.unwrap();
    let data = &answer.authorization_data()[0];
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token().unwrap())
        .unwrap();
    assert!(token.starts_with(b"AWS:"));
    assert_eq!(
        data.proxy_endpoint(),
        Some("https://123456789012.dkr.ecr.us-east-1.amazonaws.com")
    );
    let expires = data.expires_at().unwrap().secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((expires - now - 12 * 3600).abs() < 60, "{expires} vs {now}");
}

#[tokio::test]
async fn oversized_bodies_are_refused_unread() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    // Declared too large: refused from the head alone.
    let head = "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonEC2ContainerRegistry_V20150921.UploadLayerPart\r\n\
                Content-Length: 40000000\r\n\r\n";
    let (status, head, _) = http(&emulator, head.as_bytes()).await;
    assert_eq!(status, 413);
    assert!(head.contains("x-amzn-requestid"), "{head}");
    // Chunked, no length: refused once the stream passes the limit.
    let mut request = b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonEC2ContainerRegistry_V20150921.DescribeRepositories\r\n\
                        Transfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    let chunk = vec![b' '; 1024 * 1024];
    for _ in 0..3 {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(http(&emulator, &request).await.0, 413);
    assert_eq!(emulator.calls("DescribeRepositories"), 1);
}

#[tokio::test]
async fn protocol_errors_follow_aws_json() {
    let emulator = start_emulator(EmulatorConfig::default()).await;
    let (status, head, body) = http(&emulator, &api_request("NoSuchThing", "{}")).await;
    assert_eq!(status, 400);
    assert!(head.contains("x-amzn-requestid"));
    assert!(head.contains("content-type: application/x-amz-json-1.1"));
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["__type"], "UnknownOperationException");
    let (status, _, body) = http(&emulator, &api_request("DescribeRepositories", "{nope")).await;
    assert_eq!(status, 400);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["__type"], "SerializationException");
    let (status, _, body) = http(
        &emulator,
        &api_request("CreateRepository", r#"{"repositoryName":"a"}"#),
    )
    .await;
    assert_eq!(status, 400);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["__type"], "InvalidParameterException");
    assert_eq!(
        body["message"],
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must have length greater than or equal to 2'"
    );
}

fn api_request(op: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.{op}\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
