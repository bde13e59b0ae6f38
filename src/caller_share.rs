//! Each authenticated caller's share of the global concurrency limit, as a
//! tower layer inside authentication (it needs the caller's [`Identity`]).
//!
//! Without it one caller — even one whose token only grants a harmless read
//! — could hold every slot of `--max-concurrent-rpcs` and lock out the
//! others. Callers without an identity (no policy, no client certificate)
//! are all the same anonymous caller as far as the facade can tell, so the
//! share applies to identified callers only; the per-connection cap and the
//! call deadlines bound the rest.
//!
//! The caller's count is held by a [`CallerGuard`] attached to the call's
//! [`Slot`], so it comes back when the call ends — after its answer is sent,
//! or when the watchdog ends a call whose client stopped reading. (The global
//! permit comes back earlier, when a unary answer is ready: a caller's unread
//! answers keep counting against its own share, not the server's.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use tonic::body::Body;
use tower::{Layer, Service};

use crate::call_slot::Slot;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::security::Identity;

type Counts = Arc<Mutex<HashMap<Identity, usize>>>;

/// Builds the [`CallerShare`] service.
#[derive(Debug, Clone)]
pub struct CallerShareLayer {
    counts: Counts,
    share: usize,
    metrics: Arc<Metrics>,
}

impl CallerShareLayer {
    /// At most `share` calls in flight per identified caller; shed calls
    /// count into `metrics`.
    pub fn new(share: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            counts: Arc::default(),
            share: share.max(1),
            metrics,
        }
    }

    /// Takes one of `identity`'s calls, or `None` at its share.
    fn take(&self, identity: &Identity) -> Option<CallerGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(identity.clone()).or_insert(0);
        if *count >= self.share {
            return None;
        }
        *count += 1;
        Some(CallerGuard {
            counts: Arc::clone(&self.counts),
            identity: identity.clone(),
        })
    }
}

/// One call of one caller, given back when dropped.
#[derive(Debug)]
pub struct CallerGuard {
    counts: Counts,
    identity: Identity,
}

impl Drop for CallerGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.identity) {
            *count -= 1;
            // Idle callers take no memory.
            if *count == 0 {
                counts.remove(&self.identity);
            }
        }
    }
}

impl<S> Layer<S> for CallerShareLayer {
    type Service = CallerShare<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallerShare {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`CallerShareLayer`].
#[derive(Debug, Clone)]
pub struct CallerShare<S> {
    inner: S,
    layer: CallerShareLayer,
}

impl<S, B> Service<http::Request<B>> for CallerShare<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let extensions = request.extensions();
        let (Some(slot), Some(identity)) = (extensions.get::<Slot>(), Identity::of(extensions))
        else {
            return Either::Left(self.inner.call(request));
        };
        match self.layer.take(identity) {
            Some(guard) => {
                slot.hold_until_end(guard);
                Either::Left(self.inner.call(request))
            }
            None => {
                self.layer.metrics.rpc_shed();
                tracing::warn!(caller = %identity, "rpc shed at the caller's share of the concurrency limit");
                let message = format!(
                    "this caller has {} calls in flight, its share of the facade; retry with backoff",
                    self.layer.share
                );
                Either::Right(ready(Ok(Error::shed(message)
                    .to_status()
                    .into_http::<Body>())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_its_own_share_and_idle_ones_are_forgotten() {
        let layer = CallerShareLayer::new(2, Metrics::new());
        let a = Identity::Token("a".into());
        let b = Identity::Certificate("spiffe://b".into());
        let a1 = layer.take(&a).unwrap();
        let a2 = layer.take(&a).unwrap();
        assert!(layer.take(&a).is_none(), "a third call of a");
        let b1 = layer.take(&b).expect("b is not limited by a");
        drop(a1);
        let a3 = layer.take(&a).expect("a's slot came back");
        drop((a2, a3, b1));
        assert!(layer.counts.lock().unwrap().is_empty());
    }
}
