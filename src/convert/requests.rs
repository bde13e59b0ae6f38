//! Validated protobuf requests → ready-to-send aws-sdk-ecr calls.
//!
//! Empty repeated fields mean "omitted" (protobuf cannot tell them apart), so
//! they are not sent; ECR refuses an empty list where one is allowed.

use aws_sdk_ecr::Client;
use aws_sdk_ecr::operation::{
    batch_check_layer_availability::builders::BatchCheckLayerAvailabilityFluentBuilder,
    batch_delete_image::builders::BatchDeleteImageFluentBuilder,
    batch_get_image::builders::BatchGetImageFluentBuilder,
    complete_layer_upload::builders::CompleteLayerUploadFluentBuilder,
    create_repository::builders::CreateRepositoryFluentBuilder,
    delete_repository::builders::DeleteRepositoryFluentBuilder,
    delete_repository_policy::builders::DeleteRepositoryPolicyFluentBuilder,
    describe_images::builders::DescribeImagesFluentBuilder,
    describe_repositories::builders::DescribeRepositoriesFluentBuilder,
    get_authorization_token::builders::GetAuthorizationTokenFluentBuilder,
    get_download_url_for_layer::builders::GetDownloadUrlForLayerFluentBuilder,
    get_repository_policy::builders::GetRepositoryPolicyFluentBuilder,
    initiate_layer_upload::builders::InitiateLayerUploadFluentBuilder,
    list_images::builders::ListImagesFluentBuilder, put_image::builders::PutImageFluentBuilder,
    set_repository_policy::builders::SetRepositoryPolicyFluentBuilder,
    upload_layer_part::builders::UploadLayerPartFluentBuilder,
};
use aws_sdk_ecr::types as sdk;
use aws_smithy_types::Blob;

use super::enums::EnumPair;
use super::types;
use crate::pb;

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn converted<T, U: From<T>>(items: Vec<T>) -> Option<Vec<U>> {
    non_empty(items.into_iter().map(U::from).collect())
}

/// One upstream batch of a BatchCheckLayerAvailability stream.
pub fn batch_check_layer_availability(
    client: &Client,
    registry_id: Option<String>,
    repository_name: String,
    layer_digests: Vec<String>,
) -> BatchCheckLayerAvailabilityFluentBuilder {
    client
        .batch_check_layer_availability()
        .set_registry_id(registry_id)
        .repository_name(repository_name)
        .set_layer_digests(non_empty(layer_digests))
}

/// BatchDeleteImage.
pub fn batch_delete_image(
    client: &Client,
    r: pb::BatchDeleteImageRequest,
) -> BatchDeleteImageFluentBuilder {
    client
        .batch_delete_image()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .set_image_ids(converted(r.image_ids))
}

/// BatchGetImage.
pub fn batch_get_image(client: &Client, r: pb::BatchGetImageRequest) -> BatchGetImageFluentBuilder {
    client
        .batch_get_image()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .set_image_ids(converted(r.image_ids))
        .set_accepted_media_types(non_empty(r.accepted_media_types))
}

/// CompleteLayerUpload.
pub fn complete_layer_upload(
    client: &Client,
    r: pb::CompleteLayerUploadRequest,
) -> CompleteLayerUploadFluentBuilder {
    client
        .complete_layer_upload()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .upload_id(r.upload_id)
        .set_layer_digests(non_empty(r.layer_digests))
}

/// CreateRepository.
pub fn create_repository(
    client: &Client,
    r: pb::CreateRepositoryRequest,
) -> CreateRepositoryFluentBuilder {
    client
        .create_repository()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .set_tags(non_empty(r.tags.into_iter().map(types::tag).collect()))
        .set_image_tag_mutability(sdk::ImageTagMutability::from_pb(r.image_tag_mutability))
        .set_image_tag_mutability_exclusion_filters(non_empty(
            r.image_tag_mutability_exclusion_filters
                .into_iter()
                .map(types::exclusion_filter)
                .collect(),
        ))
        .set_image_scanning_configuration(r.image_scanning_configuration.map(Into::into))
        .set_encryption_configuration(
            r.encryption_configuration
                .map(types::encryption_configuration),
        )
}

/// DeleteRepository.
pub fn delete_repository(
    client: &Client,
    r: pb::DeleteRepositoryRequest,
) -> DeleteRepositoryFluentBuilder {
    client
        .delete_repository()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .set_force(r.force)
}

/// DeleteRepositoryPolicy.
pub fn delete_repository_policy(
    client: &Client,
    r: pb::DeleteRepositoryPolicyRequest,
) -> DeleteRepositoryPolicyFluentBuilder {
    client
        .delete_repository_policy()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
}

/// DescribeImages.
pub fn describe_images(
    client: &Client,
    r: pb::DescribeImagesRequest,
) -> DescribeImagesFluentBuilder {
    client
        .describe_images()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .set_image_ids(converted(r.image_ids))
        .set_next_token(r.next_token)
        .set_max_results(r.max_results)
        .set_filter(r.filter.map(Into::into))
}

/// DescribeRepositories.
pub fn describe_repositories(
    client: &Client,
    r: pb::DescribeRepositoriesRequest,
) -> DescribeRepositoriesFluentBuilder {
    client
        .describe_repositories()
        .set_registry_id(r.registry_id)
        .set_repository_names(non_empty(r.repository_names))
        .set_next_token(r.next_token)
        .set_max_results(r.max_results)
}

/// GetAuthorizationToken for `registry_ids` (empty: the default registry).
#[allow(deprecated)] // registryIds is deprecated upstream but still honoured.
pub fn get_authorization_token(
    client: &Client,
    registry_ids: Vec<String>,
) -> GetAuthorizationTokenFluentBuilder {
    client
        .get_authorization_token()
        .set_registry_ids(non_empty(registry_ids))
}

/// GetDownloadUrlForLayer.
pub fn get_download_url_for_layer(
    client: &Client,
    r: pb::GetDownloadUrlForLayerRequest,
) -> GetDownloadUrlForLayerFluentBuilder {
    client
        .get_download_url_for_layer()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .layer_digest(r.layer_digest)
}

/// GetRepositoryPolicy.
pub fn get_repository_policy(
    client: &Client,
    r: pb::GetRepositoryPolicyRequest,
) -> GetRepositoryPolicyFluentBuilder {
    client
        .get_repository_policy()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
}

/// InitiateLayerUpload.
pub fn initiate_layer_upload(
    client: &Client,
    r: pb::InitiateLayerUploadRequest,
) -> InitiateLayerUploadFluentBuilder {
    client
        .initiate_layer_upload()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
}

/// ListImages.
pub fn list_images(client: &Client, r: pb::ListImagesRequest) -> ListImagesFluentBuilder {
    client
        .list_images()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .set_next_token(r.next_token)
        .set_max_results(r.max_results)
        .set_filter(r.filter.map(Into::into))
}

/// PutImage: the manifest goes upstream exactly as the caller sent it.
pub fn put_image(client: &Client, r: pb::PutImageRequest) -> PutImageFluentBuilder {
    client
        .put_image()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .image_manifest(r.image_manifest)
        .set_image_manifest_media_type(r.image_manifest_media_type)
        .set_image_tag(r.image_tag)
        .set_image_digest(r.image_digest)
}

/// SetRepositoryPolicy.
pub fn set_repository_policy(
    client: &Client,
    r: pb::SetRepositoryPolicyRequest,
) -> SetRepositoryPolicyFluentBuilder {
    client
        .set_repository_policy()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .policy_text(r.policy_text)
        .set_force(r.force)
}

/// UploadLayerPart.
pub fn upload_layer_part(
    client: &Client,
    r: pb::UploadLayerPartRequest,
) -> UploadLayerPartFluentBuilder {
    client
        .upload_layer_part()
        .set_registry_id(r.registry_id)
        .repository_name(r.repository_name)
        .upload_id(r.upload_id)
        .set_part_first_byte(r.part_first_byte)
        .set_part_last_byte(r.part_last_byte)
        .layer_part_blob(Blob::from_maybe_shared(r.layer_part_blob))
}
