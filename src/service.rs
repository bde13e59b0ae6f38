//! The tonic handlers of `ecr.v1.EcrService`.
//!
//! Every handler has the same shape — validate (before anything else), call
//! ECR, convert the answer — written once in [`EcrFacade::forward`].

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecr::Client;
use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::requests;
use crate::deadline;
use crate::error::{Error, UpstreamError};
use crate::layer_check;
use crate::metrics::Metrics;
use crate::model::Action;
use crate::pb;
use crate::pb::ecr_service_server::EcrService;
use crate::security::{Authorizer, RepositoryScoped};
use crate::token_cache::{TokenCache, TokenSource};
use crate::transfer::{self, Transfer, TransferSettings};
use crate::upstream::{EcrTokenSource, observed};
use crate::validate::{self, Limits, Validate};

/// Knobs of the facade itself.
#[derive(Debug, Clone, Copy)]
pub struct FacadeSettings {
    /// Request limits of the facade's own.
    pub limits: Limits,
    /// Upstream batches one layer-availability stream runs at once.
    pub upstream_concurrency: usize,
    /// Minimum remaining validity of a served authorization token.
    pub token_min_ttl: Duration,
    /// Budget of one RPC when the caller sets no shorter `grpc-timeout`.
    pub rpc_timeout: Duration,
    /// Limits and timeouts of PushLayer and PullLayer.
    pub transfer: TransferSettings,
}

impl Default for FacadeSettings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            upstream_concurrency: 8,
            token_min_ttl: Duration::from_secs(6 * 3600),
            rpc_timeout: Duration::from_secs(60),
            transfer: TransferSettings::default(),
        }
    }
}

/// The `EcrService` implementation: one shared ECR client and token cache.
#[derive(Clone)]
pub struct EcrFacade {
    client: Client,
    tokens: TokenCache,
    settings: FacadeSettings,
    metrics: Arc<Metrics>,
    authorizer: Authorizer,
    transfer: Transfer,
}

impl EcrFacade {
    /// A facade forwarding to `client`, counting into `metrics`.
    pub fn new(client: Client, settings: FacadeSettings, metrics: Arc<Metrics>) -> Self {
        let source = Arc::new(EcrTokenSource::new(client.clone(), Arc::clone(&metrics)));
        Self::with_token_source(client, settings, metrics, source)
    }

    /// A facade whose tokens come from `source` (tests count its calls).
    pub fn with_token_source(
        client: Client,
        settings: FacadeSettings,
        metrics: Arc<Metrics>,
        source: Arc<dyn TokenSource>,
    ) -> Self {
        Self {
            tokens: TokenCache::new(source, settings.token_min_ttl, Arc::clone(&metrics)),
            transfer: Transfer::new(client.clone(), settings.transfer, Arc::clone(&metrics)),
            client,
            settings,
            metrics,
            authorizer: Authorizer::allow_all(),
        }
    }

    /// The facade with per-caller authorization (default: every caller may
    /// call every action).
    pub fn with_authorizer(mut self, authorizer: Authorizer) -> Self {
        self.authorizer = authorizer;
        self
    }

    /// Validates `request` (ECR's constraints), then authorizes its caller
    /// for its action and repositories: the first thing every handler does.
    fn admit<R: Validate + RepositoryScoped>(&self, request: &Request<R>) -> Result<(), Status> {
        validate::check(request.get_ref(), &self.settings.limits)?;
        self.authorizer.authorize_request(request)
    }

    /// The layer transfers (their push slots feed tests).
    pub fn transfer(&self) -> &Transfer {
        &self.transfer
    }

    /// The token cache (its counters feed tests and metrics).
    pub fn tokens(&self) -> &TokenCache {
        &self.tokens
    }

    /// Validate → call (within the RPC's deadline) → convert, for every
    /// unary action.
    async fn forward<Req, Out, Resp, E, Fut>(
        &self,
        request: Request<Req>,
        call: impl FnOnce(&Client, Req) -> Fut,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Validate + RepositoryScoped,
        Resp: From<Out>,
        Fut: Future<Output = Result<Out, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let action = Req::ACTION.name();
        let deadline = deadline::of_request(&request, self.settings.rpc_timeout);
        self.admit(&request)?;
        let request = request.into_inner();
        let started = std::time::Instant::now();
        // Boxed where it is made: an SDK call's future is about 30 KB, and
        // every move of it by value (into `observed`, into the timeout, into
        // this future) is a memcpy of that size.
        let call = observed(&self.metrics, action, Box::pin(call(&self.client, request)));
        let output = match tokio::time::timeout_at(deadline, call).await {
            Ok(result) => result.map_err(Error::from)?,
            Err(_) => {
                let abandoned = UpstreamError::deadline_exceeded(action);
                self.metrics
                    .upstream(action, abandoned.reason(), started.elapsed());
                return Err(Error::from(abandoned).into());
            }
        };
        Ok(Response::new(Resp::from(output)))
    }
}

#[tonic::async_trait]
impl EcrService for EcrFacade {
    type BatchCheckLayerAvailabilityStream = layer_check::LayerStream;

    async fn batch_check_layer_availability(
        &self,
        request: Request<pb::BatchCheckLayerAvailabilityRequest>,
    ) -> Result<Response<Self::BatchCheckLayerAvailabilityStream>, Status> {
        let deadline = deadline::of_request(&request, self.settings.rpc_timeout);
        self.admit(&request)?;
        let request = request.into_inner();
        let pb::BatchCheckLayerAvailabilityRequest {
            registry_id,
            repository_name,
            layer_digests,
        } = request;
        let client = self.client.clone();
        let metrics = Arc::clone(&self.metrics);
        let receiver = layer_check::fan_out(
            layer_digests,
            self.settings.upstream_concurrency,
            deadline,
            move |batch| {
                // Boxed, as in `forward`: the fan-out also keeps a slot the
                // size of its future per stream (30 MB for 1,000 streams).
                let call = Box::pin(
                    requests::batch_check_layer_availability(
                        &client,
                        registry_id.clone(),
                        repository_name.clone(),
                        batch,
                    )
                    .send(),
                );
                let metrics = Arc::clone(&metrics);
                async move {
                    observed(&metrics, Action::BatchCheckLayerAvailability.name(), call)
                        .await
                        .map(Into::into)
                        .map_err(Into::into)
                }
            },
        );
        Ok(Response::new(receiver))
    }

    async fn batch_delete_image(
        &self,
        request: Request<pb::BatchDeleteImageRequest>,
    ) -> Result<Response<pb::BatchDeleteImageResponse>, Status> {
        self.forward(request, |c, r| requests::batch_delete_image(c, r).send())
            .await
    }

    async fn batch_get_image(
        &self,
        request: Request<pb::BatchGetImageRequest>,
    ) -> Result<Response<pb::BatchGetImageResponse>, Status> {
        self.forward(request, |c, r| requests::batch_get_image(c, r).send())
            .await
    }

    async fn complete_layer_upload(
        &self,
        request: Request<pb::CompleteLayerUploadRequest>,
    ) -> Result<Response<pb::CompleteLayerUploadResponse>, Status> {
        self.forward(request, |c, r| requests::complete_layer_upload(c, r).send())
            .await
    }

    async fn create_repository(
        &self,
        request: Request<pb::CreateRepositoryRequest>,
    ) -> Result<Response<pb::CreateRepositoryResponse>, Status> {
        self.forward(request, |c, r| requests::create_repository(c, r).send())
            .await
    }

    async fn delete_repository(
        &self,
        request: Request<pb::DeleteRepositoryRequest>,
    ) -> Result<Response<pb::DeleteRepositoryResponse>, Status> {
        self.forward(request, |c, r| requests::delete_repository(c, r).send())
            .await
    }

    async fn delete_repository_policy(
        &self,
        request: Request<pb::DeleteRepositoryPolicyRequest>,
    ) -> Result<Response<pb::DeleteRepositoryPolicyResponse>, Status> {
        self.forward(request, |c, r| {
            requests::delete_repository_policy(c, r).send()
        })
        .await
    }

    async fn describe_images(
        &self,
        request: Request<pb::DescribeImagesRequest>,
    ) -> Result<Response<pb::DescribeImagesResponse>, Status> {
        self.forward(request, |c, r| requests::describe_images(c, r).send())
            .await
    }

    async fn describe_repositories(
        &self,
        request: Request<pb::DescribeRepositoriesRequest>,
    ) -> Result<Response<pb::DescribeRepositoriesResponse>, Status> {
        self.forward(request, |c, r| requests::describe_repositories(c, r).send())
            .await
    }

    async fn get_authorization_token(
        &self,
        request: Request<pb::GetAuthorizationTokenRequest>,
    ) -> Result<Response<pb::GetAuthorizationTokenResponse>, Status> {
        let deadline = deadline::of_request(&request, self.settings.rpc_timeout);
        self.admit(&request)?;
        let request = request.into_inner();
        // A fetch under way goes on for other callers if this one gives up.
        let authorization_data =
            tokio::time::timeout_at(deadline, self.tokens.get(&request.registry_ids))
                .await
                .map_err(|_| {
                    Error::from(UpstreamError::deadline_exceeded(
                        Action::GetAuthorizationToken.name(),
                    ))
                })??;
        Ok(Response::new(pb::GetAuthorizationTokenResponse {
            authorization_data,
        }))
    }

    async fn get_download_url_for_layer(
        &self,
        request: Request<pb::GetDownloadUrlForLayerRequest>,
    ) -> Result<Response<pb::GetDownloadUrlForLayerResponse>, Status> {
        self.forward(request, |c, r| {
            requests::get_download_url_for_layer(c, r).send()
        })
        .await
    }

    async fn get_repository_policy(
        &self,
        request: Request<pb::GetRepositoryPolicyRequest>,
    ) -> Result<Response<pb::GetRepositoryPolicyResponse>, Status> {
        self.forward(request, |c, r| requests::get_repository_policy(c, r).send())
            .await
    }

    async fn initiate_layer_upload(
        &self,
        request: Request<pb::InitiateLayerUploadRequest>,
    ) -> Result<Response<pb::InitiateLayerUploadResponse>, Status> {
        self.forward(request, |c, r| requests::initiate_layer_upload(c, r).send())
            .await
    }

    async fn list_images(
        &self,
        request: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        self.forward(request, |c, r| requests::list_images(c, r).send())
            .await
    }

    type PullLayerStream = transfer::PullStream;

    async fn pull_layer(
        &self,
        request: Request<pb::PullLayerRequest>,
    ) -> Result<Response<Self::PullLayerStream>, Status> {
        let deadline = self.transfer.deadline(&request);
        self.admit(&request)?;
        let stream = self.transfer.pull(request.into_inner(), deadline).await?;
        Ok(Response::new(stream))
    }

    type PushLayerStream = transfer::PushStream;

    async fn push_layer(
        &self,
        request: Request<Streaming<pb::PushLayerRequest>>,
    ) -> Result<Response<Self::PushLayerStream>, Status> {
        let deadline = self.transfer.deadline(&request);
        let (_, extensions, mut incoming) = request.into_parts();
        let header =
            transfer::read_header(&mut incoming, self.settings.transfer.idle_timeout).await?;
        validate::check(&header, &self.settings.limits)?;
        self.authorizer.authorize_message(&extensions, &header)?;
        let stream = self.transfer.push(header, incoming, deadline)?;
        Ok(Response::new(stream))
    }

    async fn put_image(
        &self,
        request: Request<pb::PutImageRequest>,
    ) -> Result<Response<pb::PutImageResponse>, Status> {
        self.forward(request, |c, r| requests::put_image(c, r).send())
            .await
    }

    async fn set_repository_policy(
        &self,
        request: Request<pb::SetRepositoryPolicyRequest>,
    ) -> Result<Response<pb::SetRepositoryPolicyResponse>, Status> {
        self.forward(request, |c, r| requests::set_repository_policy(c, r).send())
            .await
    }

    async fn upload_layer_part(
        &self,
        request: Request<pb::UploadLayerPartRequest>,
    ) -> Result<Response<pb::UploadLayerPartResponse>, Status> {
        self.forward(request, |c, r| requests::upload_layer_part(c, r).send())
            .await
    }
}
