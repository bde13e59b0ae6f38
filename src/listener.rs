//! The accept loop shared by the gRPC, emulator and metrics listeners, and
//! the connection it hands out ([`Conn`]).
//!
//! - **A cap on open connections**: past `max_connections` a new socket is
//!   closed as soon as it is accepted (a fast failure the client can retry,
//!   rather than a backlog that times out).
//! - **A handshake bound**: a connection must deliver its first request
//!   within `handshake_timeout` — TLS handshake, HTTP/2 preface and the
//!   request's headers included — or it is closed. Without it every idle
//!   socket would hold a file descriptor and its buffers forever.
//! - **Accept errors backed off**: at the file-descriptor limit (EMFILE,
//!   ENFILE) `accept` fails at once every time, so retrying at once spins a
//!   core; the loop sleeps (10 ms doubling to 1 s) instead.
//! - **TCP keepalive set on every accepted socket** (tonic's
//!   `tcp_keepalive` only applies to its own `TcpIncoming`), so peers that
//!   vanish without a FIN are detected.
//!
//! What counts as "the first request" depends on the protocol: the gRPC
//! server's RPC layer marks the connection when a call's headers arrive
//! ([`ConnInfo::mark_active`], found in request extensions, also behind
//! TLS); plain HTTP/1.1 listeners ([`FirstRequest::Http1`]) watch the bytes
//! read for the blank line ending the first request's headers.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use crate::call_bounds::ConnectionLimits;

/// How a connection shows it has made its first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRequest {
    /// Someone calls [`ConnInfo::mark_active`] (the gRPC server's RPC layer).
    Marked,
    /// The end of the first HTTP/1.1 request head (`\r\n\r\n`) is read.
    Http1,
}

/// What one connection shares with the calls made on it (tonic puts it in
/// every request's extensions).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    remote: Option<SocketAddr>,
    state: Arc<ConnState>,
}

#[derive(Debug)]
struct ConnState {
    active: AtomicBool,
    calls: Arc<Semaphore>,
    /// Set by [`ConnInfo::close`]: the next read or write fails.
    closed: AtomicBool,
    /// The connection task, woken to notice `closed`.
    reader: AtomicWaker,
}

impl ConnInfo {
    /// The peer's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The first request arrived: the handshake bound no longer applies.
    pub fn mark_active(&self) {
        self.state.active.store(true, Ordering::Relaxed);
    }

    /// Closes the connection (abruptly: its calls end as the client sees a
    /// broken connection). For a client that does not read its answers.
    pub fn close(&self) {
        self.state.closed.store(true, Ordering::Release);
        self.state.reader.wake();
    }

    /// One of the connection's call slots, or `None` when all are taken.
    pub fn try_call(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.state.calls).try_acquire_owned().ok()
    }
}

/// An accepted connection: the socket, its handshake timer and its place
/// under the connection cap (given back when it drops).
pub struct Conn {
    stream: TcpStream,
    info: ConnInfo,
    mode: FirstRequest,
    handshake: Option<Pin<Box<Sleep>>>,
    /// The last three bytes read, to find `\r\n\r\n` across reads.
    tail: [u8; 3],
    _open: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("remote", &self.info.remote)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// What the calls of this connection share.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }

    /// Fails the read once the connection is closed, or the handshake bound
    /// passes without a request.
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.info.state.reader.register(cx.waker());
        if self.info.state.closed.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed by the facade",
            ));
        }
        let Some(timer) = self.handshake.as_mut() else {
            return Ok(());
        };
        if self.info.state.active.load(Ordering::Relaxed) {
            self.handshake = None;
            return Ok(());
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::debug!(peer = ?self.info.remote, "closing a connection that made no request in time");
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the handshake timeout",
                ))
            }
            Poll::Pending => Ok(()),
        }
    }

    /// Scans freshly read bytes for the end of an HTTP/1.1 request head.
    fn scan_http1(&mut self, read: &[u8]) {
        let mut window = u32::from_be_bytes([0, self.tail[0], self.tail[1], self.tail[2]]);
        for &byte in read {
            window = (window << 8) | u32::from(byte);
            if window == u32::from_be_bytes(*b"\r\n\r\n") {
                self.info.mark_active();
                return;
            }
        }
        let [_, a, b, c] = window.to_be_bytes();
        self.tail = [a, b, c];
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_handshake(cx)?;
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if self.mode == FirstRequest::Http1
            && self.handshake.is_some()
            && let Poll::Ready(Ok(())) = polled
        {
            self.scan_http1(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.info.state.closed.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

/// Accepts connections from a listener under [`ConnectionLimits`].
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    limits: ConnectionLimits,
    mode: FirstRequest,
    open: Arc<Semaphore>,
    calls_per_connection: usize,
    backoff: Duration,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

impl Acceptor {
    /// Accepts from `listener`; each connection may run
    /// `calls_per_connection` calls at once (see [`ConnInfo::try_call`]).
    pub fn new(
        listener: TcpListener,
        limits: ConnectionLimits,
        mode: FirstRequest,
        calls_per_connection: usize,
    ) -> Self {
        Self {
            listener,
            open: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
            mode,
            calls_per_connection: calls_per_connection.max(1),
            backoff: FIRST_BACKOFF,
        }
    }

    /// The next connection under the limits (errors are handled here:
    /// logged and, when they are about resources, backed off).
    pub async fn accept(&mut self) -> (Conn, SocketAddr) {
        loop {
            let (stream, remote) = match self.listener.accept().await {
                Ok(accepted) => {
                    self.backoff = FIRST_BACKOFF;
                    accepted
                }
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    tracing::warn!(error = %err, backoff = ?self.backoff, "accept failed; backing off");
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            let Ok(open) = Arc::clone(&self.open).try_acquire_owned() else {
                tracing::warn!(peer = %remote, max_connections = self.limits.max_connections, "connection refused at the connection limit");
                drop(stream);
                continue;
            };
            configure(&stream, self.limits.tcp_keepalive);
            let conn = Conn {
                stream,
                info: ConnInfo {
                    remote: Some(remote),
                    state: Arc::new(ConnState {
                        active: AtomicBool::new(false),
                        calls: Arc::new(Semaphore::new(self.calls_per_connection)),
                        closed: AtomicBool::new(false),
                        reader: AtomicWaker::new(),
                    }),
                },
                mode: self.mode,
                handshake: Some(Box::pin(tokio::time::sleep(self.limits.handshake_timeout))),
                tail: [0; 3],
                _open: open,
            };
            return (conn, remote);
        }
    }

    /// The connections as a stream (for tonic's `serve_with_incoming`).
    pub fn into_stream(self) -> impl Stream<Item = io::Result<Conn>> + Send + 'static {
        futures::stream::unfold(self, |mut acceptor| async move {
            let (conn, _) = acceptor.accept().await;
            Some((Ok(conn), acceptor))
        })
    }
}

/// Errors about one connection (the next accept may well succeed), as
/// opposed to errors about the process (descriptors, memory).
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

fn configure(stream: &TcpStream, keepalive: Option<Duration>) {
    // Small gRPC frames must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    if let Some(every) = keepalive {
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(every)
            .with_interval(every);
        if let Err(err) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
            tracing::debug!(error = %err, "setting tcp keepalive failed");
        }
    }
}

impl axum::serve::Listener for Acceptor {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        Acceptor::accept(self).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// An HTTP/1.1 listener (emulator, metrics) for `axum::serve` with at most
/// `max_connections` open, otherwise the default [`ConnectionLimits`];
/// handlers still get the peer's address with `ConnectInfo<SocketAddr>`
/// (axum provides it through `TapIo`).
pub fn http1(
    listener: TcpListener,
    max_connections: usize,
) -> axum::serve::TapIo<Acceptor, fn(&mut Conn)> {
    use axum::serve::ListenerExt;
    fn nothing(_: &mut Conn) {}
    let limits = ConnectionLimits {
        max_connections,
        ..ConnectionLimits::default()
    };
    Acceptor::new(listener, limits, FirstRequest::Http1, 1).tap_io(nothing as fn(&mut Conn))
}

#[cfg(test)]
mod tests;
