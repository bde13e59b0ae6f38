//! Measures the attacks of `attacks` at the issue's scale against the binary
//! and prints RELIABILITY.md's table: a good caller's success rate and
//! latency during each attack, and the facade's peak RSS. A measurement,
//! not a test (ignored by default; nothing is asserted on the figures):
//!
//! ```sh
//! cargo build --release --bin ecr-facade
//! ECR_FACADE_BIN=$PWD/target/release/ecr-facade \
//!   cargo test --test it binary::reliability -- --ignored --nocapture --test-threads 1
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;

use super::attacks::{DESCRIBE, EMPTY_MESSAGE, Facade, RawConn};

/// Calls the good caller makes during an attack.
const GOOD_CALLS: usize = 300;
/// The good caller's deadline per call.
const GOOD_DEADLINE: Duration = Duration::from_secs(1);

/// One row of the table.
struct Row {
    attack: &'static str,
    parameters: String,
    ok: usize,
    p50: Duration,
    p99: Duration,
    rss_before_kib: u64,
    peak_rss_kib: u64,
}

/// A field of /proc/<pid>/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// The good caller: sequential calls on one connection (made before the
/// attack, as a client with a long-lived channel has), each with a deadline.
async fn good_caller(client: &mut GoodClient) -> (usize, Duration, Duration) {
    let mut latencies = Vec::with_capacity(GOOD_CALLS);
    let mut ok = 0;
    for _ in 0..GOOD_CALLS {
        let mut request =
            tonic::Request::new(ecr_facade::pb::DescribeRepositoriesRequest::default());
        request.set_timeout(GOOD_DEADLINE);
        if let Some(token) = &client.token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let started = Instant::now();
        if client.inner.describe_repositories(request).await.is_ok() {
            ok += 1;
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    (ok, at(0.50), at(0.99))
}

struct GoodClient {
    inner: ecr_facade::pb::ecr_service_client::EcrServiceClient<tonic::transport::Channel>,
    token: Option<String>,
}

async fn good_client(facade: &Facade, token: Option<&str>) -> GoodClient {
    let url = format!("http://{}", facade.addr);
    GoodClient {
        inner: ecr_facade::pb::ecr_service_client::EcrServiceClient::connect(url)
            .await
            .unwrap(),
        token: token.map(str::to_owned),
    }
}

async fn headers_only(
    addr: SocketAddr,
    conns: usize,
    streams: usize,
    token: Option<&'static str>,
) -> Vec<impl Sized> {
    let mut held = Vec::new();
    for _ in 0..conns {
        let mut conn = RawConn::open(addr, None).await;
        let mut calls = Vec::new();
        for _ in 0..streams {
            calls.push(conn.start(DESCRIBE, token).await);
        }
        held.push((conn, calls));
    }
    held
}

async fn zero_window(addr: SocketAddr, conns: usize, streams: usize) -> Vec<impl Sized> {
    let mut held = Vec::new();
    for _ in 0..conns {
        let mut conn = RawConn::open(addr, Some(0)).await;
        let mut calls = Vec::new();
        for _ in 0..streams {
            let (response, mut body) = conn.start(DESCRIBE, None).await;
            let _ = body.send_data(Bytes::from_static(&EMPTY_MESSAGE), true);
            calls.push((response, body));
        }
        held.push((conn, calls));
    }
    held
}

async fn measure<F, Fut, T>(
    attack: &'static str,
    parameters: String,
    fd_limit: Option<u32>,
    args: &[&str],
    token: Option<&str>,
    run: F,
) -> Row
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let facade = Facade::start_limited(fd_limit, args);
    let pid = facade.child.id();
    let mut client = good_client(&facade, token).await;
    // Warm up: first calls set up the upstream connection and caches.
    let _ = good_caller(&mut client).await;
    let rss_before_kib = status_kib(pid, "VmRSS:");
    let attack_state = run(facade.addr).await;
    // Let the attack settle (streams admitted, sockets accepted).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, p50, p99) = good_caller(&mut client).await;
    let peak_rss_kib = status_kib(pid, "VmHWM:");
    drop(attack_state);
    Row {
        attack,
        parameters,
        ok,
        p50,
        p99,
        rss_before_kib,
        peak_rss_kib,
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement for RELIABILITY.md; see the module doc"]
async fn reliability_table() {
    let policy = super::attacks::policy_file();
    let policy_path = policy.to_str().unwrap().to_owned();
    let mut rows = Vec::new();
    rows.push(
        measure(
            "none (baseline)",
            "defaults".into(),
            None,
            &[],
            None,
            |_| async {},
        )
        .await,
    );
    rows.push(
        measure(
            "headers, never a body",
            "4 connections × 256 streams, defaults".into(),
            None,
            &[],
            None,
            |addr| headers_only(addr, 4, 256, None),
        )
        .await,
    );
    rows.push(
        measure(
            "headers, never a body",
            "16 connections × 64 streams, defaults".into(),
            None,
            &[],
            None,
            |addr| headers_only(addr, 16, 64, None),
        )
        .await,
    );
    rows.push(
        measure(
            "zero receive window",
            "4 connections × 256 complete requests, defaults".into(),
            None,
            &[],
            None,
            |addr| zero_window(addr, 4, 256),
        )
        .await,
    );
    rows.push(
        measure(
            "zero receive window",
            "16 connections × 64 complete requests, defaults".into(),
            None,
            &[],
            None,
            |addr| zero_window(addr, 16, 64),
        )
        .await,
    );
    rows.push(
        measure(
            "zero receive window",
            "64 connections × 128 complete requests, defaults".into(),
            None,
            &[],
            None,
            |addr| zero_window(addr, 64, 128),
        )
        .await,
    );
    rows.push(
        measure(
            "one low-privilege token",
            "policy, --max-concurrent-rpcs 8; 4 connections × 8 headers-only streams".into(),
            None,
            &["--auth-policy", &policy_path, "--max-concurrent-rpcs", "8"],
            Some("good-token"),
            |addr| headers_only(addr, 4, 8, Some("low-token")),
        )
        .await,
    );
    rows.push(
        measure(
            "idle TCP sockets",
            "8,000 sockets that never speak, defaults".into(),
            None,
            &[],
            None,
            |addr| async move {
                let mut sockets = Vec::new();
                for _ in 0..8_000 {
                    if let Ok(socket) = TcpStream::connect(addr).await {
                        sockets.push(socket);
                    }
                }
                sockets
            },
        )
        .await,
    );
    rows.push(
        measure(
            "descriptor limit",
            "ulimit -n 256, 400 sockets that never speak, defaults".into(),
            Some(256),
            &[],
            None,
            |addr| async move {
                let mut sockets = Vec::new();
                for _ in 0..400 {
                    if let Ok(socket) = TcpStream::connect(addr).await {
                        sockets.push(socket);
                    }
                }
                sockets
            },
        )
        .await,
    );
    println!("| attack | parameters | good caller ok | p50 | p99 | RSS before | peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {}/{} | {:.1} ms | {:.1} ms | {:.1} MiB | {:.1} MiB |",
            row.attack,
            row.parameters,
            row.ok,
            GOOD_CALLS,
            row.p50.as_secs_f64() * 1e3,
            row.p99.as_secs_f64() * 1e3,
            row.rss_before_kib as f64 / 1024.0,
            row.peak_rss_kib as f64 / 1024.0,
        );
    }
}
