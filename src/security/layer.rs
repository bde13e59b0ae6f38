//! Authentication as a tower layer on the gRPC server: resolves the caller
//! (client certificate, else bearer token) into an [`Identity`] request
//! extension — tonic hands it on to the handler's `Request::extensions()` —
//! and refuses unknown callers with UNAUTHENTICATED before any decoding.
//! Authorization proper happens in the handler, which knows the repository.

use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use tonic::body::Body;
use tower::{Layer, Service};

use super::authorize::Authorizer;
use super::identity::{Identity, bearer_token};
use crate::error::Error;
use crate::open_services::is_open_method;

impl Authorizer {
    /// The tower layer that authenticates callers for this authorizer (here,
    /// not in `authorize`, so that deciding does not depend on the layer).
    pub fn layer(&self) -> AuthLayer {
        AuthLayer::new(self.clone())
    }
}

/// Builds the [`Authenticate`] service around the server's router.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authorizer: Authorizer,
}

impl AuthLayer {
    /// Authenticates callers against `authorizer`'s policy.
    pub fn new(authorizer: Authorizer) -> Self {
        Self { authorizer }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            authorizer: self.authorizer.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    authorizer: Authorizer,
}

/// The caller of one request, or why it has none.
fn resolve(
    authorizer: &Authorizer,
    request: &http::Request<impl Sized>,
) -> Result<Option<Identity>, &'static str> {
    // The transport-level identity wins: it cannot be replayed.
    if let Some(identity) = Identity::from_peer_certificate(request.extensions()) {
        return Ok(Some(identity));
    }
    let Some(policy) = authorizer.store().current() else {
        // No policy: tokens mean nothing, and every caller is let through.
        return Ok(None);
    };
    match bearer_token(request.headers()) {
        Ok(Some(token)) => policy
            .token_identity(token)
            .map(Some)
            .ok_or("unknown bearer token"),
        Ok(None) => Err(
            "no credentials: present a client certificate with a uri or dns san, \
             or authorization: Bearer <token>",
        ),
        Err(_) => Err("malformed authorization metadata: expected Bearer <token>"),
    }
}

impl<S, B> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if is_open_method(request.uri().path()) {
            return Either::Left(self.inner.call(request));
        }
        match resolve(&self.authorizer, &request) {
            Ok(identity) => {
                // Nothing downstream needs the token; dropping it keeps it
                // out of any later logging of the metadata.
                request.headers_mut().remove(http::header::AUTHORIZATION);
                if let Some(identity) = identity {
                    request.extensions_mut().insert(identity);
                }
                Either::Left(self.inner.call(request))
            }
            Err(reason) => {
                tracing::info!(method = request.uri().path(), reason, "rpc unauthenticated");
                Either::Right(ready(Ok(Error::unauthenticated(reason)
                    .to_status()
                    .into_http::<Body>())))
            }
        }
    }
}
