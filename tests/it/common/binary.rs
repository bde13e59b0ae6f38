//! The real `ecr-facade` binary as the tests run it: which executable, its
//! JSON listen line, a registry token through it, and SIGTERM.

use std::process::{Child, Command};

use ecr_facade::pb;
use serde_json::Value;

/// The binary this build made.
pub const BIN: &str = env!("CARGO_BIN_EXE_ecr-facade");

/// The binary to run: `ECR_FACADE_BIN` when set (RELIABILITY.md measures a
/// release build), else [`BIN`].
pub fn bin() -> String {
    std::env::var("ECR_FACADE_BIN").unwrap_or_else(|_| BIN.to_owned())
}

/// Reads JSON log lines up to the one naming the listen address: that
/// address, and the metrics URL when a line before it named one.
pub fn listen_address(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> (String, Option<String>) {
    let mut metrics = None;
    loop {
        let line = lines.next().expect("the facade logs its listen address");
        let line: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if let Some(url) = line["metrics"].as_str() {
            metrics = Some(url.to_owned());
        }
        if let Some(listen) = line["listen"].as_str() {
            return (listen.to_owned(), metrics);
        }
    }
}

/// A `docker login` token fetched through the facade at `addr`.
pub async fn registry_token(addr: &str) -> String {
    pb::ecr_service_client::EcrServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
        .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
        .await
        .unwrap()
        .into_inner()
        .authorization_data
        .remove(0)
        .authorization_token
        .unwrap()
}

/// Sends SIGTERM to `child` and waits: its exit code.
pub fn terminate(child: &mut Child) -> Option<i32> {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().unwrap().code()
}
