//! The gRPC server: `ecr.v1.EcrService`, health, reflection (v1 and
//! v1alpha), the RPC envelope ([`RpcLayer`]), HTTP/2 limits and graceful
//! shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tower_http::catch_panic::CatchPanicLayer;

use crate::budget::{BudgetLayer, BudgetSettings};
use crate::call_bounds::{CallLimits, ConnectionLimits};
use crate::caller_share::CallerShareLayer;
use crate::listener::{Acceptor, FirstRequest};
use crate::metrics::Metrics;
use crate::pb;
use crate::pb::ecr_service_server::{EcrService, EcrServiceServer};
use crate::rpc_layer::RpcLayer;
use crate::security::Security;

type PanicPayload = Box<dyn std::any::Any + Send + 'static>;

/// The answer to a call whose handler panicked: INTERNAL, with the panic
/// logged (its text never reaches the caller).
fn panic_response(panic: PanicPayload) -> http::Response<Body> {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic");
    tracing::error!(panic = what, "a handler panicked");
    crate::error::Error::internal("the facade failed internally; the error has been logged")
        .to_status()
        .into_http()
}

/// Request message limit for servers without a [`BudgetLayer`] (the
/// benchmarks' bare servers); `serve` sets per-method limits instead.
pub const MAX_DECODING_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// Largest response message sent (ECR answers are far smaller).
pub const MAX_ENCODING_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// Server knobs.
#[derive(Debug, Clone, Copy)]
pub struct ServerSettings {
    /// How long in-flight calls may run after shutdown begins.
    pub drain_timeout: Duration,
    /// RPCs served at once (health and reflection aside); more are shed.
    pub max_concurrent_rpcs: usize,
    /// HTTP/2 streams one connection may have open.
    pub max_concurrent_streams: u32,
    /// Interval of HTTP/2 keepalive pings.
    pub http2_keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection is
    /// closed.
    pub http2_keepalive_timeout: Duration,
    /// Connections older than this are closed gracefully (GOAWAY), so clients
    /// reconnect and spread over new replicas. `None`: no limit.
    pub max_connection_age: Option<Duration>,
    /// Per-method request size limits and the budget of request bytes.
    pub budget: BudgetSettings,
    /// Deadlines and per-connection / per-caller shares of each call.
    pub calls: CallLimits,
    /// Connection cap, handshake timeout and TCP keepalive of the listener.
    pub connections: ConnectionLimits,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(30),
            max_concurrent_rpcs: 1024,
            max_concurrent_streams: 256,
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(10),
            max_connection_age: None,
            budget: BudgetSettings::default(),
            calls: CallLimits::default(),
            connections: ConnectionLimits::default(),
        }
    }
}

/// Serves `facade` on the already-bound `listener` until `shutdown`
/// resolves, then drains in-flight calls for up to `drain_timeout`.
///
/// `facade` is [`crate::service::EcrFacade`] in the binary; generic so that tests serve a
/// double of the handlers through exactly this wiring.
pub async fn serve<S: EcrService>(
    listener: TcpListener,
    facade: S,
    settings: ServerSettings,
    metrics: Arc<Metrics>,
    security: Security,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<EcrServiceServer<S>>().await;
    let routes = routes(facade, health_service, &settings.budget)?;
    let (stop_accepting, stop_signal) = tokio::sync::oneshot::channel::<()>();
    let server = layered(listener, routes, &settings, metrics, security, stop_signal)?;
    tokio::pin!(server);

    tokio::select! {
        result = &mut server => return result.map_err(Into::into),
        () = shutdown => {}
    }
    drain::<S>(server, &health, stop_accepting, settings.drain_timeout).await
}

/// The services served: health, reflection (v1 and v1alpha, each
/// describing the ECR service and health) and `facade`, with tonic's
/// message limits as a backstop to the budget layer's per-method ones.
fn routes<S: EcrService>(
    facade: S,
    health_service: HealthServer<impl Health>,
    budget: &BudgetSettings,
) -> anyhow::Result<Routes> {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    budget.check()?;
    // The per-method limits are the budget layer's; tonic's is a backstop.
    let ecr = EcrServiceServer::new(facade)
        .max_decoding_message_size(budget.largest_message())
        .max_encoding_message_size(MAX_ENCODING_MESSAGE_SIZE);
    Ok(Routes::new(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ecr))
}

/// The server, not yet started: `routes` behind the layers (the RPC
/// envelope outermost, then panics caught, authentication, caller shares
/// and the budget) and HTTP/2 settings, on `listener`'s connections until
/// `stop_signal` fires.
fn layered(
    listener: TcpListener,
    routes: Routes,
    settings: &ServerSettings,
    metrics: Arc<Metrics>,
    security: Security,
    stop_signal: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<impl Future<Output = Result<(), tonic::transport::Error>>> {
    let incoming = Acceptor::new(
        listener,
        settings.connections,
        FirstRequest::Marked,
        settings.calls.per_connection,
    )
    .into_stream();
    let mut builder = Server::builder();
    if let Some(tls) = security.tls {
        builder = builder.tls_config(tls)?;
    }
    if let Some(age) = settings.max_connection_age {
        builder = builder.max_connection_age(age);
    }
    Ok(builder
        .max_concurrent_streams(settings.max_concurrent_streams)
        .http2_keepalive_interval(Some(settings.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(settings.http2_keepalive_timeout))
        .layer(
            RpcLayer::new(Arc::clone(&metrics), settings.max_concurrent_rpcs)
                .with_limits(settings.calls),
        )
        // A handler that panics answers INTERNAL (logged) instead of
        // resetting the caller's stream.
        .layer(CatchPanicLayer::custom(
            panic_response as fn(PanicPayload) -> http::Response<Body>,
        ))
        // Inside the RPC envelope, so refused calls get request ids, logs and
        // metrics too.
        .layer(security.authorizer.layer())
        .layer(CallerShareLayer::new(
            settings.calls.caller_share(settings.max_concurrent_rpcs),
            metrics,
        ))
        // Inside authentication: strangers spend none of the budget.
        .layer(BudgetLayer::new(settings.budget))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop_signal.await;
        }))
}

/// Shuts down: reports NOT_SERVING, stops accepting connections, and lets
/// the calls in flight finish for up to `drain_timeout`.
async fn drain<S: EcrService>(
    server: Pin<&mut impl Future<Output = Result<(), tonic::transport::Error>>>,
    health: &HealthReporter,
    stop_accepting: tokio::sync::oneshot::Sender<()>,
    drain_timeout: Duration,
) -> anyhow::Result<()> {
    tracing::info!(drain_timeout = ?drain_timeout, "shutting down: refusing new calls, draining in-flight ones");
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    health.set_not_serving::<EcrServiceServer<S>>().await;
    let _ = stop_accepting.send(());
    match tokio::time::timeout(drain_timeout, server).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => {
            tracing::warn!("drain timeout reached; dropping the calls still running");
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    #[tokio::test]
    async fn a_panicking_handler_answers_internal() {
        let handler = tower::service_fn(|_: http::Request<Body>| async {
            if true {
                panic!("bug in a handler");
            }
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        });
        let mut service =
            CatchPanicLayer::custom(panic_response as fn(PanicPayload) -> http::Response<Body>)
                .layer(handler);
        let response = service
            .ready()
            .await
            .unwrap()
            .call(http::Request::new(Body::empty()))
            .await
            .unwrap();
        assert_eq!(response.headers()["grpc-status"], "13");
        let message = response.headers()["grpc-message"].to_str().unwrap();
        assert!(!message.contains("bug in a handler"), "{message}");
    }
}
