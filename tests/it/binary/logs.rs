//! The real binary at `RUST_LOG=trace`: the `docker login` password that
//! GetAuthorizationToken returns must not reach the logs (the AWS SDK prints
//! whole response bodies at trace level).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::common::binary::{BIN, registry_token, terminate};

#[tokio::test(flavor = "multi_thread")]
async fn trace_logs_carry_no_registry_password() {
    let mut child = Command::new(BIN)
        .args(["serve", "--emulator", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "trace")
        .env("ECR_FACADE_LOG_FORMAT", "text")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Trace output is large: drain it on a thread so the child never blocks.
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the facade logs its listen address");
        let listen = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("listen="))
            .map(str::to_owned);
        seen.push(line);
        if let Some(listen) = listen {
            break listen;
        }
    };
    let token = registry_token(&addr).await;
    assert_eq!(terminate(&mut child), Some(0));
    reader.join().unwrap();
    seen.extend(lines.try_iter());

    let everything = seen.join("\n");
    assert!(
        everything.contains("GetAuthorizationToken"),
        "trace logging was on"
    );
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&token)
        .unwrap();
    let password = String::from_utf8(decoded).unwrap();
    let password = password.strip_prefix("AWS:").unwrap();
    for secret in [token.as_str(), password] {
        assert!(
            !everything.contains(secret),
            "the registry password reached the trace logs"
        );
    }
}
