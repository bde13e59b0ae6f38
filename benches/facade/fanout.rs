//! Scenario 3, fan-out: one BatchCheckLayerAvailability stream of many
//! digests, with latency injected into every upstream call by the emulator,
//! at several `FacadeSettings::upstream_concurrency` values. Measured: time
//! to the first stream message and to the end of the stream, against the
//! ideal `ceil(batches / c) × latency`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::ensure;
use ecr_facade::emulator::FaultSpec;
use ecr_facade::pb;
use ecr_facade::service::FacadeSettings;
use tokio::runtime::Runtime;

use crate::stack;

/// How hard and how long.
#[derive(Debug, Clone)]
pub struct Params {
    pub digests: usize,
    pub latency: Duration,
    pub concurrency: Vec<usize>,
    /// Streams per concurrency value; the median is reported.
    pub repeats: usize,
}

/// The scenario's result.
#[derive(Debug)]
pub struct Outcome {
    pub rows: Vec<Row>,
    /// Median latency of one upstream batch (100 digests) called directly
    /// with aws-sdk-ecr against the same faulted emulator: what the
    /// injected latency really costs per call.
    pub direct_batch: Duration,
    /// The same without injected latency.
    pub unfaulted_batch: Duration,
    /// One stream with no injected latency (c = 1): the facade's own time
    /// to its first message (request transfer, decoding, validation,
    /// batching, one upstream call) and to the end.
    pub unfaulted_first: Duration,
    pub unfaulted_total: Duration,
    /// The facade's own CPU work on the request before any upstream call,
    /// timed in-process (median of 5): protobuf decoding and validation.
    pub decode: Duration,
    pub validate: Duration,
}

/// One concurrency value's result (medians over the repeats).
#[derive(Debug)]
pub struct Row {
    pub concurrency: usize,
    pub batches: usize,
    pub ideal: Duration,
    pub total: Duration,
    pub first_message: Duration,
    pub messages: usize,
    pub upstream_calls: u64,
    /// CPU time of the whole bench process (client, facade and emulator)
    /// during the median stream, per second of its wall time: near the
    /// core count means the stream was CPU-bound, not waiting on latency.
    pub cores_busy: f64,
}

const REPOSITORY: &str = "bench/fanout";
const OPERATION: &str = "BatchCheckLayerAvailability";

/// Runs the scenario against one emulator, one facade per concurrency.
pub fn run(client_rt: &Runtime, server_rt: &Runtime, params: &Params) -> anyhow::Result<Outcome> {
    let emulator = stack::start_emulator(server_rt)?;
    let sdk = stack::sdk_client(&emulator.url());
    client_rt.block_on(sdk.create_repository().repository_name(REPOSITORY).send())?;
    let digests: Vec<String> = (0..params.digests)
        .map(|i| format!("sha256:{i:064x}"))
        .collect();

    let (decode, validate) = request_work(&digests)?;

    // Without injected latency: the facade's own share.
    let unfaulted_batch = client_rt.block_on(direct_batch(&sdk, &digests))?;
    let (facade, channel) = warm_facade(client_rt, server_rt, &emulator.url(), 1, &digests[0])?;
    let unfaulted = client_rt.block_on(stream(channel.clone(), digests.clone()))?;
    drop(channel);
    facade.stop(server_rt)?;

    emulator.set_fault(
        OPERATION,
        FaultSpec {
            latency: params.latency,
            ..FaultSpec::default()
        },
    )?;
    let direct_batch = client_rt.block_on(direct_batch(&sdk, &digests))?;
    let batches = params.digests.div_ceil(100);
    let mut rows = Vec::new();
    for &concurrency in &params.concurrency {
        let (facade, channel) = warm_facade(
            client_rt,
            server_rt,
            &emulator.url(),
            concurrency,
            &digests[0],
        )?;
        let mut totals = Vec::new();
        let mut firsts = Vec::new();
        let mut busy = Vec::new();
        let mut messages = 0;
        let calls_before = emulator.calls(OPERATION);
        for _ in 0..params.repeats {
            let digests = digests.clone();
            let cpu_before = process_cpu();
            let seen = client_rt.block_on(stream(channel.clone(), digests))?;
            busy.push((
                seen.total,
                (process_cpu() - cpu_before) / seen.total.as_secs_f64(),
            ));
            ensure!(
                seen.answered == params.digests,
                "c={concurrency}: {} of {} digests answered",
                seen.answered,
                params.digests
            );
            totals.push(seen.total);
            firsts.push(seen.first_message);
            messages = seen.messages;
        }
        let upstream_calls = (emulator.calls(OPERATION) - calls_before) / params.repeats as u64;
        drop(channel);
        facade.stop(server_rt)?;
        totals.sort();
        firsts.sort();
        busy.sort_by_key(|(total, _)| *total);
        rows.push(Row {
            concurrency,
            batches,
            ideal: params.latency * u32::try_from(batches.div_ceil(concurrency))?,
            total: totals[totals.len() / 2],
            first_message: firsts[firsts.len() / 2],
            messages,
            upstream_calls,
            cores_busy: busy[busy.len() / 2].1,
        });
    }
    server_rt.block_on(emulator.shutdown());
    Ok(Outcome {
        rows,
        direct_batch,
        unfaulted_batch,
        unfaulted_first: unfaulted.first_message,
        unfaulted_total: unfaulted.total,
        decode,
        validate,
    })
}

/// A facade with `concurrency` upstream calls per stream, and one connection
/// to it warmed by a one-digest stream (connection and SDK pool ready).
fn warm_facade(
    client_rt: &Runtime,
    server_rt: &Runtime,
    upstream: &str,
    concurrency: usize,
    digest: &str,
) -> anyhow::Result<(stack::Facade, tonic::transport::Channel)> {
    let settings = FacadeSettings {
        upstream_concurrency: concurrency,
        // The scenario's 10,000 sha256 digests (730 KB) fit the default
        // request limit of the layer check; only the count is raised.
        limits: ecr_facade::validate::Limits {
            max_layer_digests: 10_000,
        },
        ..FacadeSettings::default()
    };
    let facade = stack::Facade::start(server_rt, upstream, settings)?;
    let channel = client_rt
        .block_on(stack::connections(facade.addr, 1))?
        .remove(0);
    client_rt.block_on(stream(channel.clone(), vec![digest.to_owned()]))?;
    Ok((facade, channel))
}

/// CPU seconds this process has used (all threads), to the microsecond.
fn process_cpu() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &raw mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// Median latency of one upstream batch of 100 digests, called directly.
async fn direct_batch(sdk: &aws_sdk_ecr::Client, digests: &[String]) -> anyhow::Result<Duration> {
    let mut took = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        sdk.batch_check_layer_availability()
            .repository_name(REPOSITORY)
            .set_layer_digests(Some(digests[..100.min(digests.len())].to_vec()))
            .send()
            .await?;
        took.push(started.elapsed());
    }
    took.sort();
    Ok(took[took.len() / 2])
}

/// Median times to decode and to validate the whole request.
fn request_work(digests: &[String]) -> anyhow::Result<(Duration, Duration)> {
    use prost::Message;
    let request = pb::BatchCheckLayerAvailabilityRequest {
        registry_id: None,
        repository_name: REPOSITORY.to_owned(),
        layer_digests: digests.to_vec(),
    };
    let encoded = request.encode_to_vec();
    let mut decode = Vec::new();
    let mut validate = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let decoded = pb::BatchCheckLayerAvailabilityRequest::decode(encoded.as_slice())?;
        decode.push(started.elapsed());
        let started = Instant::now();
        ecr_facade::validate::check(&decoded, &ecr_facade::validate::Limits::default())?;
        validate.push(started.elapsed());
    }
    decode.sort();
    validate.sort();
    Ok((decode[2], validate[2]))
}

struct Seen {
    total: Duration,
    first_message: Duration,
    messages: usize,
    answered: usize,
}

/// One stream, timed from the call to its first message and to its end;
/// every digest must be answered exactly once.
async fn stream(channel: tonic::transport::Channel, digests: Vec<String>) -> anyhow::Result<Seen> {
    let mut client = stack::client(channel);
    let request = pb::BatchCheckLayerAvailabilityRequest {
        registry_id: None,
        repository_name: REPOSITORY.to_owned(),
        layer_digests: digests,
    };
    let started = Instant::now();
    let mut stream = client
        .batch_check_layer_availability(request)
        .await?
        .into_inner();
    let mut first_message = None;
    let mut messages = 0;
    let mut answered = HashSet::new();
    while let Some(message) = stream.message().await? {
        first_message.get_or_insert_with(|| started.elapsed());
        messages += 1;
        let digests = message
            .layers
            .iter()
            .filter_map(|l| l.layer_digest.clone())
            .chain(
                message
                    .failures
                    .iter()
                    .filter_map(|f| f.layer_digest.clone()),
            );
        for digest in digests {
            ensure!(answered.insert(digest.clone()), "{digest} answered twice");
        }
    }
    Ok(Seen {
        total: started.elapsed(),
        first_message: first_message.unwrap_or_default(),
        messages,
        answered: answered.len(),
    })
}
