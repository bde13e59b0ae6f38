//! One upstream ECR call, observed: its SDK error classified once into an
//! [`UpstreamError`] and its outcome and latency recorded in the metrics.
//! Every caller of the SDK (the handlers, the token source, layer transfers)
//! goes through [`observed`]. [`EcrTokenSource`] is the token cache's source
//! of fresh tokens: GetAuthorizationToken, observed.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;

use aws_sdk_ecr::Client;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use futures::future::{BoxFuture, FutureExt};

use crate::convert::requests;
use crate::error::{Error, UpstreamError};
use crate::metrics::Metrics;
use crate::model::Action;
use crate::pb;
use crate::token_cache::TokenSource;

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

/// Fetches authorization tokens from ECR for the cache.
pub struct EcrTokenSource {
    client: Client,
    metrics: Arc<Metrics>,
}

impl EcrTokenSource {
    /// Tokens through `client`, each call counted into `metrics`.
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        Self { client, metrics }
    }
}

impl TokenSource for EcrTokenSource {
    fn fetch(
        &self,
        registry_ids: Vec<String>,
    ) -> BoxFuture<'static, Result<Vec<pb::AuthorizationData>, Error>> {
        let call = requests::get_authorization_token(&self.client, registry_ids).send();
        let metrics = Arc::clone(&self.metrics);
        async move {
            let output = observed(&metrics, Action::GetAuthorizationToken.name(), call).await?;
            Ok(output
                .authorization_data
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect())
        }
        .boxed()
    }
}
