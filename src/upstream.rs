//! One upstream ECR call, observed: its SDK error classified once into an
//! [`UpstreamError`] and its outcome and latency recorded in the metrics.
//! Every caller of the SDK (the handlers, the token source, layer transfers)
//! goes through [`observed`].

use std::error::Error as StdError;
use std::future::Future;

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::error::UpstreamError;
use crate::metrics::Metrics;

/// Runs one upstream call of `action`, classifies its error and records its
/// outcome and latency.
pub async fn observed<T, E>(
    metrics: &Metrics,
    action: &'static str,
    call: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
) -> Result<T, UpstreamError>
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let started = std::time::Instant::now();
    let result = call.await.map_err(|e| UpstreamError::from_sdk(action, e));
    let outcome = result.as_ref().map_or_else(UpstreamError::reason, |_| "ok");
    metrics.upstream(action, outcome, started.elapsed());
    result
}
