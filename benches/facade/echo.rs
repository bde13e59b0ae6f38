//! The bare tonic baseline for scenario 2, run as a child process (this
//! bench re-executed with `--serve-echo`): `ecr.v1.EcrService` whose
//! GetAuthorizationToken and DescribeRepositories return constant answers —
//! the facade's own answers, byte for byte — with the facade's transport
//! settings (TCP_NODELAY, stream limit, keepalive, message limits) and
//! allocator, and none of its work (no RPC envelope, logging, metrics, auth,
//! validation, cache).
//!
//! Protocol with the bench: prints `listen=<addr>` once serving; answers
//! each `count` line on stdin with `calls=<n>` (calls answered OK so far);
//! exits when stdin closes.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ecr_facade::pb;
use ecr_facade::pb::ecr_service_server::{EcrService, EcrServiceServer};
use ecr_facade::server::{MAX_DECODING_MESSAGE_SIZE, MAX_ENCODING_MESSAGE_SIZE};
use prost::Message;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

struct Bare {
    token: pb::GetAuthorizationTokenResponse,
    repositories: pb::DescribeRepositoriesResponse,
    calls: Arc<AtomicU64>,
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not part of the baseline"))
}

#[tonic::async_trait]
impl EcrService for Bare {
    type BatchCheckLayerAvailabilityStream =
        ReceiverStream<Result<pb::BatchCheckLayerAvailabilityResponse, Status>>;

    async fn get_authorization_token(
        &self,
        _: Request<pb::GetAuthorizationTokenRequest>,
    ) -> Result<Response<pb::GetAuthorizationTokenResponse>, Status> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(self.token.clone()))
    }

    async fn describe_repositories(
        &self,
        _: Request<pb::DescribeRepositoriesRequest>,
    ) -> Result<Response<pb::DescribeRepositoriesResponse>, Status> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(self.repositories.clone()))
    }

    async fn batch_check_layer_availability(
        &self,
        _: Request<pb::BatchCheckLayerAvailabilityRequest>,
    ) -> Result<Response<Self::BatchCheckLayerAvailabilityStream>, Status> {
        unimplemented()
    }

    async fn batch_delete_image(
        &self,
        _: Request<pb::BatchDeleteImageRequest>,
    ) -> Result<Response<pb::BatchDeleteImageResponse>, Status> {
        unimplemented()
    }

    async fn batch_get_image(
        &self,
        _: Request<pb::BatchGetImageRequest>,
    ) -> Result<Response<pb::BatchGetImageResponse>, Status> {
        unimplemented()
    }

    async fn complete_layer_upload(
        &self,
        _: Request<pb::CompleteLayerUploadRequest>,
    ) -> Result<Response<pb::CompleteLayerUploadResponse>, Status> {
        unimplemented()
    }

    async fn create_repository(
        &self,
        _: Request<pb::CreateRepositoryRequest>,
    ) -> Result<Response<pb::CreateRepositoryResponse>, Status> {
        unimplemented()
    }

    async fn delete_repository(
        &self,
        _: Request<pb::DeleteRepositoryRequest>,
    ) -> Result<Response<pb::DeleteRepositoryResponse>, Status> {
        unimplemented()
    }

    async fn delete_repository_policy(
        &self,
        _: Request<pb::DeleteRepositoryPolicyRequest>,
    ) -> Result<Response<pb::DeleteRepositoryPolicyResponse>, Status> {
        unimplemented()
    }

    async fn describe_images(
        &self,
        _: Request<pb::DescribeImagesRequest>,
    ) -> Result<Response<pb::DescribeImagesResponse>, Status> {
        unimplemented()
    }

    async fn get_download_url_for_layer(
        &self,
        _: Request<pb::GetDownloadUrlForLayerRequest>,
    ) -> Result<Response<pb::GetDownloadUrlForLayerResponse>, Status> {
        unimplemented()
    }

    type PullLayerStream = ReceiverStream<Result<pb::PullLayerResponse, Status>>;

    async fn pull_layer(
        &self,
        _: Request<pb::PullLayerRequest>,
    ) -> Result<Response<Self::PullLayerStream>, Status> {
        unimplemented()
    }

    type PushLayerStream = ReceiverStream<Result<pb::PushLayerResponse, Status>>;

    async fn push_layer(
        &self,
        _: Request<tonic::Streaming<pb::PushLayerRequest>>,
    ) -> Result<Response<Self::PushLayerStream>, Status> {
        unimplemented()
    }

    async fn get_repository_policy(
        &self,
        _: Request<pb::GetRepositoryPolicyRequest>,
    ) -> Result<Response<pb::GetRepositoryPolicyResponse>, Status> {
        unimplemented()
    }

    async fn initiate_layer_upload(
        &self,
        _: Request<pb::InitiateLayerUploadRequest>,
    ) -> Result<Response<pb::InitiateLayerUploadResponse>, Status> {
        unimplemented()
    }

    async fn list_images(
        &self,
        _: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        unimplemented()
    }

    async fn put_image(
        &self,
        _: Request<pb::PutImageRequest>,
    ) -> Result<Response<pb::PutImageResponse>, Status> {
        unimplemented()
    }

    async fn set_repository_policy(
        &self,
        _: Request<pb::SetRepositoryPolicyRequest>,
    ) -> Result<Response<pb::SetRepositoryPolicyResponse>, Status> {
        unimplemented()
    }

    async fn upload_layer_part(
        &self,
        _: Request<pb::UploadLayerPartRequest>,
    ) -> Result<Response<pb::UploadLayerPartResponse>, Status> {
        unimplemented()
    }
}

/// Runs the baseline server (child mode); `token` and `repositories` hold
/// the encoded constant answers.
pub fn serve(token: &Path, repositories: &Path) -> anyhow::Result<()> {
    let token = Message::decode(std::fs::read(token)?.as_slice())?;
    let repositories = Message::decode(std::fs::read(repositories)?.as_slice())?;
    let calls = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&calls);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == "count" => {
                    println!("calls={}", counted.load(Ordering::Relaxed));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::process::exit(0);
    });
    // The same runtime as the binary's `#[tokio::main]`: one worker per core.
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listen={}", listener.local_addr()?);
        serve_on(listener, token, repositories, calls).await
    })
}

/// Serves the baseline on `listener` (in-process or in the child), counting
/// answered calls in `calls`.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    token: pb::GetAuthorizationTokenResponse,
    repositories: pb::DescribeRepositoriesResponse,
    calls: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let bare = Bare {
        token,
        repositories,
        calls,
    };
    let defaults = ecr_facade::server::ServerSettings::default();
    let service = EcrServiceServer::new(bare)
        .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_ENCODING_MESSAGE_SIZE);
    Server::builder()
        .max_concurrent_streams(defaults.max_concurrent_streams)
        .http2_keepalive_interval(Some(defaults.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(defaults.http2_keepalive_timeout))
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .add_service(service)
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await?;
    Ok(())
}
