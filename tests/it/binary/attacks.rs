//! Hostile and careless callers against the real binary (`serve --emulator`,
//! loopback only): each attack runs while a well-behaved caller calls, which
//! must get its answer within its deadline; the attack's calls must end and
//! give their slots back, and its connections must be closed where the
//! attack leaves nothing else to do with them. Timings are bounds against
//! hangs (tens of seconds), never speed claims: RELIABILITY.md measures.

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use ecr_facade::pb;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::harness::*;

/// Headers and never a body: they take no global slot (32 held calls
/// against a global limit of 16), one connection holds no more than its
/// share, the good caller is served, and the held calls end with
/// DEADLINE_EXCEEDED at `--rpc-timeout`.
#[tokio::test(flavor = "multi_thread")]
async fn headers_only_streams_take_a_connections_share_and_end_at_the_deadline() {
    let facade = Facade::start(&[
        "--max-concurrent-rpcs",
        "16",
        "--max-concurrent-rpcs-per-connection",
        "8",
        "--rpc-timeout",
        "3s",
    ]);
    let (held, _conns) = hold_calls(&facade, 4, 32, None).await;
    // 4 × 32 streams, 4 × 8 admitted by their connections' caps.
    facade
        .await_metric(r#"ecr_facade_rpcs_in_flight"#, 32.0)
        .await;
    facade.good_call(Duration::from_secs(2)).await.unwrap();
    let (responses, _bodies): (Vec<_>, Vec<_>) = held.into_iter().unzip();
    let codes = tokio::time::timeout(
        HANG,
        futures::future::join_all(responses.into_iter().map(code_of)),
    )
    .await
    .expect("every held call is answered");
    assert_eq!(
        count(&codes, tonic::Code::ResourceExhausted),
        96,
        "{codes:?}"
    );
    assert_eq!(
        count(&codes, tonic::Code::DeadlineExceeded),
        32,
        "{codes:?}"
    );
    facade.await_metric("ecr_facade_rpcs_in_flight", 0.0).await;
    facade.good_call(Duration::from_secs(2)).await.unwrap();
}

/// Complete requests on connections that never open their receive window,
/// as many as the global limit: their answers are ready, so they hold their
/// connections' slots but not the server's, and a good caller is answered
/// while they wait; past the cap of waiting answers the oldest is ended, and
/// past --send-timeout (long before the 60 s deadline) the rest, their
/// connections closed.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_reads_gives_its_slots_back_and_is_disconnected() {
    let facade = Facade::start(&[
        "--max-concurrent-rpcs",
        "64",
        "--max-concurrent-rpcs-per-connection",
        "8",
        "--send-timeout",
        "3s",
    ]);
    let mut conns = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut conn = RawConn::open(facade.addr, Some(0)).await;
        for _ in 0..8 {
            let (response, mut body) = conn.start(DESCRIBE, None).await;
            body.send_data(Bytes::from_static(&EMPTY_MESSAGE), true)
                .unwrap();
            calls.push((response, body));
        }
        conns.push(conn);
    }
    // Every answer is ready once its headers arrive (they need no window).
    let (responses, _bodies): (Vec<_>, Vec<_>) = calls.into_iter().unzip();
    let _answered = tokio::time::timeout(HANG, futures::future::try_join_all(responses))
        .await
        .unwrap()
        .unwrap();
    facade.await_metric("ecr_facade_rpcs_in_flight", 64.0).await;
    facade.good_call(Duration::from_secs(2)).await.unwrap();
    // The good call was answered while the unread answers still waited; its
    // own answer, the 65th waiting past a cap of 64, ended the oldest unread
    // one and closed that connection (its 8 calls), not the others.
    let series = |code: &str| {
        format!(r#"ecr_facade_rpc_requests_total{{method="{DESCRIBE}",code="{code}"}}"#)
    };
    assert_eq!(facade.metric(&series("Ok")).await, 1.0);
    facade.await_metric("ecr_facade_rpcs_in_flight", 56.0).await;
    assert_eq!(facade.metric(&series("DeadlineExceeded")).await, 1.0);
    facade.await_metric("ecr_facade_rpcs_in_flight", 0.0).await;
    // The first call to expire closes its connection, which ends the
    // connection's other calls as Cancelled.
    let expired = facade.metric(&series("DeadlineExceeded")).await;
    let cancelled = facade.metric(&series("Cancelled")).await;
    assert!(expired >= 8.0, "{expired} expired");
    assert_eq!(expired + cancelled, 64.0);
    for conn in conns {
        conn.closed().await;
    }
    facade.good_call(Duration::from_secs(2)).await.unwrap();
}

/// With a policy, one caller's token holds at most its share of the slots,
/// however many connections it opens.
#[tokio::test(flavor = "multi_thread")]
async fn one_caller_cannot_take_the_slots_of_the_others() {
    let (_dir, policy) = policy_file();
    let facade = Facade::start(&[
        "--auth-policy",
        policy.to_str().unwrap(),
        "--max-concurrent-rpcs",
        "16",
        "--max-concurrent-rpcs-per-connection",
        "16",
        "--rpc-timeout",
        "3s",
    ]);
    let (held, _conns) = hold_calls(&facade, 4, 4, Some("low-token")).await;
    // A quarter of 16 for "low", the rest shed at once.
    facade.await_metric("ecr_facade_rpcs_in_flight", 4.0).await;
    let url = format!("http://{}", facade.addr);
    let mut client = pb::ecr_service_client::EcrServiceClient::connect(url)
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::DescribeRepositoriesRequest::default());
    request.set_timeout(Duration::from_secs(2));
    request
        .metadata_mut()
        .insert("authorization", "Bearer good-token".parse().unwrap());
    client.describe_repositories(request).await.unwrap();
    let (responses, _bodies): (Vec<_>, Vec<_>) = held.into_iter().unzip();
    let codes = tokio::time::timeout(
        HANG,
        futures::future::join_all(responses.into_iter().map(code_of)),
    )
    .await
    .unwrap();
    assert_eq!(
        count(&codes, tonic::Code::ResourceExhausted),
        12,
        "{codes:?}"
    );
    assert_eq!(count(&codes, tonic::Code::DeadlineExceeded), 4, "{codes:?}");
}

/// Sockets that never speak HTTP/2 are closed after --handshake-timeout,
/// those past --max-connections at once; the metrics and emulator
/// listeners close theirs too.
#[tokio::test(flavor = "multi_thread")]
async fn idle_sockets_are_closed_and_capped() {
    let facade = Facade::start(&["--handshake-timeout", "1s", "--max-connections", "40"]);
    let mut idle = Vec::new();
    for _ in 0..30 {
        idle.push(TcpStream::connect(facade.addr).await.unwrap());
    }
    facade.good_call(Duration::from_secs(2)).await.unwrap();
    for socket in &mut idle {
        assert!(closed_by_server(socket).await, "an idle socket stayed open");
    }
    // Past the cap: 40 held, the rest closed at once, all closed in the end.
    let mut crowd = Vec::new();
    for _ in 0..60 {
        crowd.push(TcpStream::connect(facade.addr).await.unwrap());
    }
    for socket in &mut crowd {
        assert!(closed_by_server(socket).await);
    }
    facade.good_call(Duration::from_secs(2)).await.unwrap();
    let metrics_host = facade.metrics.trim_start_matches("http://");
    let metrics_host = metrics_host.split('/').next().unwrap();
    let mut on_metrics = TcpStream::connect(metrics_host).await.unwrap();
    assert!(closed_by_server(&mut on_metrics).await);
}

/// At the file-descriptor limit every accept fails at once (EMFILE): the
/// accept loop must back off rather than spin a core, and serve again once
/// descriptors are free.
#[tokio::test(flavor = "multi_thread")]
async fn at_the_descriptor_limit_accepting_backs_off() {
    let facade = Facade::start_limited(Some(64), &["--handshake-timeout", "60s"]);
    let mut sockets = Vec::new();
    for _ in 0..100 {
        // The kernel completes these from the backlog whether or not the
        // facade can accept them.
        sockets.push(TcpStream::connect(facade.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = facade.child.id();
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = cpu_ticks(pid) - before;
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    // A spinning loop spends most of a core (2 s over 2 s); backing off, next
    // to nothing. A tenth of a core leaves room for a loaded machine.
    assert!(
        spent * 10 < per_second * 2,
        "{spent} ticks of cpu in 2 s at the descriptor limit"
    );
    drop(sockets);
    facade.good_call(Duration::from_secs(10)).await.unwrap();
}

/// User + system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Reads until EOF or error; `true` when the server closed the socket.
async fn closed_by_server(socket: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(HANG, socket.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Callers that reset their stream, or drop their connection, mid-request
/// are counted as Cancelled.
#[tokio::test(flavor = "multi_thread")]
async fn a_disconnect_mid_body_counts_as_cancelled() {
    let facade = Facade::start(&[]);
    let mut conn = RawConn::open(facade.addr, None).await;
    let (_response, mut body) = conn.start(DESCRIBE, None).await;
    // Half a message prefix, then the stream is reset.
    body.send_data(Bytes::from_static(&[0, 0]), false).unwrap();
    facade.await_metric("ecr_facade_rpcs_in_flight", 1.0).await;
    body.send_reset(h2::Reason::CANCEL);
    let cancelled =
        format!(r#"ecr_facade_rpc_requests_total{{method="{DESCRIBE}",code="Cancelled"}}"#);
    facade.await_metric(&cancelled, 1.0).await;
    let mut dropped = RawConn::open(facade.addr, None).await;
    let (response, mut body) = dropped.start(DESCRIBE, None).await;
    body.send_data(Bytes::from_static(&[0, 0]), false).unwrap();
    facade.await_metric("ecr_facade_rpcs_in_flight", 1.0).await;
    dropped.driver.abort();
    drop((response, body, dropped));
    facade.await_metric(&cancelled, 2.0).await;
    let unknown = format!(r#"ecr_facade_rpc_requests_total{{method="{DESCRIBE}",code="Unknown"}}"#);
    assert_eq!(facade.metric(&unknown).await, 0.0);
}

/// `--max-connection-age`: a connection is sent GOAWAY and closed after it.
#[tokio::test(flavor = "multi_thread")]
async fn connections_are_closed_after_the_max_connection_age() {
    let facade = Facade::start(&["--max-connection-age", "1s"]);
    let mut conn = RawConn::open(facade.addr, None).await;
    let (response, mut body) = conn.start(DESCRIBE, None).await;
    body.send_data(Bytes::from_static(&EMPTY_MESSAGE), true)
        .unwrap();
    assert_eq!(code_of(response).await, Some(0));
    let send = conn.send.clone();
    conn.closed().await;
    assert!(send.ready().await.is_err(), "no new stream after the age");
}

/// In emulator mode `--drain-timeout` bounds shutdown even while the
/// embedded emulator is still answering a slow call.
#[tokio::test(flavor = "multi_thread")]
async fn the_drain_timeout_bounds_shutdown_with_the_emulator() {
    let mut facade = Facade::start(&[
        "--drain-timeout",
        "1s",
        "--fault",
        "DescribeRepositories:latency=60s",
    ]);
    let addr = facade.addr;
    let slow = tokio::spawn(async move {
        let mut client =
            pb::ecr_service_client::EcrServiceClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        client
            .describe_repositories(pb::DescribeRepositoriesRequest::default())
            .await
    });
    facade.await_metric("ecr_facade_rpcs_in_flight", 1.0).await;
    let killed = Command::new("kill")
        .args(["-TERM", &facade.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = facade.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < HANG,
            "still running: the 60 s call kept it alive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.code(), Some(0));
    slow.abort();
}
