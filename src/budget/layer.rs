//! The tower layer enforcing the [budget](super): it meters each request
//! body's gRPC framing as the bytes arrive and holds each call's charge
//! until its response ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};

use super::BudgetSettings;
use crate::error::Error;

/// Back-off suggested to a caller refused for the budget.
const RETRY_DELAY: Duration = Duration::from_millis(250);
/// Length of the prefix of every gRPC message: a compression flag and a
/// big-endian u32 length.
const PREFIX: usize = 5;

/// Builds the [`Budgeted`] service: put it inside authentication, so that
/// unauthenticated callers are refused before they spend any budget.
#[derive(Debug, Clone)]
pub struct BudgetLayer {
    settings: BudgetSettings,
    budget: Arc<Semaphore>,
}

impl BudgetLayer {
    /// A layer enforcing `settings` (checked with [`BudgetSettings::check`]).
    pub fn new(settings: BudgetSettings) -> Self {
        let permits = settings
            .max_request_bytes_in_flight
            .min(Semaphore::MAX_PERMITS);
        Self {
            settings,
            budget: Arc::new(Semaphore::new(permits)),
        }
    }

    /// Request bytes the budget has left now.
    pub fn available(&self) -> usize {
        self.budget.available_permits()
    }
}

impl<S> Layer<S> for BudgetLayer {
    type Service = Budgeted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Budgeted {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`BudgetLayer`].
#[derive(Debug, Clone)]
pub struct Budgeted<S> {
    inner: S,
    layer: BudgetLayer,
}

/// The charge of one call, shared by its request and response bodies: the
/// decoded request outlives its body, so the bytes stay charged until the
/// handler has answered (unary) or the answer's stream ends.
type Charge = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

impl<S> Service<http::Request<Body>> for Budgeted<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        let limit = self.layer.settings.message_limit(path);
        // Probes must answer whatever the load; their messages are tiny.
        let budget = (!crate::open_services::is_open_method(path)).then(|| {
            (
                Arc::clone(&self.layer.budget),
                self.layer.settings.max_request_bytes_in_flight,
            )
        });
        // A unary call's request is done with once its answer is ready; a
        // streamed answer's handler may still hold it.
        let answer_streams = crate::rpc_kinds::is_server_streaming(path);
        let method = path.rsplit('/').next().unwrap_or_default().to_owned();
        let charge = Charge::default();
        let request_charge = Arc::clone(&charge);
        let request = request.map(|body| {
            Body::new(Metered {
                inner: Some(body),
                method,
                framing: Framing::default(),
                limit,
                budget,
                charge: request_charge,
            })
        });
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if !answer_streams {
                // Released now, not when the answer has been sent: a client
                // that never reads its answers must not hold the budget.
                charge.lock().expect("budget charge lock").take();
                return Ok(response);
            }
            Ok(response.map(|body| Body::new(Held { body, charge })))
        })
    }
}

/// Where a request body is in the gRPC framing.
#[derive(Debug, Default)]
pub(super) struct Framing {
    prefix: [u8; PREFIX],
    /// Bytes of `prefix` read so far.
    filled: usize,
    /// Bytes of the current message still to come.
    remaining: usize,
}

impl Framing {
    /// Reads `data`, calling `on_message` with the declared length of every
    /// message whose prefix completes in it.
    pub(super) fn feed(
        &mut self,
        mut data: &[u8],
        mut on_message: impl FnMut(usize) -> Result<(), Status>,
    ) -> Result<(), Status> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let passed = self.remaining.min(data.len());
                self.remaining -= passed;
                data = &data[passed..];
                continue;
            }
            let taken = (PREFIX - self.filled).min(data.len());
            self.prefix[self.filled..self.filled + taken].copy_from_slice(&data[..taken]);
            self.filled += taken;
            data = &data[taken..];
            if self.filled == PREFIX {
                self.filled = 0;
                let length = [
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ];
                let length = u32::from_be_bytes(length) as usize;
                on_message(length)?;
                self.remaining = length;
            }
        }
        Ok(())
    }

    /// Whether the body stopped inside a message.
    pub(super) fn mid_message(&self) -> bool {
        self.filled > 0 || self.remaining > 0
    }
}

/// A request body metered by its framing.
struct Metered {
    /// `None` once the body failed or ended.
    inner: Option<Body>,
    method: String,
    framing: Framing,
    limit: usize,
    budget: Option<(Arc<Semaphore>, usize)>,
    charge: Charge,
}

impl Metered {
    /// Admits one message of `length` bytes: within the method's limit, and
    /// charged to the budget (replacing the previous message's charge: a
    /// streaming call holds one message at a time).
    fn admit(
        method: &str,
        limit: usize,
        budget: Option<&(Arc<Semaphore>, usize)>,
        charge: &Charge,
        length: usize,
    ) -> Result<(), Status> {
        if length > limit {
            return Err(Error::message_too_large(method, length, limit).to_status());
        }
        let Some((semaphore, total)) = budget else {
            return Ok(());
        };
        let mut held = charge.lock().expect("budget charge lock");
        *held = None;
        if length == 0 {
            return Ok(());
        }
        let permits = u32::try_from(length).unwrap_or(u32::MAX);
        match Arc::clone(semaphore).try_acquire_many_owned(permits) {
            Ok(permit) => {
                *held = Some(permit);
                Ok(())
            }
            Err(_) => Err(exhausted(method, length, *total)),
        }
    }
}

impl http_body::Body for Metered {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = ready!(Pin::new(inner).poll_frame(cx));
        let outcome = match polled {
            Some(Ok(frame)) => {
                let Metered {
                    method,
                    framing,
                    limit,
                    budget,
                    charge,
                    ..
                } = &mut *this;
                let fed = match frame.data_ref() {
                    Some(data) => framing.feed(data, |length| {
                        Metered::admit(method, *limit, budget.as_ref(), charge, length)
                    }),
                    None => Ok(()),
                };
                fed.map(|()| frame)
            }
            Some(Err(status)) => Err(status),
            None if this.framing.mid_message() => Err(Error::malformed(
                "malformed request: the body ended inside a message",
            )
            .to_status()),
            None => {
                this.inner = None;
                return Poll::Ready(None);
            }
        };
        if outcome.is_err() {
            // Nothing more is read from a refused body.
            this.inner = None;
        }
        Poll::Ready(Some(outcome))
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

/// A response body holding its call's charge until it ends or is dropped.
struct Held {
    body: Body,
    charge: Charge,
}

impl http_body::Body for Held {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        if frame.is_none() {
            // The call is over even if the body is kept around.
            this.charge.lock().expect("budget charge lock").take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// RESOURCE_EXHAUSTED with a `RetryInfo`: the budget cannot take `length`
/// more bytes now.
fn exhausted(method: &str, length: usize, total: usize) -> Status {
    tracing::warn!(
        method,
        length,
        budget = total,
        "request refused: the budget of request bytes in flight is spent"
    );
    Error::budget_exhausted(total, RETRY_DELAY).to_status()
}
