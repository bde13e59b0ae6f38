//! aws-sdk-ecr outputs → protobuf responses, moving every member across.

use aws_sdk_ecr::operation::{
    batch_check_layer_availability::BatchCheckLayerAvailabilityOutput,
    batch_delete_image::BatchDeleteImageOutput, batch_get_image::BatchGetImageOutput,
    complete_layer_upload::CompleteLayerUploadOutput, create_repository::CreateRepositoryOutput,
    delete_repository::DeleteRepositoryOutput,
    delete_repository_policy::DeleteRepositoryPolicyOutput, describe_images::DescribeImagesOutput,
    describe_repositories::DescribeRepositoriesOutput,
    get_download_url_for_layer::GetDownloadUrlForLayerOutput,
    get_repository_policy::GetRepositoryPolicyOutput,
    initiate_layer_upload::InitiateLayerUploadOutput, list_images::ListImagesOutput,
    put_image::PutImageOutput, set_repository_policy::SetRepositoryPolicyOutput,
    upload_layer_part::UploadLayerPartOutput,
};

use crate::pb;

fn list<T, U: From<T>>(items: Option<Vec<T>>) -> Vec<U> {
    items.unwrap_or_default().into_iter().map(U::from).collect()
}

impl From<BatchCheckLayerAvailabilityOutput> for pb::BatchCheckLayerAvailabilityResponse {
    fn from(o: BatchCheckLayerAvailabilityOutput) -> Self {
        Self {
            layers: list(o.layers),
            failures: list(o.failures),
        }
    }
}

impl From<BatchDeleteImageOutput> for pb::BatchDeleteImageResponse {
    fn from(o: BatchDeleteImageOutput) -> Self {
        Self {
            image_ids: list(o.image_ids),
            failures: list(o.failures),
        }
    }
}

impl From<BatchGetImageOutput> for pb::BatchGetImageResponse {
    fn from(o: BatchGetImageOutput) -> Self {
        Self {
            images: list(o.images),
            failures: list(o.failures),
        }
    }
}

impl From<CompleteLayerUploadOutput> for pb::CompleteLayerUploadResponse {
    fn from(o: CompleteLayerUploadOutput) -> Self {
        Self {
            registry_id: o.registry_id,
            repository_name: o.repository_name,
            upload_id: o.upload_id,
            layer_digest: o.layer_digest,
        }
    }
}

impl From<CreateRepositoryOutput> for pb::CreateRepositoryResponse {
    fn from(o: CreateRepositoryOutput) -> Self {
        Self {
            repository: o.repository.map(Into::into),
        }
    }
}

impl From<DeleteRepositoryOutput> for pb::DeleteRepositoryResponse {
    fn from(o: DeleteRepositoryOutput) -> Self {
        Self {
            repository: o.repository.map(Into::into),
        }
    }
}

impl From<DeleteRepositoryPolicyOutput> for pb::DeleteRepositoryPolicyResponse {
    fn from(o: DeleteRepositoryPolicyOutput) -> Self {
        Self {
            registry_id: o.registry_id,
            repository_name: o.repository_name,
            policy_text: o.policy_text,
        }
    }
}

impl From<DescribeImagesOutput> for pb::DescribeImagesResponse {
    fn from(o: DescribeImagesOutput) -> Self {
        Self {
            image_details: list(o.image_details),
            next_token: o.next_token,
        }
    }
}

impl From<DescribeRepositoriesOutput> for pb::DescribeRepositoriesResponse {
    fn from(o: DescribeRepositoriesOutput) -> Self {
        Self {
            repositories: list(o.repositories),
            next_token: o.next_token,
        }
    }
}

impl From<GetDownloadUrlForLayerOutput> for pb::GetDownloadUrlForLayerResponse {
    fn from(o: GetDownloadUrlForLayerOutput) -> Self {
        Self {
            download_url: o.download_url,
            layer_digest: o.layer_digest,
        }
    }
}

impl From<GetRepositoryPolicyOutput> for pb::GetRepositoryPolicyResponse {
    fn from(o: GetRepositoryPolicyOutput) -> Self {
        Self {
            registry_id: o.registry_id,
            repository_name: o.repository_name,
            policy_text: o.policy_text,
        }
    }
}

impl From<InitiateLayerUploadOutput> for pb::InitiateLayerUploadResponse {
    fn from(o: InitiateLayerUploadOutput) -> Self {
        Self {
            upload_id: o.upload_id,
            part_size: o.part_size,
        }
    }
}

impl From<ListImagesOutput> for pb::ListImagesResponse {
    fn from(o: ListImagesOutput) -> Self {
        Self {
            image_ids: list(o.image_ids),
            next_token: o.next_token,
        }
    }
}

impl From<PutImageOutput> for pb::PutImageResponse {
    fn from(o: PutImageOutput) -> Self {
        Self {
            image: o.image.map(Into::into),
        }
    }
}

impl From<SetRepositoryPolicyOutput> for pb::SetRepositoryPolicyResponse {
    fn from(o: SetRepositoryPolicyOutput) -> Self {
        Self {
            registry_id: o.registry_id,
            repository_name: o.repository_name,
            policy_text: o.policy_text,
        }
    }
}

impl From<UploadLayerPartOutput> for pb::UploadLayerPartResponse {
    fn from(o: UploadLayerPartOutput) -> Self {
        Self {
            registry_id: o.registry_id,
            repository_name: o.repository_name,
            upload_id: o.upload_id,
            last_byte_received: o.last_byte_received,
        }
    }
}
