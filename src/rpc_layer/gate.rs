//! The request side of a call: the global concurrency slot is taken when
//! the request has *arrived* (its body ended), not when its headers did.
//!
//! Why: a slot stands for work the facade does. Headers cost a caller
//! nothing, so a caller that sends headers and never a body would otherwise
//! hold a slot per stream until the deadline — enough connections and it
//! holds all of them. Until its body ends a call holds only its
//! connection's slot (`--max-concurrent-rpcs-per-connection`). tonic reads a
//! unary or server-streaming request to its end before running the handler,
//! so no handler runs without a slot; client-streaming methods, whose
//! handlers run while the request streams in, take theirs with the headers.
//!
//! The body also notes when it breaks (the client reset the stream or the
//! connection went away), so the call counts as CANCELLED.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::sync::Semaphore;
use tonic::codegen::StdError;

use crate::call_slot::Slot;
use crate::metrics::Metrics;

pub(super) use crate::rpc_kinds::{is_client_streaming, is_server_streaming};

/// Takes the global slot when the request ends.
pub(super) struct Gate {
    pub limiter: Arc<Semaphore>,
    pub max_concurrent: usize,
    pub metrics: Arc<Metrics>,
}

/// A request body behind its [`Gate`] (if any).
pub(super) struct GatedRequest<B> {
    pub inner: B,
    pub slot: Slot,
    pub gate: Option<Gate>,
}

impl<B> GatedRequest<B> {
    /// Takes the slot, or answers RESOURCE_EXHAUSTED (tonic answers the call
    /// with the status a request body fails with).
    fn pass(&mut self) -> Result<(), StdError> {
        let Some(gate) = self.gate.take() else {
            return Ok(());
        };
        match gate.limiter.try_acquire_owned() {
            Ok(permit) => {
                self.slot.attach_global(permit);
                Ok(())
            }
            Err(_) => {
                gate.metrics.rpc_shed();
                let message = super::global_limit_message(gate.max_concurrent);
                tracing::warn!(reason = %message, "rpc shed at a concurrency limit");
                Err(Box::new(super::shed_status(message)))
            }
        }
    }
}

impl<B> http_body::Body for GatedRequest<B>
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<StdError>,
{
    type Data = bytes::Bytes;
    type Error = StdError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        Poll::Ready(match polled {
            Some(Err(err)) => {
                self.slot.client_gone();
                Some(Err(err.into()))
            }
            Some(Ok(frame)) if self.inner.is_end_stream() => match self.pass() {
                Ok(()) => Some(Ok(frame)),
                Err(shed) => Some(Err(shed)),
            },
            Some(Ok(frame)) => Some(Ok(frame)),
            None => self.pass().err().map(Err),
        })
    }

    fn is_end_stream(&self) -> bool {
        // Not at its end before the gate is passed: the reader must poll
        // once more, so the slot is taken (or the call shed).
        self.gate.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call_slot::{EndGuard, Ending};
    use http_body::Body as _;
    use http_body_util::BodyExt;

    fn slot(metrics: &Arc<Metrics>) -> Slot {
        metrics.rpc_started(false);
        Slot::new(
            Ending {
                span: tracing::Span::none(),
                start: std::time::Instant::now(),
                method: "unknown",
                stream: false,
                metrics: Arc::clone(metrics),
                _global: None,
                _connection: None,
                caller: None,
                conn: None,
            },
            None,
        )
    }

    fn request(
        body: &'static [u8],
        limiter: &Arc<Semaphore>,
        metrics: &Arc<Metrics>,
    ) -> (GatedRequest<http_body_util::Full<bytes::Bytes>>, Slot) {
        let slot = slot(metrics);
        let gated = GatedRequest {
            inner: http_body_util::Full::new(bytes::Bytes::from_static(body)),
            slot: slot.clone(),
            gate: Some(Gate {
                limiter: Arc::clone(limiter),
                max_concurrent: 1,
                metrics: Arc::clone(metrics),
            }),
        };
        (gated, slot)
    }

    #[tokio::test]
    async fn the_slot_is_taken_when_the_request_ends_and_refused_past_the_limit() {
        let metrics = Metrics::new();
        let limiter = Arc::new(Semaphore::new(1));
        let (first, first_slot) = request(b"12345", &limiter, &metrics);
        assert!(!first.is_end_stream());
        assert_eq!(
            limiter.available_permits(),
            1,
            "nothing taken before the end"
        );
        let body = first.collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"12345");
        assert_eq!(limiter.available_permits(), 0);

        let (second, _second_slot) = request(b"", &limiter, &metrics);
        let refused = second.collect().await.unwrap_err();
        let status = refused.downcast_ref::<tonic::Status>().unwrap();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);

        drop(EndGuard(first_slot));
        assert_eq!(
            limiter.available_permits(),
            1,
            "the slot comes back with the call"
        );
    }
}
