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

use super::harness::{DESCRIBE, EMPTY_MESSAGE, Facade, RawConn};

/// Calls the good caller makes during an attack.
const GOOD_CALLS: usize = 300;
/// The good caller's deadline per call.
const GOOD_DEADLINE: Duration = Duration::from_secs(1);

/// One row of the table.
struct Row {
    attack: &'static str,
    parameters: &'static str,
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

/// Sockets that connect and never speak.
async fn idle_sockets(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::new();
    for _ in 0..count {
        if let Ok(socket) = TcpStream::connect(addr).await {
            sockets.push(socket);
        }
    }
    sockets
}

/// What a row's attacker does.
enum Attack {
    /// No attack: the good caller alone.
    Baseline,
    /// Connections × streams whose headers come and whose body never does,
    /// sent with a bearer token or none.
    HeadersOnly(usize, usize, Option<&'static str>),
    /// Connections × complete requests whose answers the attacker never reads.
    ZeroWindow(usize, usize),
    IdleSockets(usize),
}

impl Attack {
    /// Starts the attack on `addr`: what it holds open until dropped.
    async fn start(&self, addr: SocketAddr) -> Box<dyn Send> {
        match *self {
            Attack::Baseline => Box::new(()),
            Attack::HeadersOnly(conns, streams, token) => {
                Box::new(headers_only(addr, conns, streams, token).await)
            }
            Attack::ZeroWindow(conns, streams) => Box::new(zero_window(addr, conns, streams).await),
            Attack::IdleSockets(count) => Box::new(idle_sockets(addr, count).await),
        }
    }
}

/// One row to measure: the attack, and the facade and good caller it runs
/// against.
struct Case {
    attack: &'static str,
    parameters: &'static str,
    fd_limit: Option<u32>,
    args: Vec<String>,
    token: Option<&'static str>,
    run: Attack,
}

impl Case {
    /// `run` against a facade with default flags and an anonymous good caller.
    fn defaults(attack: &'static str, parameters: &'static str, run: Attack) -> Self {
        Self {
            attack,
            parameters,
            fd_limit: None,
            args: Vec::new(),
            token: None,
            run,
        }
    }
}

async fn measure(case: Case) -> Row {
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    let facade = Facade::start_limited(case.fd_limit, &args);
    let pid = facade.child.id();
    let mut client = good_client(&facade, case.token).await;
    // Warm up: first calls set up the upstream connection and caches.
    let _ = good_caller(&mut client).await;
    let rss_before_kib = status_kib(pid, "VmRSS:");
    let attack_state = case.run.start(facade.addr).await;
    // Let the attack settle (streams admitted, sockets accepted).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (ok, p50, p99) = good_caller(&mut client).await;
    let peak_rss_kib = status_kib(pid, "VmHWM:");
    drop(attack_state);
    Row {
        attack: case.attack,
        parameters: case.parameters,
        ok,
        p50,
        p99,
        rss_before_kib,
        peak_rss_kib,
    }
}

/// RELIABILITY.md's rows, in its order; `policy` is the policy file the
/// low-privilege row runs under.
fn cases(policy: &str) -> Vec<Case> {
    use Attack::*;
    let defaults = Case::defaults;
    vec![
        defaults("none (baseline)", "defaults", Baseline),
        defaults(
            "headers, never a body",
            "4 connections × 256 streams, defaults",
            HeadersOnly(4, 256, None),
        ),
        defaults(
            "headers, never a body",
            "16 connections × 64 streams, defaults",
            HeadersOnly(16, 64, None),
        ),
        defaults(
            "zero receive window",
            "4 connections × 256 complete requests, defaults",
            ZeroWindow(4, 256),
        ),
        defaults(
            "zero receive window",
            "16 connections × 64 complete requests, defaults",
            ZeroWindow(16, 64),
        ),
        defaults(
            "zero receive window",
            "64 connections × 128 complete requests, defaults",
            ZeroWindow(64, 128),
        ),
        Case {
            args: ["--auth-policy", policy, "--max-concurrent-rpcs", "8"]
                .map(str::to_owned)
                .to_vec(),
            token: Some("good-token"),
            ..defaults(
                "one low-privilege token",
                "policy, --max-concurrent-rpcs 8; 4 connections × 8 headers-only streams",
                HeadersOnly(4, 8, Some("low-token")),
            )
        },
        defaults(
            "idle TCP sockets",
            "8,000 sockets that never speak, defaults",
            IdleSockets(8_000),
        ),
        Case {
            fd_limit: Some(256),
            ..defaults(
                "descriptor limit",
                "ulimit -n 256, 400 sockets that never speak, defaults",
                IdleSockets(400),
            )
        },
    ]
}

fn print_table(rows: &[Row]) {
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

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement for RELIABILITY.md; see the module doc"]
async fn reliability_table() {
    let (_dir, policy) = super::harness::policy_file();
    let mut rows = Vec::new();
    for case in cases(policy.to_str().unwrap()) {
        rows.push(measure(case).await);
    }
    print_table(&rows);
}
