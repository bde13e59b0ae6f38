//! The streaming fan-out behind BatchCheckLayerAvailability.
//!
//! A request's digests (deduplicated, order kept) are split into upstream
//! batches of at most [`LIST_LIMIT`]; at most `concurrency` batches run at
//! once, and each finished batch becomes one stream message, in completion
//! order. Every digest is answered exactly once: one the upstream leaves out is
//! reported as a failure. A producer task feeds a bounded channel; when the
//! client goes away it stops and drops the outstanding upstream calls. When a
//! batch fails, the stream ends with that error's status.

use std::collections::HashSet;
use std::future::Future;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

use crate::error::{Error, UpstreamError};
use crate::model::{Action, LIST_LIMIT};
use crate::pb;
use crate::producer::{Produced, produced};

/// One stream item.
pub type Item = Result<pb::BatchCheckLayerAvailabilityResponse, Status>;

/// Reason given for a digest the upstream answer left out.
pub const NO_ANSWER_REASON: &str = "ecr returned no result for this digest";

/// The stream handed to tonic: each finished batch, then the terminal
/// outcome (nothing on success, else the error's status).
pub type LayerStream = Produced<pb::BatchCheckLayerAvailabilityResponse>;

/// Starts the fan-out of `digests` over `call` and returns its stream. At
/// `deadline` the stream ends with DEADLINE_EXCEEDED and the outstanding
/// upstream calls are dropped — also while the client is not reading.
///
/// Messages go through a bounded channel ([`produced`]); the terminal outcome goes through
/// a oneshot that the producer fills last, so a stream can only end as a
/// success when the producer said so (if it died, the stream ends INTERNAL).
pub fn fan_out<F, Fut>(
    digests: Vec<String>,
    concurrency: usize,
    deadline: Instant,
    call: F,
) -> LayerStream
where
    F: Fn(Vec<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<pb::BatchCheckLayerAvailabilityResponse, Error>> + Send + 'static,
{
    let concurrency = concurrency.max(1);
    produced(concurrency, "layer check", move |tx| async move {
        let batches = batches(digests);
        let results = futures::stream::iter(batches)
            .map(move |batch| {
                let asked = batch.clone();
                let answer = call(batch);
                async move { answer.await.map(|response| complete(response, &asked)) }
            })
            .buffer_unordered(concurrency);
        // Dropping `results` when this returns cancels every upstream call
        // still running.
        produce(results, &tx, deadline).await
    })
}

/// Forwards finished batches until done, the client leaves, a batch fails or
/// the deadline passes (checked while waiting for ECR *and* for the client).
async fn produce(
    mut results: impl Stream<Item = Result<pb::BatchCheckLayerAvailabilityResponse, Error>> + Unpin,
    tx: &mpsc::Sender<Item>,
    deadline: Instant,
) -> Result<(), Status> {
    let expired = || {
        let err = UpstreamError::deadline_exceeded(Action::BatchCheckLayerAvailability.name());
        Err(Error::from(err).to_status())
    };
    loop {
        let next = tokio::select! {
            biased;
            () = tx.closed() => return Ok(()),
            () = tokio::time::sleep_until(deadline) => return expired(),
            next = results.next() => next,
        };
        match next {
            None => return Ok(()),
            Some(Ok(response)) => tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline) => return expired(),
                sent = tx.send(Ok(response)) => {
                    if sent.is_err() {
                        return Ok(());
                    }
                }
            },
            Some(Err(err)) => return Err(err.to_status()),
        }
    }
}

/// Deduplicated digests in batches of at most [`LIST_LIMIT`], made as
/// they are needed: the first calls go upstream once the first
/// `concurrency` batches are cut (`buffer_unordered` fills its slots
/// first), not after all the digests are checked (10,000 take milliseconds
/// to deduplicate); the rest is done while calls run. `seen` holds one copy
/// of each digest asked so far, as the eager version's batches did.
struct Batches {
    digests: std::vec::IntoIter<String>,
    seen: HashSet<String>,
}

fn batches(digests: Vec<String>) -> Batches {
    Batches {
        seen: HashSet::with_capacity(digests.len()),
        digests: digests.into_iter(),
    }
}

impl Iterator for Batches {
    type Item = Vec<String>;

    fn next(&mut self) -> Option<Vec<String>> {
        let mut batch = Vec::with_capacity(LIST_LIMIT.min(self.digests.len()));
        for digest in self.digests.by_ref() {
            if self.seen.insert(digest.clone()) {
                batch.push(digest);
                if batch.len() == LIST_LIMIT {
                    break;
                }
            }
        }
        (!batch.is_empty()).then_some(batch)
    }
}

/// Adds a failure for every asked digest the response does not mention.
fn complete(
    mut response: pb::BatchCheckLayerAvailabilityResponse,
    asked: &[String],
) -> pb::BatchCheckLayerAvailabilityResponse {
    let answered: HashSet<&str> = response
        .layers
        .iter()
        .filter_map(|l| l.layer_digest.as_deref())
        .chain(
            response
                .failures
                .iter()
                .filter_map(|f| f.layer_digest.as_deref()),
        )
        .collect();
    let missing: Vec<pb::LayerFailure> = asked
        .iter()
        .filter(|d| !answered.contains(d.as_str()))
        .map(|d| pb::LayerFailure {
            layer_digest: Some(d.clone()),
            failure_code: pb::LayerFailureCode::Unspecified as i32,
            failure_reason: Some(NO_ANSWER_REASON.to_owned()),
        })
        .collect();
    response.failures.extend(missing);
    response
}

#[cfg(test)]
mod tests;
