//! Loopback-only admin endpoints for tests and scripts (403 for any other
//! peer):
//!
//! - `GET /_emulator/faults` → `{"<Op>|*": FaultSpec, ...}`
//! - `PUT /_emulator/faults/<Op|*>` with a JSON [`FaultSpec`]
//!   (`{"latency_ms": 20, "throttle_next": 2, "fail_next": 0,
//!   "throttle_all": false, "fail_all": false, "corrupt_downloads": false}`,
//!   members optional) → 204
//! - `DELETE /_emulator/faults/<Op|*>` → 204; `DELETE /_emulator/faults` → 204
//! - `GET /_emulator/stats` → `{"calls": {"<Op>": n, ...}, "total": n}`
//! - `DELETE /_emulator/stats` → 204 (counters back to 0)

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::faults::FaultSpec;
use super::server::Shared;

/// Largest admin request body.
const ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// The admin routes.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/faults", get(list_faults).delete(clear_faults))
        .route(
            "/_emulator/faults/{op}",
            axum::routing::put(set_fault).delete(remove_fault),
        )
        .route("/_emulator/stats", get(stats).delete(reset_stats))
        .layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        .route_layer(middleware::from_fn(loopback_only))
}

fn json_body(value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("admin answers serialize");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn is_loopback(peer: SocketAddr) -> bool {
    // A dual-stack listener shows IPv4 loopback as ::ffff:127.0.0.1.
    peer.ip().to_canonical().is_loopback()
}

async fn loopback_only(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if is_loopback(peer) {
        next.run(request).await
    } else {
        tracing::debug!(%peer, "admin request from a non-loopback peer refused");
        (
            StatusCode::FORBIDDEN,
            "admin endpoints answer loopback peers only\n",
        )
            .into_response()
    }
}

async fn list_faults(State(shared): State<Arc<Shared>>) -> Response {
    json_body(&shared.faults.specs_snapshot())
}

async fn set_fault(
    State(shared): State<Arc<Shared>>,
    Path(op): Path<String>,
    body: Bytes,
) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(spec) => spec,
        Err(err) => {
            return (StatusCode::BAD_REQUEST, format!("bad fault spec: {err}\n")).into_response();
        }
    };
    match shared.faults.set(&op, spec) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => (StatusCode::BAD_REQUEST, format!("{err}\n")).into_response(),
    }
}

async fn remove_fault(State(shared): State<Arc<Shared>>, Path(op): Path<String>) -> Response {
    shared.faults.remove(&op);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    json_body(&json!({
        "calls": shared.faults.calls_snapshot(),
        "total": shared.faults.total_calls(),
    }))
}

async fn reset_stats(State(shared): State<Arc<Shared>>) -> Response {
    shared.faults.reset_calls();
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_pass() {
        let peer = |addr: &str| is_loopback(addr.parse().unwrap());
        assert!(peer("127.0.0.1:1"));
        assert!(peer("127.8.9.10:1"));
        assert!(peer("[::1]:1"));
        assert!(peer("[::ffff:127.0.0.1]:1"));
        assert!(!peer("10.0.0.1:1"));
        assert!(!peer("[::ffff:10.0.0.1]:1"));
        assert!(!peer("[2001:db8::1]:1"));
    }
}
