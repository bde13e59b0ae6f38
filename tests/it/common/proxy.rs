//! A loopback HTTP proxy that speaks just enough of ECR's AWS JSON 1.1
//! protocol to count calls (per action, and how many run at once), record
//! request bodies, add latency, and answer chosen actions itself — as a test
//! double for what moto lacks (GetDownloadUrlForLayer, pagination) and for
//! faults (throttling, server errors). Everything else goes to the upstream
//! (moto) unchanged.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::task::JoinHandle;

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    /// An ECR error shape.
    pub fn error(status: u16, error_type: &str, message: &str) -> Self {
        Self {
            status,
            body: serde_json::json!({ "__type": error_type, "message": message }),
        }
    }

    /// BatchCheckLayerAvailability's answer when none of the asked layers
    /// (`body`'s `layerDigests`) exists.
    pub fn all_layers_missing(body: &Value) -> Self {
        let failures: Vec<Value> = body["layerDigests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| serde_json::json!({"layerDigest": d, "failureCode": "MissingLayerDigest", "failureReason": "absent"}))
            .collect();
        Self::ok(serde_json::json!({ "layers": [], "failures": failures }))
    }
}

/// Decides, per call, whether the double answers: `(action, body, nth call
/// of that action starting at 1)`.
pub type Hook = Box<dyn Fn(&str, &Value, usize) -> Option<Reply> + Send + Sync>;

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    pub action: String,
    pub body: Value,
}

#[derive(Default)]
pub struct ProxyState {
    upstream: Option<String>,
    calls: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    delay: Mutex<HashMap<String, Duration>>,
    hook: Mutex<Option<Hook>>,
}

/// The running proxy.
pub struct Proxy {
    pub url: String,
    pub state: Arc<ProxyState>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct InFlight<'a>(&'a ProxyState);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Proxy {
    /// A proxy forwarding to `upstream` (`None`: only the hook answers).
    pub async fn start(upstream: Option<&str>) -> Self {
        let state = Arc::new(ProxyState {
            upstream: upstream.map(str::to_owned),
            ..Default::default()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let serving = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&serving);
                let client = client.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(Arc::clone(&state), client.clone(), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, state, task }
    }

    /// Answers calls the hook picks; the rest go upstream.
    pub fn set_hook(
        &self,
        hook: impl Fn(&str, &Value, usize) -> Option<Reply> + Send + Sync + 'static,
    ) {
        *self.state.hook.lock().unwrap() = Some(Box::new(hook));
    }

    /// Adds `delay` before answering every call of `action`.
    pub fn set_delay(&self, action: &str, delay: Duration) {
        self.state
            .delay
            .lock()
            .unwrap()
            .insert(action.to_owned(), delay);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Calls of `action` so far.
    pub fn count(&self, action: &str) -> usize {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.action == action)
            .count()
    }

    /// All calls so far.
    pub fn total(&self) -> usize {
        self.state.calls.lock().unwrap().len()
    }

    /// Most calls that were running at once.
    pub fn peak_in_flight(&self) -> usize {
        self.state.peak.load(Ordering::SeqCst)
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::SeqCst)
    }
}

fn reply(reply: Reply) -> Response<Full<Bytes>> {
    Response::builder()
        .status(reply.status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", "proxy-double-request-id")
        .body(Full::new(Bytes::from(reply.body.to_string())))
        .unwrap()
}

/// The ECR action a request names (the `X-Amz-Target` suffix).
fn action_of(headers: &hyper::HeaderMap) -> String {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_owned()
}

impl ProxyState {
    /// Records a call of `action`: which call of that action it is,
    /// starting at 1.
    fn record(&self, action: &str, body: &Value) -> usize {
        let mut calls = self.calls.lock().unwrap();
        calls.push(Call {
            action: action.to_owned(),
            body: body.clone(),
        });
        calls.iter().filter(|c| c.action == action).count()
    }

    /// Counts a call in flight until the guard drops.
    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }
}

async fn collect(body: impl hyper::body::Body<Data = Bytes>) -> Bytes {
    body.collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

async fn handle(
    state: Arc<ProxyState>,
    client: Client<HttpConnector, Full<Bytes>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let bytes = collect(body).await;
    let action = action_of(&parts.headers);
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let nth = state.record(&action, &json);
    let _in_flight = state.enter();

    let delay = state.delay.lock().unwrap().get(&action).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let canned = state
        .hook
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|hook| hook(&action, &json, nth));
    if let Some(canned) = canned {
        return Ok(reply(canned));
    }
    let Some(upstream) = &state.upstream else {
        return Ok(reply(Reply::error(
            500,
            "ServerException",
            &format!("no double for {action}"),
        )));
    };
    Ok(forward(&client, upstream, parts, bytes).await)
}

/// Sends the request (`parts`, `bytes`) on to `upstream`: its answer as is,
/// or a 502 in ECR's error shape when it cannot be reached.
async fn forward(
    client: &Client<HttpConnector, Full<Bytes>>,
    upstream: &str,
    parts: hyper::http::request::Parts,
    bytes: Bytes,
) -> Response<Full<Bytes>> {
    let mut forward = Request::builder().method(parts.method).uri(format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    ));
    for (name, value) in &parts.headers {
        if name != "host" {
            forward = forward.header(name, value);
        }
    }
    let forward = forward.body(Full::new(bytes)).unwrap();
    match client.request(forward).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            let bytes = collect(body).await;
            let mut out = Response::builder().status(parts.status);
            for (name, value) in &parts.headers {
                if name != "content-length" && name != "transfer-encoding" {
                    out = out.header(name, value);
                }
            }
            out.body(Full::new(bytes)).unwrap()
        }
        Err(err) => reply(Reply::error(
            502,
            "ServiceUnavailable",
            &format!("proxy: {err}"),
        )),
    }
}
