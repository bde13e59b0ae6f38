//! Load generators for scenario 2: h2load (nghttp2, C, one thread) with a
//! pre-framed gRPC body, and a status-aware closed-loop tonic generator.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use prost::Message;
use tonic::transport::Channel;

use crate::stack;

/// The unary calls scenario 2 drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// GetAuthorizationToken for the default registry (cached by the facade).
    Token,
    /// DescribeRepositories, first page of 10 (forwarded by the facade).
    Describe,
}

impl Rpc {
    /// The gRPC path.
    pub fn path(self) -> &'static str {
        match self {
            Rpc::Token => "/ecr.v1.EcrService/GetAuthorizationToken",
            Rpc::Describe => "/ecr.v1.EcrService/DescribeRepositories",
        }
    }

    /// The request body as gRPC frames it: a 5-byte prefix (uncompressed
    /// flag, big-endian length) and the protobuf message.
    pub fn framed_body(self) -> Vec<u8> {
        let message = match self {
            Rpc::Token => pb::GetAuthorizationTokenRequest::default().encode_to_vec(),
            Rpc::Describe => describe_request().encode_to_vec(),
        };
        let mut body = Vec::with_capacity(5 + message.len());
        body.push(0);
        body.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
        body.extend_from_slice(&message);
        body
    }

    /// One call; `Err` carries the non-OK code.
    pub async fn call(self, client: &mut EcrServiceClient<Channel>) -> Result<(), tonic::Code> {
        let result = match self {
            Rpc::Token => client
                .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
                .await
                .map(|_| ()),
            Rpc::Describe => client
                .describe_repositories(describe_request())
                .await
                .map(|_| ()),
        };
        result.map_err(|status| status.code())
    }
}

/// The DescribeRepositories request of scenario 2.
pub fn describe_request() -> pb::DescribeRepositoriesRequest {
    pb::DescribeRepositoriesRequest {
        max_results: Some(10),
        ..Default::default()
    }
}

/// What h2load reported.
#[derive(Debug, Clone, Copy)]
pub struct H2load {
    pub requests_per_sec: f64,
    pub succeeded: u64,
    /// failed + errored + timeout.
    pub failed: u64,
}

/// `h2load -n <total> -c <connections> -m <streams> -t 1` posting `body`.
pub fn h2load(
    addr: SocketAddr,
    rpc: Rpc,
    body: &Path,
    total: u64,
    connections: usize,
    streams: usize,
) -> anyhow::Result<H2load> {
    let output = Command::new("h2load")
        .args(["-n", &total.to_string()])
        .args(["-c", &connections.to_string()])
        .args(["-m", &streams.to_string()])
        .args(["-t", "1"])
        .arg("--data")
        .arg(body)
        .args(["-H", "content-type: application/grpc"])
        .args(["-H", "te: trailers"])
        .arg(format!("http://{addr}{}", rpc.path()))
        .output()
        .context("running h2load")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("h2load failed ({}):\n{text}", output.status);
    }
    parse_h2load(&text).with_context(|| format!("parsing h2load output:\n{text}"))
}

fn parse_h2load(text: &str) -> anyhow::Result<H2load> {
    let finished = text
        .lines()
        .find_map(|l| l.strip_prefix("finished in "))
        .context("no 'finished in' line")?;
    let mut parts = finished.split(", ");
    parts
        .next()
        .and_then(parse_seconds)
        .context("no elapsed time")?;
    let rps: f64 = parts
        .next()
        .and_then(|p| p.strip_suffix(" req/s"))
        .context("no req/s")?
        .parse()?;
    let requests = text
        .lines()
        .find_map(|l| l.strip_prefix("requests: "))
        .context("no 'requests:' line")?;
    let count = |what: &str| -> anyhow::Result<u64> {
        requests
            .split(", ")
            .find_map(|p| p.strip_suffix(what))
            .with_context(|| format!("no {what} count"))?
            .trim()
            .parse()
            .map_err(Into::into)
    };
    Ok(H2load {
        requests_per_sec: rps,
        succeeded: count(" succeeded")?,
        failed: count(" failed")? + count(" errored")? + count(" timeout")?,
    })
}

/// h2load's `1.02s`, `850.23ms`, `912.5us`.
fn parse_seconds(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else {
        (text.strip_suffix('s')?, 1.0)
    };
    let value: f64 = number.parse().ok()?;
    Some(Duration::from_secs_f64(value * scale))
}

/// What the tonic generator saw.
#[derive(Debug, Default, Clone)]
pub struct Closed {
    pub ok: u64,
    pub failed: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl Closed {
    pub fn requests_per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn failures(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// Closed loop for `duration`: `in_flight` calls per connection over
/// `connections` connections, each sending its next call when the previous
/// answers; every answer's gRPC status is checked.
pub async fn closed_loop(
    addr: SocketAddr,
    rpc: Rpc,
    connections: usize,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<Closed> {
    let channels = stack::connections(addr, connections).await?;
    let start = Instant::now();
    let stop_at = start + duration;
    let mut workers = Vec::new();
    for channel in &channels {
        for _ in 0..in_flight {
            let mut client = stack::client(channel.clone());
            workers.push(tokio::spawn(async move {
                let mut seen = Closed::default();
                while Instant::now() < stop_at {
                    match rpc.call(&mut client).await {
                        Ok(()) => seen.ok += 1,
                        Err(code) => *seen.failed.entry(format!("{code:?}")).or_default() += 1,
                    }
                }
                seen
            }));
        }
    }
    let mut total = Closed::default();
    for worker in workers {
        let seen = worker.await?;
        total.ok += seen.ok;
        for (code, n) in seen.failed {
            *total.failed.entry(code).or_default() += n;
        }
    }
    total.elapsed = start.elapsed();
    Ok(total)
}
