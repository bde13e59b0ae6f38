//! Logging: the subscriber (text or JSON) and one span per RPC.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::body::Body;
use tower::{Layer, Service};
use tracing::{Instrument, Span, field};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; `RUST_LOG` overrides the default `info`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

/// Tower layer that opens one `rpc` span per call (the parent of everything
/// the handler logs) and logs its end once, with the method, the final gRPC
/// code and the latency from request to end of response (a stream's last
/// message included). A call the client abandons ends as `Cancelled`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcLogLayer;

impl<S> Layer<S> for RpcLogLayer {
    type Service = RpcLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcLog { inner }
    }
}

/// The service made by [`RpcLogLayer`].
#[derive(Debug, Clone)]
pub struct RpcLog<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for RpcLog<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = tracing::info_span!(
            "rpc",
            method = %request.uri().path(),
            code = field::Empty,
            latency_ms = field::Empty,
        );
        let mut end = RpcEnd {
            span: span.clone(),
            start: Instant::now(),
            done: false,
        };
        let response = self.inner.call(request).instrument(span);
        Box::pin(async move {
            let response = response.await?;
            // Errors are trailers-only responses: the code is in the headers.
            if let Some(code) = grpc_code(response.headers()) {
                end.finish(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(LoggedBody {
                    inner: body,
                    end: Some(end),
                })
            }))
        })
    }
}

/// Logs the end of one RPC exactly once.
struct RpcEnd {
    span: Span,
    start: Instant,
    done: bool,
}

impl RpcEnd {
    fn finish(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let latency_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        self.span.record("code", field::debug(code));
        self.span.record("latency_ms", latency_ms);
        match code {
            tonic::Code::Ok => tracing::info!(parent: &self.span, "rpc finished"),
            _ => tracing::warn!(parent: &self.span, "rpc failed"),
        }
    }
}

impl Drop for RpcEnd {
    fn drop(&mut self) {
        // The response body was dropped before its trailers: the client went
        // away (or the connection broke) mid-call.
        self.finish(tonic::Code::Cancelled);
    }
}

/// A response body that reports the code in its trailers.
struct LoggedBody {
    inner: Body,
    end: Option<RpcEnd>,
}

impl http_body::Body for LoggedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = grpc_code(trailers).unwrap_or(tonic::Code::Unknown);
                    if let Some(mut end) = self.end.take() {
                        end.finish(code);
                    }
                }
            }
            Poll::Ready(Some(Err(status))) => {
                if let Some(mut end) = self.end.take() {
                    end.finish(status.code());
                }
            }
            Poll::Ready(None) => {
                if let Some(mut end) = self.end.take() {
                    end.finish(tonic::Code::Unknown);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn grpc_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from)
}
