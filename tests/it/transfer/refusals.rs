//! What a push does not do: upload a layer already there, commit bytes
//! that miss their digest, move an immutable tag, or let bad input reach
//! ECR.

use super::*;

against_both!(
    a_present_layer_is_not_uploaded_again,
    a_wrong_expected_digest_commits_nothing,
    an_immutable_tag_is_not_moved,
    bad_pushes_are_refused_before_any_upstream_call,
    bad_pulls_uploads_and_puts_are_refused_before_any_upstream_call,
);

/// A layer already in the repository ends the push at once: no upload
/// reaches ECR and no bytes need be sent.
async fn a_present_layer_is_not_uploaded_again(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    let name = unique_name("present");
    create(&mut client, &name).await;
    let layer = layer_bytes(4096, 2);
    push(&mut client, &name, &layer, 1000).await;
    let uploads_before =
        ctx.proxy.count("InitiateLayerUpload") + ctx.proxy.count("UploadLayerPart");
    let again = push_messages(
        &mut client,
        messages(
            pb::PushLayerHeader {
                expected_digest: Some(sha256_digest(&layer)),
                ..header(&name)
            },
            &[],
            1,
        ),
    )
    .await
    .unwrap();
    let result = again.result.expect("result");
    assert!(result.already_present);
    assert_eq!(result.layer_digest, sha256_digest(&layer));
    assert!(again.progress.is_empty());
    assert_eq!(
        ctx.proxy.count("InitiateLayerUpload") + ctx.proxy.count("UploadLayerPart"),
        uploads_before
    );
}

/// Bytes that do not hash to the expected digest are never committed.
async fn a_wrong_expected_digest_commits_nothing(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    let name = unique_name("wrong");
    create(&mut client, &name).await;
    let layer = layer_bytes(3000, 3);
    let claimed = sha256_digest(b"something else");
    let status = push_messages(
        &mut client,
        messages(
            pb::PushLayerHeader {
                expected_digest: Some(claimed.clone()),
                ..header(&name)
            },
            &layer,
            700,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = status
        .get_details_bad_request()
        .expect("BadRequest")
        .field_violations;
    assert_eq!(violations[0].field, "header.expected_digest");
    assert!(violations[0].description.contains(&sha256_digest(&layer)));
    assert_eq!(ctx.proxy.count("CompleteLayerUpload"), 0);
    let mut checked = client
        .batch_check_layer_availability(pb::BatchCheckLayerAvailabilityRequest {
            repository_name: name,
            layer_digests: vec![claimed, sha256_digest(&layer)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(batch) = checked.message().await.unwrap() {
        assert!(
            batch
                .layers
                .iter()
                .all(|l| l.layer_availability != pb::LayerAvailability::Available as i32)
        );
    }
}

/// Tag immutability: ImageTagAlreadyExistsException is ALREADY_EXISTS.
async fn an_immutable_tag_is_not_moved(kind: Kind) {
    let (mut client, _ctx) = setup(kind).await;
    let name = unique_name("immutable");
    client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: name.clone(),
            image_tag_mutability: pb::ImageTagMutability::Immutable as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let config = b"{}";
    push(&mut client, &name, config, MIB).await;
    for (i, expect_ok) in [(0u8, true), (1, false)] {
        let layer = tar_layer("f", &[i; 4]);
        push(&mut client, &name, &layer, MIB).await;
        let put = client
            .put_image(pb::PutImageRequest {
                repository_name: name.clone(),
                image_manifest: manifest(config, &layer),
                image_tag: Some("stable".into()),
                ..Default::default()
            })
            .await;
        match put {
            Ok(_) => assert!(expect_ok),
            Err(status) => {
                assert!(!expect_ok, "{status:?}");
                // ECR's (and the emulator's) error; moto names it differently,
                // with the same meaning and code.
                let reason = match kind {
                    Kind::Emulator => "ImageTagAlreadyExistsException",
                    Kind::Moto => "ImageAlreadyExistsException",
                };
                assert_ecr_error(&status, Code::AlreadyExists, reason);
            }
        }
    }
}

/// Push streams that are malformed, each with the field its refusal names.
fn bad_pushes() -> Vec<(Vec<pb::PushLayerRequest>, &'static str)> {
    let chunk = || pb::PushLayerRequest {
        message: Some(Send::Chunk(Bytes::from_static(b"abc"))),
    };
    let head = |h: pb::PushLayerHeader| pb::PushLayerRequest {
        message: Some(Send::Header(h)),
    };
    vec![
        (vec![chunk(), head(header("a/b"))], "header"),
        (
            vec![head(header("a/b")), head(header("a/b")), chunk()],
            "header",
        ),
        (vec![], "header"),
        (vec![head(header("Bad!"))], "header.repository_name"),
        (
            vec![head(pb::PushLayerHeader {
                total_size: Some(-1),
                ..header("a/b")
            })],
            "header.total_size",
        ),
        (
            vec![head(pb::PushLayerHeader {
                expected_digest: Some("md5:abc".into()),
                ..header("a/b")
            })],
            "header.expected_digest",
        ),
        (
            vec![head(pb::PushLayerHeader {
                upload_id: Some("not-a-uuid".into()),
                ..header("a/b")
            })],
            "header.upload_id",
        ),
    ]
}

/// A bad push is refused before anything reaches ECR, with the field named.
async fn bad_pushes_are_refused_before_any_upstream_call(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    for (messages, field) in bad_pushes() {
        let status = push_messages(&mut client, messages).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(violated_fields(&status)[0], field);
    }
    assert_eq!(ctx.proxy.total(), 0, "nothing reached ECR");
}

/// The other transfer actions' bad input is refused before anything reaches
/// ECR too.
async fn bad_pulls_uploads_and_puts_are_refused_before_any_upstream_call(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    let pull = client
        .pull_layer(pb::PullLayerRequest {
            repository_name: "a/b".into(),
            layer_digest: "nodigest".into(),
            offset: Some(-5),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&pull), ["layer_digest", "offset"]);
    let part = client
        .upload_layer_part(pb::UploadLayerPartRequest {
            repository_name: "a/b".into(),
            upload_id: "7a4dbf4b-6b4f-4b69-9c5c-2d4b1e0f0a11".into(),
            part_first_byte: None,
            part_last_byte: Some(-1),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&part),
        ["part_first_byte", "part_last_byte"]
    );
    let put = client
        .put_image(pb::PutImageRequest {
            repository_name: "a/b".into(),
            image_manifest: String::new(),
            image_tag: Some("x".repeat(301)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(put.code(), Code::InvalidArgument);
    let policy = client
        .set_repository_policy(pb::SetRepositoryPolicyRequest {
            repository_name: "a/b".into(),
            policy_text: "x".repeat(10_241),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(policy.code(), Code::InvalidArgument);
    let list = client
        .list_images(pb::ListImagesRequest {
            repository_name: "a/b".into(),
            max_results: Some(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(list.code(), Code::InvalidArgument);
    assert_eq!(ctx.proxy.total(), 0, "nothing reached ECR");
}
