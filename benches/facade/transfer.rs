//! Scenario 6, layer transfer: push and pull throughput of one large layer
//! through the facade (PushLayer, PullLayer) against the direct path
//! (aws-sdk-ecr's upload calls, a plain GET of the download URL) in the same
//! run, and the facade's resident memory under concurrent pushes and pulls.
//!
//! The emulator (`ecr-facade emulator`) and the facade (`serve
//! --endpoint-url`) run as processes of their own, so the facade's memory is
//! its own; the bench process is the client of both paths. Each round moves
//! the layer four times (direct and facade push, direct and facade pull,
//! which goes first alternating by round) into fresh repositories, deleted
//! afterwards. The memory phases each start a fresh facade process, so its
//! VmHWM covers that phase alone; RSS is also sampled every 10 ms.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use tokio::runtime::Runtime;

use crate::layer_io::{self, Layer};
use crate::procs::{self, Rss, RssSampler, Stdout};
use crate::stack;
use crate::stats::median_f64;

/// How much.
#[derive(Debug, Clone)]
pub struct Params {
    /// Size of the layer, bytes.
    pub layer_bytes: usize,
    /// PushLayer chunk size, bytes.
    pub chunk_bytes: usize,
    /// Throughput rounds; medians are reported.
    pub rounds: usize,
    /// Transfers at once in the memory phases.
    pub concurrent: usize,
    /// Whether the clients hash what they pull (the facade always does).
    pub check_pulled: bool,
}

/// MB/s (10^6 bytes) of one path over the rounds.
#[derive(Debug, Default, Clone)]
pub struct Rate {
    pub rounds: Vec<f64>,
}

impl Rate {
    pub fn median(&self) -> f64 {
        median_f64(&self.rounds)
    }
}

/// One memory phase: `concurrent` transfers through a fresh facade.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    /// The facade idle, before the transfers.
    pub idle: Rss,
    /// Largest sampled VmRSS and RssAnon, and VmHWM at the end.
    pub peak: Rss,
    pub samples: usize,
    /// Wall time of the whole phase and the aggregate MB/s.
    pub wall: Duration,
    pub aggregate_mb_s: f64,
}

/// The scenario's result.
#[derive(Debug, Default)]
pub struct Outcome {
    pub push_direct: Rate,
    pub push_facade: Rate,
    pub pull_direct: Rate,
    pub pull_facade: Rate,
    pub pushes: Memory,
    pub pulls: Memory,
}

/// Runs the scenario.
pub fn run(client_rt: &Runtime, params: &Params) -> anyhow::Result<Outcome> {
    let layer = Layer::generate(params.layer_bytes, 6);
    // Room for every upload in flight at once, with margin.
    let room = format!(
        "{}MiB",
        (params.layer_bytes * (params.concurrent + 4)).div_ceil(1 << 20)
    );
    let emulator = procs::spawn_emulator(&["--max-blob-bytes", &room])?;
    let sdk = stack::sdk_client(&emulator.url);
    let mut outcome = Outcome::default();

    let facade = spawn_facade(&emulator.url)?;
    warm_up(client_rt, &sdk, facade.addr)?;
    for round in 0..params.rounds {
        let direct = format!("bench/transfer-direct-{round}");
        let via = format!("bench/transfer-facade-{round}");
        client_rt.block_on(async {
            layer_io::create(&sdk, &direct).await?;
            layer_io::create(&sdk, &via).await
        })?;
        let direct_first = round % 2 == 0;
        let (d, f) = pair(
            client_rt,
            direct_first,
            layer_io::push_direct(&sdk, &direct, &layer),
            layer_io::push_facade(facade.addr, &via, &layer, params.chunk_bytes),
        )?;
        outcome.push_direct.rounds.push(mb_s(params.layer_bytes, d));
        outcome.push_facade.rounds.push(mb_s(params.layer_bytes, f));
        client_rt.block_on(async {
            layer_io::publish(&sdk, &direct, &layer).await?;
            layer_io::publish(&sdk, &via, &layer).await
        })?;
        let (d, f) = pair(
            client_rt,
            direct_first,
            layer_io::pull_direct(&sdk, &direct, &layer, params.check_pulled),
            layer_io::pull_facade(facade.addr, &via, &layer, params.check_pulled),
        )?;
        outcome.pull_direct.rounds.push(mb_s(params.layer_bytes, d));
        outcome.pull_facade.rounds.push(mb_s(params.layer_bytes, f));
        client_rt.block_on(async {
            layer_io::delete(&sdk, &direct).await?;
            layer_io::delete(&sdk, &via).await
        })?;
    }
    stop(facade)?;

    let repositories: Vec<String> = (0..params.concurrent)
        .map(|i| format!("bench/transfer-concurrent-{i}"))
        .collect();
    client_rt.block_on(async {
        for repository in &repositories {
            layer_io::create(&sdk, repository).await?;
        }
        anyhow::Ok(())
    })?;
    outcome.pushes =
        memory_phase(client_rt, &emulator.url, params, |addr| {
            futures::future::try_join_all(repositories.iter().map(|repository| {
                layer_io::push_facade(addr, repository, &layer, params.chunk_bytes)
            }))
        })?;
    client_rt.block_on(async {
        for repository in &repositories {
            layer_io::publish(&sdk, repository, &layer).await?;
        }
        anyhow::Ok(())
    })?;
    outcome.pulls =
        memory_phase(client_rt, &emulator.url, params, |addr| {
            futures::future::try_join_all(repositories.iter().map(|repository| {
                layer_io::pull_facade(addr, repository, &layer, params.check_pulled)
            }))
        })?;
    client_rt.block_on(async {
        for repository in &repositories {
            layer_io::delete(&sdk, repository).await?;
        }
        anyhow::Ok(())
    })?;
    let status = emulator.child.stop(Duration::from_secs(15))?;
    ensure!(status.success(), "the emulator exited with {status}");
    Ok(outcome)
}

/// Moves a small layer both ways on both paths, untimed: the facade makes
/// its download client (and reads the system's root certificates) on its
/// first pull, and connections are opened.
fn warm_up(rt: &Runtime, sdk: &aws_sdk_ecr::Client, facade: SocketAddr) -> anyhow::Result<()> {
    let small = Layer::generate(1024 * 1024, 7);
    let repository = "bench/transfer-warm-up";
    rt.block_on(async {
        layer_io::create(sdk, repository).await?;
        layer_io::push_facade(facade, repository, &small, 256 * 1024).await?;
        layer_io::publish(sdk, repository, &small).await?;
        layer_io::pull_facade(facade, repository, &small, true).await?;
        layer_io::pull_direct(sdk, repository, &small, true).await?;
        layer_io::delete(sdk, repository).await
    })
    .context("warm-up")
}

/// Times the direct and the facade transfer, one after the other in the
/// order given (the futures do nothing until awaited).
fn pair(
    rt: &Runtime,
    direct_first: bool,
    direct: impl Future<Output = anyhow::Result<()>>,
    facade: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<(Duration, Duration)> {
    if direct_first {
        let d = time(rt, direct).context("direct path")?;
        let f = time(rt, facade).context("through the facade")?;
        Ok((d, f))
    } else {
        let f = time(rt, facade).context("through the facade")?;
        let d = time(rt, direct).context("direct path")?;
        Ok((d, f))
    }
}

fn time(
    rt: &Runtime,
    transfer: impl Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    rt.block_on(transfer)?;
    Ok(started.elapsed())
}

/// Runs `transfers` against a fresh facade while sampling its memory.
fn memory_phase<T, Fut>(
    rt: &Runtime,
    endpoint: &str,
    params: &Params,
    transfers: impl FnOnce(SocketAddr) -> Fut,
) -> anyhow::Result<Memory>
where
    Fut: Future<Output = anyhow::Result<T>>,
{
    let facade = spawn_facade(endpoint)?;
    std::thread::sleep(Duration::from_millis(200));
    let idle = facade.child.rss()?;
    let sampler = RssSampler::start(facade.child.pid(), Duration::from_millis(10));
    let started = Instant::now();
    let outcome = rt.block_on(transfers(facade.addr));
    let wall = started.elapsed();
    let (peak, samples) = sampler.finish();
    outcome?;
    stop(facade)?;
    Ok(Memory {
        idle,
        peak,
        samples,
        wall,
        aggregate_mb_s: mb_s(params.layer_bytes * params.concurrent, wall),
    })
}

fn mb_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64()
}

/// `serve --endpoint-url <emulator>` with default flags but for
/// `--max-concurrent-pushes 8` (the memory phase runs 8 at once), logs to a
/// pipe that is drained (a few lines per transfer).
fn spawn_facade(endpoint: &str) -> anyhow::Result<procs::Served> {
    let mut served = procs::spawn_facade(
        &procs::facade_bin(),
        &[],
        &[
            "serve",
            "--endpoint-url",
            endpoint,
            "--region",
            "us-east-1",
            "--listen",
            "127.0.0.1:0",
            "--max-concurrent-pushes",
            "8",
        ],
        procs::STATIC_AWS_CREDENTIALS,
        Stdout::Pipe,
        Duration::from_secs(30),
    )?;
    served.child.discard_output();
    Ok(served)
}

fn stop(facade: procs::Served) -> anyhow::Result<()> {
    let status = facade.child.stop(Duration::from_secs(15))?;
    ensure!(status.success(), "the facade exited with {status}");
    Ok(())
}
