//! Admin endpoints for tests and scripts. Each request must come from a
//! loopback peer (else 403) and carry the emulator's admin token as
//! `Authorization: Bearer <token>` (else 401): a same-host sidecar that can
//! reach the port cannot change faults or read counters without it. The
//! token is `--admin-token` / `ECR_EMULATOR_ADMIN_TOKEN`, or a random one
//! generated at start that only in-process callers see
//! ([`Emulator::admin_token`](super::Emulator::admin_token)); it never
//! appears in logs, errors or `Debug` output.
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
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::faults::FaultSpec;
use super::random_bytes;
use super::server::Shared;

/// Largest admin request body.
const ADMIN_BODY_LIMIT: usize = 64 * 1024;

/// The secret the admin endpoints require. `Debug` shows no character of it.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// Checks a given token: 16 to 256 visible ASCII characters (it travels
    /// in a header; shorter ones are too easy to guess).
    pub fn parse(token: &str) -> anyhow::Result<Self> {
        let visible = token.bytes().all(|b| b.is_ascii_graphic());
        anyhow::ensure!(
            visible && (16..=256).contains(&token.len()),
            "the admin token must be 16 to 256 visible ASCII characters"
        );
        Ok(Self(token.to_owned()))
    }

    /// Wraps a command-line value unchecked, so that clap's error for a bad
    /// one (which quotes the value) never happens; `EmulatorArgs::config`
    /// checks it with [`AdminToken::parse`] instead.
    pub(crate) fn from_arg(token: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self(token.to_owned()))
    }

    /// A fresh random token (256 bits, hex).
    pub fn random() -> Self {
        Self(hex::encode(random_bytes::<32>()))
    }

    /// The token itself, for the caller that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `headers` carry `Authorization: Bearer <this token>`,
    /// compared in constant time.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let (given, expected) = (given.trim().as_bytes(), self.0.as_bytes());
        given.len() == expected.len()
            && given
                .iter()
                .zip(expected)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }
}

/// The admin routes, guarded by `shared`'s admin token.
pub fn routes(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/faults", get(list_faults).delete(clear_faults))
        .route(
            "/_emulator/faults/{op}",
            axum::routing::put(set_fault).delete(remove_fault),
        )
        .route("/_emulator/stats", get(stats).delete(reset_stats))
        .layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        .route_layer(middleware::from_fn_with_state(Arc::clone(shared), guard))
}

fn json_body(value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_vec(value).expect("admin answers serialize");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn is_loopback(peer: SocketAddr) -> bool {
    // A dual-stack listener shows IPv4 loopback as ::ffff:127.0.0.1.
    peer.ip().to_canonical().is_loopback()
}

async fn guard(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if !is_loopback(peer) {
        tracing::debug!(%peer, "admin request from a non-loopback peer refused");
        return (
            StatusCode::FORBIDDEN,
            "admin endpoints answer loopback peers only\n",
        )
            .into_response();
    }
    if !shared.admin_token.admits(request.headers()) {
        // Neither the expected nor the given value is logged.
        tracing::debug!(%peer, "admin request without the admin token refused");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "admin endpoints need Authorization: Bearer <admin token>\n",
        )
            .into_response();
    }
    next.run(request).await
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

    fn bearer(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_is_admitted() {
        let token = AdminToken::parse("0123456789abcdef").unwrap();
        assert!(token.admits(&bearer("Bearer 0123456789abcdef")));
        assert!(!token.admits(&HeaderMap::new()));
        assert!(!token.admits(&bearer("0123456789abcdef")));
        assert!(!token.admits(&bearer("Basic 0123456789abcdef")));
        assert!(!token.admits(&bearer("Bearer 0123456789abcdeF")));
        assert!(!token.admits(&bearer("Bearer 0123456789abcde")));
        assert!(!token.admits(&bearer("Bearer 0123456789abcdef0")));
    }

    #[test]
    fn given_tokens_are_checked_and_never_shown() {
        for bad in ["", "short", "has a space in it!!", &"x".repeat(257)] {
            assert!(AdminToken::parse(bad).is_err(), "{bad:?}");
        }
        let token = AdminToken::parse("s3cret-s3cret-s3cret").unwrap();
        assert_eq!(token.expose(), "s3cret-s3cret-s3cret");
        assert!(!format!("{token:?}").contains("s3cret"));
        let random = AdminToken::random();
        assert_eq!(random.expose().len(), 64);
        assert_ne!(random, AdminToken::random());
    }
}
