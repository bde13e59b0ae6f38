//! The HTTP side: ECR's AWS JSON 1.1 protocol on `POST /`, the layer download
//! endpoint, and the token-guarded admin endpoints, on one axum router.
//!
//! One API call: name the operation from `X-Amz-Target` (unknown →
//! `UnknownOperationException`), refuse a body over the operation's limit with
//! 413 before buffering it whole, count the call and apply its fault spec,
//! then run the operation on the blocking pool (it parses, validates and works
//! on the store under a std mutex) and answer JSON with `x-amzn-RequestId`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;

use super::admin;
use super::download;
use super::error::ApiError;
use super::faults::Verdict;
use super::operation::Operation;
use super::ops::{self, Ctx};
use super::secret::random_bytes;
use super::shared::Shared;

/// The content type of every API request and answer.
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Connections the emulator keeps open at once: far more than the facade's
/// SDK client opens at `--max-concurrent-rpcs` (one per concurrent call).
const MAX_CONNECTIONS: usize = 16_384;

/// Serves `shared` on `listener` until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = router(shared).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(crate::listener::http1(listener, MAX_CONNECTIONS), app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", post(api))
        .route(
            "/_emulator/blobs/{registry}/{digest}/{*repository}",
            get(download::download),
        )
        .merge(admin::routes(&shared))
        .with_state(shared)
}

async fn api(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    let request_id = new_request_id();
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(op) = Operation::from_target(target) else {
        let err = ApiError::UnknownOperation(format!("Operation {target:?} is not supported"));
        return error_response(&request_id, &err);
    };
    let limit = op.body_limit();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        shared.faults.record(op);
        return too_large(&request_id, limit);
    }

    shared.faults.record(op);
    // The body is read before any fault is answered: an unread body would
    // cost the client its connection instead of showing it the fault.
    let body = match read_limited(body, limit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return too_large(&request_id, limit),
        Err(BodyError::Broken) => {
            let err = ApiError::Serialization("the request body could not be read".into());
            return error_response(&request_id, &err);
        }
    };
    let (latency, verdict) = shared.faults.decide(op);
    if !latency.is_zero() {
        precise_sleep(latency).await;
    }
    let fault = match verdict {
        Verdict::Pass => None,
        Verdict::Throttle => Some(ApiError::Throttling),
        Verdict::Fail => Some(ApiError::Server("injected server error".into())),
    };
    if let Some(err) = fault {
        tracing::debug!(%op, %request_id, code = err.code(), "injected fault");
        return error_response(&request_id, &err);
    }
    let base = host_url(&headers).unwrap_or_else(|| shared.base_url.clone());
    let worker = Arc::clone(&shared);
    let answer = tokio::task::spawn_blocking(move || {
        let ctx = Ctx {
            shared: &worker,
            base_url: &base,
        };
        ops::dispatch(&ctx, op, &body)
    })
    .await
    .unwrap_or_else(|_| Err(ApiError::Server("internal error".into())));
    match answer {
        Ok(value) => {
            tracing::debug!(%op, %request_id, "ok");
            let body = serde_json::to_vec(&value).expect("JSON values serialize");
            json_response(&request_id, StatusCode::OK, body)
        }
        Err(err) => {
            tracing::debug!(%op, %request_id, code = err.code(), "error");
            error_response(&request_id, &err)
        }
    }
}

enum BodyError {
    TooLarge,
    Broken,
}

/// Collects at most `limit` bytes; stops reading as soon as more arrive.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut collected = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if collected.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}

/// `http://<Host header>`, so download URLs use the address the caller used.
fn host_url(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let plausible = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    plausible.then(|| format!("http://{host}"))
}

fn new_request_id() -> String {
    uuid::Builder::from_random_bytes(random_bytes())
        .into_uuid()
        .to_string()
}

fn json_response(request_id: &str, status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

fn error_response(request_id: &str, err: &ApiError) -> Response {
    let body = serde_json::to_vec(&err.body()).expect("JSON values serialize");
    json_response(request_id, err.status(), body)
}

fn too_large(request_id: &str, limit: usize) -> Response {
    let body = serde_json::json!({
        "__type": "RequestEntityTooLargeException",
        "message": format!("Request body is larger than {limit} bytes"),
    });
    let body = serde_json::to_vec(&body).expect("JSON values serialize");
    let mut response = json_response(request_id, StatusCode::PAYLOAD_TOO_LARGE, body);
    // The unread rest of the body makes the connection unusable.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Waits `latency` to within a fraction of a millisecond. tokio's timer
/// ticks in whole milliseconds and rounds up, so `sleep(20ms)` lasts ≈ 21.5 ms;
/// the last two milliseconds are slept on a blocking thread with the OS's
/// high-resolution timer instead, so injected latency is what was asked.
async fn precise_sleep(latency: Duration) {
    const COARSE_MARGIN: Duration = Duration::from_millis(2);
    let Some(deadline) = Instant::now().checked_add(latency) else {
        // Beyond any real deadline (`--fault '*:latency=1000000years'`).
        return tokio::time::sleep(latency).await;
    };
    if let Some(coarse) = latency.checked_sub(COARSE_MARGIN) {
        tokio::time::sleep(coarse).await;
    }
    let rest = deadline.saturating_duration_since(Instant::now());
    if !rest.is_zero() {
        // A failed join (runtime shutting down) only shortens the wait.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(rest)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_headers_become_base_urls_when_plausible() {
        let mut headers = HeaderMap::new();
        assert_eq!(host_url(&headers), None);
        headers.insert(header::HOST, HeaderValue::from_static("localhost:4566"));
        assert_eq!(host_url(&headers).as_deref(), Some("http://localhost:4566"));
        headers.insert(header::HOST, HeaderValue::from_static("evil/path?x"));
        assert_eq!(host_url(&headers), None);
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        assert!(matches!(
            read_limited(Body::from(vec![0u8; 10]), 10).await,
            Ok(b) if b.len() == 10
        ));
        assert!(matches!(
            read_limited(Body::from(vec![0u8; 11]), 10).await,
            Err(BodyError::TooLarge)
        ));
    }

    #[tokio::test]
    async fn injected_latency_is_never_shorter_than_asked() {
        for latency in [Duration::from_micros(300), Duration::from_millis(3)] {
            let started = Instant::now();
            precise_sleep(latency).await;
            assert!(started.elapsed() >= latency, "{latency:?}");
        }
    }
}
