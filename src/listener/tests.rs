//! The accept loop against real loopback sockets.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const HANDSHAKE: Duration = Duration::from_millis(300);
/// Far longer than any bound under test: only a hang reaches it.
const NEVER: Duration = Duration::from_secs(20);

/// An acceptor whose connections are read (and answered with `ok` once
/// marked active) until they fail or close.
async fn serve(max_connections: usize, mode: FirstRequest) -> (SocketAddr, Arc<Semaphore>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnectionLimits {
        max_connections,
        handshake_timeout: HANDSHAKE,
        tcp_keepalive: Some(Duration::from_secs(7)),
    };
    let mut acceptor = Acceptor::new(listener, limits, mode, 4);
    let accepted = Arc::new(Semaphore::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = acceptor.accept().await;
            let keepalive = socket2::SockRef::from(&conn.stream).keepalive().unwrap();
            assert!(keepalive, "tcp keepalive reaches the socket");
            counter.add_permits(1);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) if conn.info().state.active.load(Ordering::Relaxed) => {
                            let _ = conn.write_all(b"ok").await;
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    (addr, accepted)
}

/// Reads until EOF or error; `true` when the server closed the socket.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(NEVER, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn a_socket_that_never_makes_a_request_is_closed() {
    let (addr, _) = serve(10, FirstRequest::Marked).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    assert!(closed_by_server(&mut idle).await);
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut slow).await,
        "bytes without a request do not count"
    );
}

#[tokio::test]
async fn an_http1_request_head_ends_the_handshake() {
    let (addr, _) = serve(10, FirstRequest::Http1).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    // Split across writes: the blank line is found across reads too.
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.write_all(b"\n").await.unwrap();
    let mut buf = [0u8; 2];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ok");
    tokio::time::sleep(HANDSHAKE * 3).await;
    client.write_all(b"more").await.unwrap();
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ok", "still open past the handshake bound");
}

#[tokio::test]
async fn past_the_connection_cap_new_sockets_are_closed_until_one_leaves() {
    let (addr, accepted) = serve(1, FirstRequest::Http1).await;
    let first = TcpStream::connect(addr).await.unwrap();
    let _ = accepted.acquire().await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(closed_by_server(&mut second).await);
    drop(first);
    // The first one's place comes back once the server sees it close.
    let mut third = loop {
        let mut candidate = TcpStream::connect(addr).await.unwrap();
        candidate
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 2];
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(1), candidate.read_exact(&mut buf)).await
        {
            break candidate;
        }
    };
    third.write_all(b"x").await.unwrap();
}

#[test]
fn only_per_connection_errors_are_retried_at_once() {
    assert!(is_connection_error(&io::Error::from(
        io::ErrorKind::ConnectionAborted
    )));
    // EMFILE: the process is out of descriptors.
    assert!(!is_connection_error(&io::Error::from_raw_os_error(24)));
}
