//! The binary under attack and the tools of an attacker: `serve --emulator`
//! on ephemeral loopback ports with its metrics read back, raw HTTP/2
//! connections that start calls and never finish them, and a policy with a
//! low and a good caller. Used by `attacks` (tests) and `reliability`
//! (measurements).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use ecr_facade::pb;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::common::binary::{bin, listen_address};
use crate::common::http_get;
use crate::security::pki::TempDir;

/// Longest any awaited step may take before the test calls it a hang.
pub const HANG: Duration = Duration::from_secs(30);
pub const DESCRIBE: &str = "/ecr.v1.EcrService/DescribeRepositories";

/// The binary, killed when dropped.
pub struct Facade {
    pub child: Child,
    pub addr: SocketAddr,
    pub metrics: String,
}

impl Facade {
    /// `serve --emulator` on ephemeral loopback ports with `args` added.
    pub fn start(args: &[&str]) -> Facade {
        Self::start_limited(None, args)
    }

    /// [`Facade::start`] with at most `fd_limit` open files, if given.
    pub fn start_limited(fd_limit: Option<u32>, args: &[&str]) -> Facade {
        let bin = bin();
        let mut command = match fd_limit {
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.args([
                    "-c",
                    &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
                    &bin,
                ]);
                sh
            }
            None => Command::new(bin),
        };
        let mut child = command
            .args(["serve", "--emulator", "--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env("RUST_LOG", "warn,ecr_facade=info")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (addr, metrics) = listen_address(&mut lines);
        // Shed and failed calls log a line each: keep the pipe drained.
        std::thread::spawn(move || lines.for_each(drop));
        Facade {
            child,
            addr: addr.parse().unwrap(),
            metrics: metrics.expect("the metrics address is logged before the listen line"),
        }
    }

    /// One metric's value from the exposition (`0` when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = String::from_utf8(http_get(&self.metrics).await.1).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// Waits until `series` reads `want` (the server ends calls on its own
    /// timers), or panics after [`HANG`].
    pub async fn await_metric(&self, series: &str, want: f64) {
        let deadline = tokio::time::Instant::now() + HANG;
        loop {
            let value = self.metric(series).await;
            if value == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{series} stayed at {value}, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A well-behaved call: DescribeRepositories with a deadline.
    pub async fn good_call(&self, deadline: Duration) -> Result<(), tonic::Status> {
        let url = format!("http://{}", self.addr);
        let mut client = pb::ecr_service_client::EcrServiceClient::connect(url)
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut request = tonic::Request::new(pb::DescribeRepositoriesRequest::default());
        request.set_timeout(deadline);
        client.describe_repositories(request).await.map(drop)
    }
}

impl Drop for Facade {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/2 connection and the task driving it (it ends when the
/// server closes the connection).
pub struct RawConn {
    pub send: h2::client::SendRequest<Bytes>,
    pub driver: JoinHandle<Result<(), h2::Error>>,
}

impl RawConn {
    /// Connects; `window` is the receive window the client advertises.
    pub async fn open(addr: SocketAddr, window: Option<u32>) -> RawConn {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut builder = h2::client::Builder::new();
        if let Some(window) = window {
            builder.initial_window_size(window);
        }
        let (send, connection) = builder.handshake(tcp).await.unwrap();
        RawConn {
            send,
            driver: tokio::spawn(connection),
        }
    }

    /// Starts a call of `method`: its headers, and the request body handle.
    pub async fn start(
        &mut self,
        method: &str,
        token: Option<&str>,
    ) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("http://localhost{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let mut send = self.send.clone().ready().await.unwrap();
        send.send_request(request.body(()).unwrap(), false).unwrap()
    }

    /// Waits for the server to close the connection.
    pub async fn closed(self) {
        let driver = tokio::time::timeout(HANG, self.driver).await;
        assert!(driver.is_ok(), "the server kept the connection open");
    }
}

/// A call started on a [`RawConn`]: its answer, and its request body
/// (open while held).
pub type HeldCall = (h2::client::ResponseFuture, h2::SendStream<Bytes>);

/// Opens `conns` raw connections and starts `per_conn` DescribeRepositories
/// calls on each (as `token`'s caller, if given) whose bodies never end:
/// the held calls and the connections, which must stay alive.
pub async fn hold_calls(
    facade: &Facade,
    conns: usize,
    per_conn: usize,
    token: Option<&str>,
) -> (Vec<HeldCall>, Vec<RawConn>) {
    let mut held = Vec::new();
    let mut opened = Vec::new();
    for _ in 0..conns {
        let mut conn = RawConn::open(facade.addr, None).await;
        for _ in 0..per_conn {
            held.push(conn.start(DESCRIBE, token).await);
        }
        opened.push(conn);
    }
    (held, opened)
}

/// An empty protobuf message, gRPC-framed.
pub const EMPTY_MESSAGE: [u8; 5] = [0; 5];

/// The gRPC code a call ended with (trailers-only or after its body).
pub async fn code_of(response: h2::client::ResponseFuture) -> Option<i32> {
    let response = response.await.ok()?;
    let code = |headers: &http::HeaderMap| -> Option<i32> {
        headers.get("grpc-status")?.to_str().ok()?.parse().ok()
    };
    if let Some(code) = code(response.headers()) {
        return Some(code);
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.ok()?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    code(&body.trailers().await.ok()??)
}

pub fn count(codes: &[Option<i32>], code: tonic::Code) -> usize {
    codes.iter().filter(|c| **c == Some(code as i32)).count()
}

/// A policy with two callers: `low-token` may only DescribeRepositories,
/// `good-token` may do anything — written to a directory removed when the
/// returned [`TempDir`] drops: (that directory, the file).
pub fn policy_file() -> (TempDir, std::path::PathBuf) {
    let sha = ecr_facade::security::token_sha256_hex;
    let policy = format!(
        r#"
[[caller]]
name = "low"
token_sha256 = "{}"
actions = ["DescribeRepositories"]
repositories = ["*"]

[[caller]]
name = "good"
token_sha256 = "{}"
actions = ["*"]
repositories = ["*"]
"#,
        sha("low-token"),
        sha("good-token")
    );
    let dir = TempDir::new("attack-policy");
    let path = dir.write("policy.toml", policy);
    (dir, path)
}
