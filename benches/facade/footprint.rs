//! Scenario 4, footprint of the release binary: time from spawn to health
//! SERVING, resident memory idle, and resident memory with many
//! BatchCheckLayerAvailability streams open at once (each held open by
//! emulator latency on its one upstream call).
//!
//! Two layouts: `serve --emulator` (facade and emulator in one process, as
//! an operator runs it locally) and `serve --endpoint-url` in front of
//! `ecr-facade emulator` in a second process (the facade's own memory, as
//! in front of ECR).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use ecr_facade::pb;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::procs::{self, Rss, Served, Stdout};
use crate::stack;

/// How much.
#[derive(Debug, Clone)]
pub struct Params {
    /// Cold starts timed; the median and the worst are reported.
    pub starts: usize,
    /// Streams held open at once.
    pub streams: usize,
    /// Fresh processes per layout holding them; medians are reported.
    pub stream_rounds: usize,
    /// How long idle before RSS is read.
    pub settle: Duration,
}

/// The scenario's result.
#[derive(Debug)]
pub struct Outcome {
    pub start_to_serving: Vec<Duration>,
    /// `serve --emulator`, idle after start.
    pub idle_combined: Rss,
    pub streams: usize,
    pub rounds: usize,
    pub combined: Streams,
    pub separate: Streams,
    /// The emulator process under the streams (layout 2), median.
    pub emulator: Rss,
}

/// Memory of the facade process: idle, with every stream open, and idle
/// again after they closed.
#[derive(Debug, Default)]
pub struct Streams {
    pub idle: Rss,
    pub open: Rss,
    pub after: Rss,
    /// The other process watched meanwhile (zero when none).
    pub other: Rss,
    /// Smallest and largest `open.total` over the rounds.
    pub open_range_kib: (u64, u64),
}

const HOLD: &str = "BatchCheckLayerAvailability:latency=8s";
/// Streams per client connection (under the default limit of 256).
pub const STREAMS_PER_CONNECTION: usize = 125;

/// Runs the scenario.
pub fn run(client_rt: &Runtime, params: &Params) -> anyhow::Result<Outcome> {
    let mut start_to_serving = Vec::new();
    let mut idle_combined = Rss::default();
    for i in 0..params.starts {
        let served = procs::spawn_facade(
            &procs::facade_bin(),
            &[],
            &["serve", "--emulator", "--listen", "127.0.0.1:0"],
            &[],
            Stdout::Pipe,
            Duration::from_secs(30),
        )?;
        client_rt.block_on(wait_serving(served.addr))?;
        start_to_serving.push(served.spawned.elapsed());
        if i == 0 {
            std::thread::sleep(params.settle);
            idle_combined = served.child.rss()?;
        }
        let status = served.child.stop(Duration::from_secs(10))?;
        ensure!(status.success(), "serve --emulator exited with {status}");
    }

    let mut combined = Vec::new();
    let mut separate = Vec::new();
    for _ in 0..params.stream_rounds {
        combined.push(combined_round(client_rt, params)?);
        separate.push(separate_round(client_rt, params)?);
    }
    let emulator = median_rss(separate.iter().map(|s| s.other));
    Ok(Outcome {
        start_to_serving,
        idle_combined,
        streams: params.streams,
        rounds: params.stream_rounds,
        combined: Streams::median_of(&combined),
        separate: Streams::median_of(&separate),
        emulator,
    })
}

/// `serve --emulator` holding the streams.
fn combined_round(client_rt: &Runtime, params: &Params) -> anyhow::Result<Streams> {
    let args = [
        "serve",
        "--emulator",
        "--seed-demo",
        "--fault",
        HOLD,
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    let served = procs::spawn_facade(
        &procs::facade_bin(),
        &[],
        &args,
        &[],
        Stdout::Pipe,
        Duration::from_secs(30),
    )?;
    let (streams, served) = hold_streams(client_rt, served, params)?;
    served.child.stop(Duration::from_secs(15))?;
    Ok(streams)
}

/// The facade alone holding the streams, in front of the emulator in a
/// process of its own.
fn separate_round(client_rt: &Runtime, params: &Params) -> anyhow::Result<Streams> {
    let emulator = procs::spawn_emulator(&["--seed-demo", "--fault", HOLD])?;
    let args = [
        "serve",
        "--endpoint-url",
        emulator.url.as_str(),
        "--region",
        "us-east-1",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ];
    let facade = procs::spawn_facade(
        &procs::facade_bin(),
        &[],
        &args,
        procs::STATIC_AWS_CREDENTIALS,
        Stdout::Pipe,
        Duration::from_secs(30),
    )?;
    let emulator_pid = emulator.child.pid();
    let (streams, served) = hold_streams_with(client_rt, facade, params, || {
        procs::rss(emulator_pid).unwrap_or_default()
    })?;
    served.child.stop(Duration::from_secs(15))?;
    emulator.child.stop(Duration::from_secs(15))?;
    Ok(streams)
}

fn median(values: impl Iterator<Item = u64>) -> u64 {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn median_rss(values: impl Iterator<Item = Rss> + Clone) -> Rss {
    Rss {
        total: median(values.clone().map(|r| r.total)),
        peak: median(values.clone().map(|r| r.peak)),
        anon: median(values.map(|r| r.anon)),
    }
}

impl Streams {
    /// Field by field medians.
    fn median_of(rounds: &[Streams]) -> Streams {
        Streams {
            idle: median_rss(rounds.iter().map(|r| r.idle)),
            open: median_rss(rounds.iter().map(|r| r.open)),
            after: median_rss(rounds.iter().map(|r| r.after)),
            other: median_rss(rounds.iter().map(|r| r.other)),
            open_range_kib: (
                rounds.iter().map(|r| r.open.total).min().unwrap_or(0),
                rounds.iter().map(|r| r.open.total).max().unwrap_or(0),
            ),
        }
    }
}

/// Polls grpc.health.v1 Check until SERVING.
async fn wait_serving(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await
        {
            let mut health = HealthClient::new(channel);
            if let Ok(answer) = health.check(HealthCheckRequest::default()).await
                && answer.into_inner().status == ServingStatus::Serving as i32
            {
                return Ok(());
            }
        }
        ensure!(Instant::now() < deadline, "{addr} never reported SERVING");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Opens `params.streams` streams on `served`, reads its RSS with all of
/// them open, then cancels them and reads it again.
fn hold_streams(
    client_rt: &Runtime,
    served: Served,
    params: &Params,
) -> anyhow::Result<(Streams, Served)> {
    hold_streams_with(client_rt, served, params, Rss::default)
}

/// [`hold_streams`], also reading `other` (another process's RSS) while
/// the streams are open.
fn hold_streams_with(
    client_rt: &Runtime,
    served: Served,
    params: &Params,
    other: impl Fn() -> Rss,
) -> anyhow::Result<(Streams, Served)> {
    let metrics = served.metrics.context("metrics address")?;
    std::thread::sleep(params.settle);
    let idle = served.child.rss()?;
    let release = Arc::new(Semaphore::new(0));
    let opened = client_rt.block_on(async {
        let connections = params.streams.div_ceil(STREAMS_PER_CONNECTION);
        let channels = stack::connections(served.addr, connections).await?;
        let mut tasks = Vec::new();
        for i in 0..params.streams {
            let mut client = stack::client(channels[i % channels.len()].clone());
            let release = Arc::clone(&release);
            tasks.push(tokio::spawn(async move {
                let request = pb::BatchCheckLayerAvailabilityRequest {
                    registry_id: None,
                    repository_name: "demo/hello".to_owned(),
                    layer_digests: vec![format!("sha256:{i:064x}")],
                };
                let stream = client.batch_check_layer_availability(request).await?;
                // Held open (unread) until released, then cancelled.
                let _permit = release.acquire().await;
                drop(stream);
                anyhow::Ok(())
            }));
        }
        anyhow::Ok(tasks)
    })?;
    let deadline = Instant::now() + Duration::from_secs(6);
    let in_flight = loop {
        let exposition = procs::scrape(metrics)?;
        let open = procs::gauge(&exposition, "ecr_facade_streams_in_flight").unwrap_or(0.0);
        if open as usize >= params.streams || Instant::now() > deadline {
            break open as usize;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let open = served.child.rss()?;
    let other = other();
    release.add_permits(params.streams);
    client_rt.block_on(async {
        for task in opened {
            task.await??;
        }
        anyhow::Ok(())
    })?;
    ensure!(
        in_flight == params.streams,
        "only {in_flight} of {} streams were open at once",
        params.streams
    );
    std::thread::sleep(params.settle);
    let after = served.child.rss()?;
    Ok((
        Streams {
            idle,
            open,
            after,
            other,
            open_range_kib: (open.total, open.total),
        },
        served,
    ))
}
