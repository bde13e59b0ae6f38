//! Flags the real binary refuses at startup — exiting non-zero with the
//! reason — instead of serving and failing on every call.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::binary::BIN;

/// Runs `serve --emulator` with `flags`; a process still running after 30 s
/// accepted them (it is killed and the test fails).
fn serve_with(flags: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(["serve", "--emulator", "--listen", "127.0.0.1:0"])
        .args(flags)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("serve {flags:?} was accepted and kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn an_absurd_rpc_timeout_is_refused_at_startup() {
    let output = serve_with(&["--rpc-timeout", "500000000000years"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--rpc-timeout must be between 1ms and 1day"),
        "{stderr}"
    );
}

#[test]
fn a_digest_count_whose_requests_cannot_fit_the_budget_is_refused_at_startup() {
    let output = serve_with(&["--max-layer-digests", "100000"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("BatchCheckLayerAvailability's requests may take"),
        "{stderr}"
    );
}
