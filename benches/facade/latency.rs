//! Scenario 1, added latency: DescribeRepositories through the facade versus
//! the same call made directly with aws-sdk-ecr against the same emulator,
//! interleaved in one open-loop run at a fixed rate per path. A third
//! interleaved path calls the bare tonic baseline ([`crate::echo`], constant
//! answer, same transport settings) on the same server runtime: the cost of
//! the gRPC hop alone, which any facade adds before doing any work.
//!
//! A dedicated scheduler thread (timer slack 1 ns) issues call `i` at
//! `start + i / (3 × rate)`, cycling facade, direct and bare (the order
//! rotates every cycle), and spawns it on the client runtime without waiting
//! for earlier calls. Latency is measured from the *scheduled* send
//! time, so a stall delays every queued call's number (no coordinated
//! omission); scheduling lag, if any, falls on both paths alike.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::ensure;
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use ecr_facade::service::FacadeSettings;
use tokio::runtime::Runtime;
use tonic::transport::Channel;

use crate::stats::Samples;
use crate::{echo, stack};

/// How hard and how long.
#[derive(Debug, Clone)]
pub struct Params {
    /// Calls per second on each path, one run per rate.
    pub rates: Vec<u32>,
    /// Measured calls per path at each rate.
    pub calls_per_path: Vec<usize>,
    /// Discarded warm-up per rate.
    pub warmup: Duration,
    /// Facade connections (calls round-robin over them).
    pub connections: usize,
}

/// One rate's result.
#[derive(Debug)]
pub struct Row {
    pub rate: u32,
    pub facade: Samples,
    pub direct: Samples,
    pub bare: Samples,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Facade,
    Direct,
    Bare,
}

const PATHS: [Path; 3] = [Path::Facade, Path::Direct, Path::Bare];

const PAGE: i32 = 10;

/// Runs every rate of `params` against one emulator and one facade.
pub fn run(client_rt: &Runtime, server_rt: &Runtime, params: &Params) -> anyhow::Result<Vec<Row>> {
    let emulator = stack::start_emulator(server_rt)?;
    let facade = stack::Facade::start(server_rt, &emulator.url(), FacadeSettings::default())?;
    let direct = stack::sdk_client(&emulator.url());
    let clients: Vec<EcrServiceClient<Channel>> = client_rt
        .block_on(stack::connections(facade.addr, params.connections))?
        .into_iter()
        .map(stack::client)
        .collect();
    let answer = client_rt.block_on(async {
        for i in 0..3 {
            direct
                .create_repository()
                .repository_name(format!("bench/latency-{i}"))
                .send()
                .await?;
        }
        let answer = clients[0]
            .clone()
            .describe_repositories(request())
            .await?
            .into_inner();
        anyhow::Ok(answer)
    })?;
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let bare_addr = listener.local_addr()?;
    let bare_task = server_rt.spawn(echo::serve_on(
        listener,
        pb::GetAuthorizationTokenResponse::default(),
        answer,
        Arc::new(AtomicU64::new(0)),
    ));
    let bare: Vec<EcrServiceClient<Channel>> = client_rt
        .block_on(stack::connections(bare_addr, params.connections))?
        .into_iter()
        .map(stack::client)
        .collect();

    let mut rows = Vec::new();
    for (&rate, &calls) in params.rates.iter().zip(&params.calls_per_path) {
        let warmup_calls = (f64::from(rate) * params.warmup.as_secs_f64()) as usize;
        drive(client_rt, rate, warmup_calls, &clients, &direct, &bare)?;
        let [facade_samples, direct_samples, bare_samples] =
            drive(client_rt, rate, calls, &clients, &direct, &bare)?;
        rows.push(Row {
            rate,
            facade: facade_samples,
            direct: direct_samples,
            bare: bare_samples,
        });
    }
    drop(clients);
    drop(bare);
    bare_task.abort();
    facade.stop(server_rt)?;
    server_rt.block_on(emulator.shutdown());
    Ok(rows)
}

fn request() -> pb::DescribeRepositoriesRequest {
    pb::DescribeRepositoriesRequest {
        max_results: Some(PAGE),
        ..Default::default()
    }
}

/// `calls` calls per path at `rate` per path; fails on any error. Returns
/// the facade's, the direct and the bare samples.
fn drive(
    client_rt: &Runtime,
    rate: u32,
    calls: usize,
    clients: &[EcrServiceClient<Channel>],
    direct: &aws_sdk_ecr::Client,
    bare: &[EcrServiceClient<Channel>],
) -> anyhow::Result<[Samples; 3]> {
    let interval = Duration::from_secs_f64(1.0 / (PATHS.len() as f64 * f64::from(rate)));
    let handle = client_rt.handle().clone();
    let clients = clients.to_vec();
    let bare = bare.to_vec();
    let direct = direct.clone();
    let scheduler = std::thread::spawn(move || {
        // SAFETY: prctl on the calling thread only; sleeps wake on time.
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
        }
        let start = Instant::now() + Duration::from_millis(5);
        let mut tasks = Vec::with_capacity(PATHS.len() * calls);
        for i in 0..PATHS.len() * calls {
            let scheduled = start + interval * u32::try_from(i).expect("call count fits u32");
            let cycle = i / PATHS.len();
            let path = PATHS[(i + cycle) % PATHS.len()];
            let now = Instant::now();
            if scheduled > now {
                std::thread::sleep(scheduled - now);
            }
            let mut client = clients[cycle % clients.len()].clone();
            let mut bare = bare[cycle % bare.len()].clone();
            let direct = direct.clone();
            tasks.push(handle.spawn(async move {
                let result = match path {
                    Path::Facade => client
                        .describe_repositories(request())
                        .await
                        .map(|_| ())
                        .map_err(|s| format!("facade: {s}")),
                    Path::Bare => bare
                        .describe_repositories(request())
                        .await
                        .map(|_| ())
                        .map_err(|s| format!("bare: {s}")),
                    Path::Direct => direct
                        .describe_repositories()
                        .max_results(PAGE)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| format!("direct: {e:?}")),
                };
                (path, scheduled.elapsed(), result)
            }));
        }
        tasks
    });
    let tasks = scheduler
        .join()
        .map_err(|_| anyhow::anyhow!("scheduler panicked"))?;
    let mut samples: [Samples; 3] = Default::default();
    let mut errors = Vec::new();
    client_rt.block_on(async {
        for task in tasks {
            let (path, latency, result) = task.await?;
            match result {
                Err(e) => errors.push(e),
                Ok(()) => samples[PATHS.iter().position(|p| *p == path).expect("known path")]
                    .push(latency),
            }
        }
        anyhow::Ok(())
    })?;
    ensure!(
        errors.is_empty(),
        "{} of {} calls failed, e.g. {}",
        errors.len(),
        PATHS.len() * calls,
        errors[0]
    );
    Ok(samples)
}
