//! Every RPC through the facade over real gRPC, against each upstream:
//! moto server — a real ECR implementation nobody here wrote — and the
//! embedded emulator. Each scenario runs once per upstream (`moto::*`,
//! `emulator::*`). A counting proxy sits between the facade and the upstream
//! so tests also see what reached it.

mod images;
mod repositories;

use crate::common::images::{by_tag, push_image};
use crate::common::upstream::{
    Kind, Setup, against_both, assert_ecr_error, create, emulator_facade, setup, violated_fields,
};
use crate::common::{digest, ecr_client, http_get, sha256_digest, unique_name, upstream_settings};
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use tonic::Code;
use tonic::transport::Channel;

against_both!(bad_input_is_refused_before_any_upstream_call,);

/// A repository holding one image pushed through the facade.
struct Pushed {
    name: String,
    layer_digest: String,
    image_digest: String,
}

/// [`setup`], then a repository named after `prefix` with one image tagged
/// `tag` in it.
async fn pushed(kind: Kind, prefix: &str, tag: &str) -> (EcrServiceClient<Channel>, Setup, Pushed) {
    let (mut client, ctx) = setup(kind).await;
    let name = unique_name(prefix);
    create(&mut client, &name).await;
    let (layer_digest, image_digest) = push_image(&mut client, &name, tag).await;
    let pushed = Pushed {
        name,
        layer_digest,
        image_digest,
    };
    (client, ctx, pushed)
}

async fn bad_input_is_refused_before_any_upstream_call(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    let bad_name = "Not A Repo!".to_owned();
    // Every action naming one repository, with an invalid name.
    macro_rules! with_bad_name {
        ($($method:ident($request:ident)),+ $(,)?) => {$(
            let request = pb::$request { repository_name: bad_name.clone(), ..Default::default() };
            let status = client.$method(request).await.map(|_| ()).unwrap_err();
            let fields = violated_fields(&status);
            assert!(fields.contains(&"repository_name".to_owned()), "{}: {fields:?}", stringify!($method));
        )+};
    }
    with_bad_name!(
        batch_delete_image(BatchDeleteImageRequest),
        batch_get_image(BatchGetImageRequest),
        complete_layer_upload(CompleteLayerUploadRequest),
        create_repository(CreateRepositoryRequest),
        delete_repository(DeleteRepositoryRequest),
        delete_repository_policy(DeleteRepositoryPolicyRequest),
        describe_images(DescribeImagesRequest),
        get_download_url_for_layer(GetDownloadUrlForLayerRequest),
    );
    let check = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: bad_name.clone(),
            layer_digests: vec![],
            registry_id: Some("12".into()),
        })
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        violated_fields(&check),
        ["registry_id", "repository_name", "layer_digests"]
    );
    let page = client
        .describe_repositories(pb::DescribeRepositoriesRequest {
            max_results: Some(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&page), ["max_results"]);
    let token = client
        .get_authorization_token(pb::GetAuthorizationTokenRequest {
            registry_ids: vec!["x".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&token), ["registry_ids[0]"]);
    assert_eq!(
        ctx.proxy.total(),
        0,
        "invalid requests reached the upstream: {:?}",
        ctx.proxy.calls()
    );
}
