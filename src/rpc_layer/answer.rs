//! The answer side of a call: the handler's answer awaited within the
//! call's deadline, the request id echoed, and the body wrapped so that the
//! call ends when its trailers go out ([`EndOnTrailers`]) — or at the
//! deadline, when the client does not read or the handler overruns.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tonic::body::Body;

use super::{grpc_code, with_request_id};
use crate::call_slot::{EndGuard, Unsent, Watchdog};
use crate::error::Error;

/// What a call's future needs once its handler runs, moved into it.
pub(super) struct Answering {
    pub guard: EndGuard,
    pub deadline: Option<Instant>,
    /// A server stream: its slot stays while its handler works on.
    pub stream: bool,
    pub request_id: String,
    pub watchdog: Watchdog,
    pub unsent: Unsent,
    pub send_timeout: Duration,
}

impl Answering {
    /// Awaits the handler's answer within the deadline and hands its body to
    /// [`EndOnTrailers`]; an error (trailers only) ends the call at once.
    pub async fn answer<F, ResBody, E>(self, response: F) -> Result<http::Response<Body>, E>
    where
        F: Future<Output = Result<http::Response<ResBody>, E>>,
        ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        ResBody::Error: Into<tonic::codegen::StdError>,
    {
        let response = match self.deadline {
            Some(at) => match tokio::time::timeout_at(at, response).await {
                Ok(response) => response?,
                // The request never arrived whole, or the handler
                // overran: it is dropped here.
                Err(_) => {
                    self.guard.0.finish(tonic::Code::DeadlineExceeded);
                    return Ok(with_request_id(
                        deadline_status().into_http::<Body>(),
                        &self.request_id,
                    ));
                }
            },
            None => response.await?,
        };
        let response = with_request_id(response.map(Body::new), &self.request_id);
        // Errors are trailers-only responses: the code is in the headers.
        if let Some(code) = grpc_code(response.headers()) {
            self.guard.0.finish(code);
            return Ok(response);
        }
        self.hand_over();
        Ok(response.map(|body| Body::new(EndOnTrailers::new(body, self.guard))))
    }

    /// Bounds the sending of a ready answer, so that a client that never
    /// reads holds neither slot for long.
    fn hand_over(&self) {
        if self.deadline.is_some() {
            // A unary answer is ready: taking it is up to the client,
            // within --send-timeout. Its work is done, so its global
            // slot goes back now (a client that never reads must not
            // starve the others); its connection's slot stays until the
            // body ends, and past `max_concurrent` waiting answers the
            // oldest is ended. A stream keeps its slot: its handler
            // works on.
            let send_by = (!self.stream).then(|| Instant::now() + self.send_timeout);
            self.watchdog.watch(&self.guard.0, send_by);
            if !self.stream {
                self.guard.0.answer_ready(&self.unsent);
            }
        }
    }
}

/// The answer of a call whose deadline passed in the layer (before its
/// handler answered, or while its answer was being sent).
fn deadline_status() -> tonic::Status {
    Error::deadline_exceeded(
        "the call did not finish within its deadline (receiving the request, handling it \
         and sending the answer all count)",
    )
    .to_status()
}

/// How long past its deadline a stream whose handler keeps it open (while
/// the client reads) may run before the layer ends it: long enough for a
/// handler that watches the deadline itself to answer with its own details.
pub(super) const OVERRUN: Duration = Duration::from_millis(100);

/// A response body that ends its RPC when the trailers go out. It ends the
/// call with DEADLINE_EXCEEDED trailers itself when the watchdog did (the
/// client was not reading), or when the handler keeps the stream open
/// [`OVERRUN`] past the deadline.
pub(super) struct EndOnTrailers {
    inner: Body,
    guard: Option<EndGuard>,
    ended: bool,
    /// Started when the inner body first waits (a unary answer never does,
    /// so it costs no timer).
    overrun: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl EndOnTrailers {
    /// `inner`, ending the call held by `guard` when its trailers go out.
    pub(super) fn new(inner: Body, guard: EndGuard) -> Self {
        Self {
            inner,
            guard: Some(guard),
            ended: false,
            overrun: None,
        }
    }

    fn end_with_deadline(
        &mut self,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>> {
        self.ended = true;
        if let Some(guard) = self.guard.take() {
            guard.0.finish(tonic::Code::DeadlineExceeded);
        }
        let mut trailers = deadline_status().into_http::<Body>().into_parts().0.headers;
        trailers.remove(http::header::CONTENT_TYPE);
        Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
    }
}

impl http_body::Body for EndOnTrailers {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.guard.as_ref().is_some_and(|guard| guard.0.expired()) {
            return self.end_with_deadline();
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|t| grpc_code(t).unwrap_or(tonic::Code::Unknown)),
            Poll::Ready(Some(Err(status))) => Some(status.code()),
            Poll::Ready(None) => Some(tonic::Code::Unknown),
            Poll::Pending => {
                let deadline = self.guard.as_ref().and_then(|guard| guard.0.deadline());
                if let Some(deadline) = deadline {
                    let timer = self.overrun.get_or_insert_with(|| {
                        Box::pin(tokio::time::sleep_until(deadline + OVERRUN))
                    });
                    if timer.as_mut().poll(cx).is_ready() {
                        return self.end_with_deadline();
                    }
                }
                None
            }
        };
        if let Some(code) = code
            && let Some(guard) = self.guard.take()
        {
            guard.0.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
