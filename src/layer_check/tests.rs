use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}
use crate::error::{UpstreamError, UpstreamErrorKind};

/// Counts batches, tracks the most run at once, answers each digest as an
/// available layer except those starting with `skip` (left out) after `delay`.
#[derive(Default)]
struct Upstream {
    calls: AtomicUsize,
    running: AtomicUsize,
    peak: AtomicUsize,
    sizes: std::sync::Mutex<Vec<usize>>,
}

impl Upstream {
    fn call(
        self: &Arc<Self>,
        batch: Vec<String>,
        delay: Duration,
        fail_on_call: Option<usize>,
    ) -> impl Future<Output = Result<pb::BatchCheckLayerAvailabilityResponse, Error>> + Send + use<>
    {
        let me = Arc::clone(self);
        async move {
            let n = me.calls.fetch_add(1, Ordering::SeqCst) + 1;
            me.sizes.lock().unwrap().push(batch.len());
            let now = me.running.fetch_add(1, Ordering::SeqCst) + 1;
            me.peak.fetch_max(now, Ordering::SeqCst);
            let _guard = Decrement(&me.running);
            tokio::time::sleep(delay).await;
            if fail_on_call == Some(n) {
                return Err(Error::Upstream(UpstreamError {
                    action: "BatchCheckLayerAvailability",
                    kind: UpstreamErrorKind::Service {
                        code: "ServerException".into(),
                        message: None,
                    },
                    request_id: None,
                }));
            }
            Ok(pb::BatchCheckLayerAvailabilityResponse {
                layers: batch
                    .iter()
                    .filter(|d| !d.starts_with("skip"))
                    .map(|d| pb::Layer {
                        layer_digest: Some(d.clone()),
                        layer_availability: pb::LayerAvailability::Available as i32,
                        layer_size: Some(1),
                        media_type: None,
                    })
                    .collect(),
                failures: vec![],
            })
        }
    }
}

struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn digests(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("sha256:{i:064x}")).collect()
}

async fn drain(
    mut rx: LayerStream,
) -> (Vec<pb::BatchCheckLayerAvailabilityResponse>, Option<Status>) {
    let mut messages = Vec::new();
    while let Some(item) = rx.next().await {
        match item {
            Ok(m) => messages.push(m),
            Err(status) => return (messages, Some(status)),
        }
    }
    (messages, None)
}

fn answered(messages: &[pb::BatchCheckLayerAvailabilityResponse]) -> Vec<String> {
    let mut all: Vec<String> = messages
        .iter()
        .flat_map(|m| {
            m.layers
                .iter()
                .filter_map(|l| l.layer_digest.clone())
                .chain(m.failures.iter().filter_map(|f| f.layer_digest.clone()))
        })
        .collect();
    all.sort();
    all
}

#[tokio::test(start_paused = true)]
async fn every_digest_is_answered_once_in_batches_of_a_hundred() {
    let upstream = Arc::new(Upstream::default());
    let up = upstream.clone();
    let asked = digests(1050);
    let rx = fan_out(asked.clone(), 8, far(), move |b| {
        up.call(b, Duration::from_millis(20), None)
    });
    let (messages, error) = drain(rx).await;
    assert!(error.is_none());
    assert_eq!(messages.len(), 11);
    let mut expected = asked;
    expected.sort();
    assert_eq!(answered(&messages), expected);
    let mut sizes = upstream.sizes.lock().unwrap().clone();
    sizes.sort();
    assert_eq!(
        sizes,
        [50, 100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
    );
}

#[test]
fn batches_keep_order_and_drop_duplicates_across_batch_boundaries() {
    // 0..150, then 0..150 again (all duplicates), then 150..250.
    let unique = digests(250);
    let asked: Vec<String> = unique[..150]
        .iter()
        .chain(&unique[..150])
        .chain(&unique[150..])
        .cloned()
        .collect();
    let made: Vec<Vec<String>> = batches(asked).collect();
    assert_eq!(
        made.iter().map(Vec::len).collect::<Vec<_>>(),
        [100, 100, 50]
    );
    assert_eq!(made.concat(), unique);
    assert_eq!(batches(Vec::new()).count(), 0);
}

#[tokio::test(start_paused = true)]
async fn at_most_the_configured_batches_run_at_once() {
    for concurrency in [1, 3, 8] {
        let upstream = Arc::new(Upstream::default());
        let up = upstream.clone();
        let rx = fan_out(digests(2000), concurrency, far(), move |b| {
            up.call(b, Duration::from_millis(20), None)
        });
        drain(rx).await;
        assert_eq!(upstream.peak.load(Ordering::SeqCst), concurrency);
        assert_eq!(upstream.calls.load(Ordering::SeqCst), 20);
    }
}

#[tokio::test(start_paused = true)]
async fn duplicates_are_asked_once_and_omissions_become_failures() {
    let upstream = Arc::new(Upstream::default());
    let up = upstream.clone();
    let asked = vec![
        "sha256:aa".to_owned(),
        "skip:bb".to_owned(),
        "sha256:aa".to_owned(),
    ];
    let rx = fan_out(asked, 4, far(), move |b| {
        up.call(b, Duration::from_millis(1), None)
    });
    let (messages, _) = drain(rx).await;
    assert_eq!(answered(&messages), ["sha256:aa", "skip:bb"]);
    let failure = &messages[0].failures[0];
    assert_eq!(failure.layer_digest.as_deref(), Some("skip:bb"));
    assert_eq!(failure.failure_reason.as_deref(), Some(NO_ANSWER_REASON));
    assert_eq!(*upstream.sizes.lock().unwrap(), [2]);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_failure_ends_the_stream_with_its_status() {
    let upstream = Arc::new(Upstream::default());
    let up = upstream.clone();
    let rx = fan_out(digests(1000), 1, far(), move |b| {
        up.call(b, Duration::from_millis(5), Some(3))
    });
    let (messages, error) = drain(rx).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(
        error.expect("stream ends with an error").code(),
        tonic::Code::Internal
    );
    assert_eq!(
        upstream.calls.load(Ordering::SeqCst),
        3,
        "no batch starts after the failure"
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_goes_away_stops_the_fan_out() {
    let upstream = Arc::new(Upstream::default());
    let up = upstream.clone();
    let mut rx = fan_out(digests(10_000), 4, far(), move |b| {
        up.call(b, Duration::from_millis(20), None)
    });
    let first = rx.next().await.expect("a first message");
    assert!(first.is_ok());
    drop(rx);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let calls = upstream.calls.load(Ordering::SeqCst);
    assert!(
        calls < 20,
        "fan-out kept going after the client left: {calls} calls"
    );
    assert_eq!(
        upstream.running.load(Ordering::SeqCst),
        0,
        "outstanding calls were dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_the_stream_and_drops_outstanding_calls() {
    let upstream = Arc::new(Upstream::default());
    let up = upstream.clone();
    let deadline = Instant::now() + Duration::from_millis(250);
    let rx = fan_out(digests(1000), 2, deadline, move |b| {
        up.call(b, Duration::from_millis(100), None)
    });
    let (messages, error) = drain(rx).await;
    assert_eq!(messages.len(), 4, "two rounds of two batches fit in 250ms");
    assert_eq!(
        error.expect("deadline status").code(),
        tonic::Code::DeadlineExceeded
    );
    assert_eq!(upstream.running.load(Ordering::SeqCst), 0);
    assert_eq!(upstream.calls.load(Ordering::SeqCst), 6);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_still_meets_the_deadline() {
    let upstream = Arc::new(Upstream::default());
    let up = upstream.clone();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut stream = fan_out(digests(10_000), 2, deadline, move |b| {
        up.call(b, Duration::from_millis(10), None)
    });
    // Never read: the channel (capacity 2) fills and the producer waits on
    // the client, yet the deadline still ends it and its upstream calls.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = upstream.calls.load(Ordering::SeqCst);
    assert!(
        asked < 100,
        "{asked} batches asked for a client that reads nothing"
    );
    assert_eq!(upstream.running.load(Ordering::SeqCst), 0);
    // What was buffered is delivered, then the deadline status.
    let mut last = None;
    while let Some(item) = stream.next().await {
        last = Some(item);
    }
    assert_eq!(
        last.unwrap().unwrap_err().code(),
        tonic::Code::DeadlineExceeded
    );
}

#[tokio::test]
async fn a_producer_that_dies_never_ends_the_stream_as_a_success() {
    let mut stream = fan_out(digests(300), 1, far(), |batch: Vec<String>| async move {
        if batch.iter().any(|d| d.ends_with("0c8")) {
            panic!("a bug while answering a batch");
        }
        Ok(pb::BatchCheckLayerAvailabilityResponse::default())
    });
    let mut last = None;
    while let Some(item) = stream.next().await {
        last = Some(item);
    }
    let status = last.expect("a terminal item").unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);
}
