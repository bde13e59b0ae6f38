//! Writing through the facade: PushLayer, PutImage (tagging and promotion),
//! ListImages, the repository policy, the upload actions, and PullLayer —
//! against moto and the emulator (PullLayer against the emulator only: moto
//! has no download URLs). Large and faulted transfers run against an
//! emulator directly, without the counting proxy in between.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use ecr_facade::pb::push_layer_request::Message as Send;
use ecr_facade::pb::push_layer_response::Message as Received;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::common::images::*;
use crate::common::upstream::{
    Kind, against_both, assert_ecr_error, create, facade_on_emulator, setup, violated_fields,
};
use crate::common::{TestFacade, sha256_digest, unique_name};

against_both!(
    push_tag_list_and_pull_an_image,
    list_images_pages,
    unary_upload_and_policy_actions,
    a_present_layer_is_not_uploaded_again,
    a_wrong_expected_digest_commits_nothing,
    an_immutable_tag_is_not_moved,
    bad_pushes_are_refused_before_any_upstream_call,
    bad_pulls_uploads_and_puts_are_refused_before_any_upstream_call,
);

/// Push a real image (tar layer, config, manifest), read it back, retag it
/// with the manifest exactly as BatchGetImage returned it, list it, and
/// (emulator) pull the layer back.
async fn push_tag_list_and_pull_an_image(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    let name = unique_name("push");
    create(&mut client, &name).await;
    let layer = tar_layer("hello.txt", b"hello from ecr-facade\n");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let pushed_layer = push(&mut client, &name, &layer, 100).await;
    assert_eq!(pushed_layer.layer_digest, sha256_digest(&layer));
    assert_eq!(pushed_layer.size, layer.len() as i64);
    assert!(!pushed_layer.already_present);
    let pushed_config = push(&mut client, &name, config, MIB).await;
    assert_eq!(pushed_config.layer_digest, sha256_digest(config));

    // Pretty-printed, keys in an unusual order: a facade that re-serialised
    // the manifest would change its bytes, and so the image digest.
    let compact: serde_json::Value = serde_json::from_str(&manifest(config, &layer)).unwrap();
    let manifest = format!("{}\n", serde_json::to_string_pretty(&compact).unwrap())
        .replace("\"schemaVersion\": 2,", "\"schemaVersion\" :  2 ,");
    let put = put_image(&mut client, &name, manifest.clone(), Some("v1")).await;
    assert_eq!(put.image_manifest.as_deref(), Some(manifest.as_str()));
    if kind == Kind::Emulator {
        // ECR's image digest is the sha256 of the bytes as sent (moto's is not).
        assert_eq!(
            put.image_id.as_ref().unwrap().image_digest,
            Some(sha256_digest(manifest.as_bytes()))
        );
    }

    let got = client
        .batch_get_image(pb::BatchGetImageRequest {
            repository_name: name.clone(),
            image_ids: vec![by_tag("v1")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let fetched = got.images[0].image_manifest.clone().expect("manifest");
    assert_eq!(fetched, manifest, "the manifest comes back byte for byte");

    // Promotion: the manifest exactly as read, under a new tag.
    let retagged = put_image(&mut client, &name, fetched, Some("release")).await;
    assert_eq!(
        retagged.image_id.unwrap().image_digest,
        put.image_id.unwrap().image_digest,
        "same manifest bytes, same image"
    );

    assert_eq!(tags_in(&mut client, &name).await, ["release", "v1"]);

    if kind == Kind::Emulator {
        let (total, bytes) = pull(&mut client, &name, &pushed_layer.layer_digest, None)
            .await
            .expect("pull");
        assert_eq!(total, layer.len() as i64);
        assert_eq!(bytes, layer);
    }
    assert_eq!(ctx.proxy.count("PutImage"), 2);
}

/// The tags ListImages lists in `repository`, sorted.
async fn tags_in(client: &mut EcrServiceClient<Channel>, repository: &str) -> Vec<String> {
    let listed = client
        .list_images(pb::ListImagesRequest {
            repository_name: repository.to_owned(),
            filter: Some(pb::ListImagesFilter {
                tag_status: pb::TagStatus::Tagged as i32,
                image_status: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut tags: Vec<_> = listed
        .image_ids
        .into_iter()
        .filter_map(|id| id.image_tag)
        .collect();
    tags.sort();
    tags
}

/// ListImages pages through a repository with max_results and next_token.
async fn list_images_pages(kind: Kind) {
    let (mut client, _ctx) = setup(kind).await;
    let name = unique_name("pages");
    create(&mut client, &name).await;
    let config = b"{}";
    push(&mut client, &name, config, MIB).await;
    for i in 0..3 {
        let layer = tar_layer(&format!("file-{i}"), &[i as u8; 10]);
        push(&mut client, &name, &layer, MIB).await;
        client
            .put_image(pb::PutImageRequest {
                repository_name: name.clone(),
                image_manifest: manifest(config, &layer),
                image_tag: Some(format!("t{i}")),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut next_token = None;
    for _ in 0..10 {
        let page = client
            .list_images(pb::ListImagesRequest {
                repository_name: name.clone(),
                max_results: Some(2),
                next_token: next_token.take(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        // moto ignores maxResults and answers one page with everything.
        if kind == Kind::Emulator {
            assert!(page.image_ids.len() <= 2);
        }
        seen.extend(page.image_ids.into_iter().filter_map(|id| id.image_tag));
        next_token = page.next_token;
        if next_token.is_none() {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, ["t0", "t1", "t2"]);
}

/// The unary upload actions and the repository policy, as ECR has them.
async fn unary_upload_and_policy_actions(kind: Kind) {
    let (mut client, _ctx) = setup(kind).await;
    let name = unique_name("unary");
    create(&mut client, &name).await;
    let upload = client
        .initiate_layer_upload(pb::InitiateLayerUploadRequest {
            repository_name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let upload_id = upload.upload_id.expect("upload id");
    assert_eq!(upload.part_size, Some(10 * MIB as i64));
    let blob = layer_bytes(1000, 1);
    let part = client
        .upload_layer_part(pb::UploadLayerPartRequest {
            repository_name: name.clone(),
            upload_id: upload_id.clone(),
            part_first_byte: Some(0),
            part_last_byte: Some(999),
            layer_part_blob: Bytes::from(blob.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(part.last_byte_received, Some(999));
    let completed = client
        .complete_layer_upload(pb::CompleteLayerUploadRequest {
            repository_name: name.clone(),
            upload_id,
            layer_digests: vec![sha256_digest(&blob)],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(completed.layer_digest, Some(sha256_digest(&blob)));

    let none = client
        .get_repository_policy(pb::GetRepositoryPolicyRequest {
            repository_name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(&none, Code::NotFound, "RepositoryPolicyNotFoundException");
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["ecr:BatchGetImage"]}]}"#;
    let set = client
        .set_repository_policy(pb::SetRepositoryPolicyRequest {
            repository_name: name.clone(),
            policy_text: policy.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.repository_name.as_deref(), Some(name.as_str()));
    let got = client
        .get_repository_policy(pb::GetRepositoryPolicyRequest {
            repository_name: name.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let parsed = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    assert_eq!(parsed(got.policy_text.as_deref().unwrap()), parsed(policy));
}

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

/// A client on a connection of its own that the test can cut, as a network
/// failure or a killed caller would.
async fn breakable_client(facade: &TestFacade) -> (EcrServiceClient<Channel>, impl FnOnce()) {
    let addr = facade.addr;
    let socket = Arc::new(Mutex::new(None::<std::net::TcpStream>));
    let kept = Arc::clone(&socket);
    let channel = tonic::transport::Endpoint::from_shared(facade.url())
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let kept = Arc::clone(&kept);
            async move {
                let stream = tokio::net::TcpStream::connect(addr).await?.into_std()?;
                *kept.lock().unwrap() = Some(stream.try_clone()?);
                let stream = tokio::net::TcpStream::from_std(stream)?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .unwrap();
    let cut = move || {
        let socket = socket.lock().unwrap().take().expect("connected");
        socket.shutdown(std::net::Shutdown::Both).unwrap();
    };
    (EcrServiceClient::new(channel), cut)
}

/// 64 MiB through PushLayer and PullLayer, in chunks of 1 MiB and 15 MiB,
/// and a small layer in chunks of 1 byte.
#[tokio::test]
async fn large_layers_and_odd_chunk_sizes_round_trip() {
    let (_emulator, facade) = facade_on_emulator(|_| {}).await;
    let mut client = facade.client().await;
    let name = unique_name("large");
    create(&mut client, &name).await;
    for (len, chunk, seed) in [
        (64 * MIB + 123, MIB, 10),
        (40 * MIB, 15 * MIB, 11),
        (20_000, 1, 12),
    ] {
        let layer = layer_bytes(len, seed);
        let pushed = push(&mut client, &name, &layer, chunk).await;
        assert_eq!(pushed.layer_digest, sha256_digest(&layer));
        assert_eq!(pushed.size, len as i64);
        publish(&mut client, &name, &[&layer]).await;
        let (total, pulled) = pull(&mut client, &name, &pushed.layer_digest, None)
            .await
            .unwrap();
        assert_eq!(total, len as i64);
        assert!(
            pulled == layer,
            "pulled bytes differ ({len} bytes in chunks of {chunk})"
        );
    }
}

/// Sends `bytes` as chunks of 1 MiB, until the push ends.
async fn send_chunks(tx: &tokio::sync::mpsc::Sender<pb::PushLayerRequest>, bytes: &[u8]) {
    for part in bytes.chunks(MIB) {
        let chunk = pb::PushLayerRequest {
            message: Some(Send::Chunk(Bytes::copy_from_slice(part))),
        };
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
}

/// Pushes `layer` into `name` on a connection of its own and cuts that
/// connection once ECR has committed `committed` bytes: the upload's id.
async fn push_broken_at(facade: &TestFacade, name: &str, layer: &[u8], committed: i64) -> String {
    let (mut breakable, cut) = breakable_client(facade).await;
    let (tx, mut answers) = open_push(&mut breakable, header(name)).await;
    let layer = layer.to_vec();
    let sender = tokio::spawn(async move {
        send_chunks(&tx, &layer).await;
        // Never half-closes: the stream breaks instead.
        std::future::pending::<()>().await;
    });
    let mut upload_id = String::new();
    while let Some(answer) = answers.message().await.unwrap() {
        let Some(Received::Progress(progress)) = answer.message else {
            panic!("a progress message");
        };
        upload_id = progress.upload_id;
        if progress.committed_size == committed {
            break;
        }
    }
    cut();
    assert!(
        answers.message().await.is_err(),
        "the cut connection fails the call"
    );
    sender.abort();
    upload_id
}

/// Resumes upload `upload_id` of `layer`: the committed size the resumed
/// push reported first, and its result.
async fn resume_push(
    client: &mut EcrServiceClient<Channel>,
    name: &str,
    layer: &[u8],
    upload_id: &str,
) -> (i64, pb::PushLayerResult) {
    let resumed_header = pb::PushLayerHeader {
        upload_id: Some(upload_id.to_owned()),
        expected_digest: Some(sha256_digest(layer)),
        total_size: Some(layer.len() as i64),
        ..header(name)
    };
    // The first answer says where to go on from; send the rest from there.
    let (tx, mut answers) = open_push(client, resumed_header).await;
    let Some(Received::Progress(first)) = answers.message().await.unwrap().unwrap().message else {
        panic!("the resumed push reports its progress first");
    };
    assert_eq!(first.upload_id, upload_id);
    let rest = layer[first.committed_size as usize..].to_vec();
    tokio::spawn(async move { send_chunks(&tx, &rest).await });
    let mut result = None;
    while let Some(answer) = answers.message().await.unwrap() {
        if let Some(Received::Result(r)) = answer.message {
            result = Some(r);
        }
    }
    (first.committed_size, result.expect("result"))
}

/// A push whose stream breaks after two parts resumes from ECR's committed
/// byte, and the facade's digest still covers every byte.
#[tokio::test]
async fn a_broken_push_resumes_from_the_committed_byte() {
    let (_emulator, facade) = facade_on_emulator(|_| {}).await;
    let mut client = facade.client().await;
    let name = unique_name("resume");
    create(&mut client, &name).await;
    let layer = layer_bytes(25 * MIB, 20);
    let upload_id = push_broken_at(&facade, &name, &layer, 20 * MIB as i64).await;
    let (committed, result) = resume_push(&mut client, &name, &layer, &upload_id).await;
    assert_eq!(committed, 20 * MIB as i64);
    assert_eq!(result.layer_digest, sha256_digest(&layer));
    publish(&mut client, &name, &[&layer]).await;
    let (_, pulled) = pull(&mut client, &name, &result.layer_digest, None)
        .await
        .unwrap();
    assert!(pulled == layer);
    // Resuming a finished (or unknown) upload is refused.
    let again = push_messages(
        &mut client,
        messages(
            pb::PushLayerHeader {
                upload_id: Some(upload_id),
                ..header(&name)
            },
            &[],
            1,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
}

/// A resumed pull from an offset gets exactly the rest; an offset past the
/// end is INVALID_ARGUMENT naming `offset`.
#[tokio::test]
async fn pulls_resume_from_an_offset() {
    let (_emulator, facade) = facade_on_emulator(|_| {}).await;
    let mut client = facade.client().await;
    let name = unique_name("offset");
    create(&mut client, &name).await;
    let layer = layer_bytes(3 * MIB + 17, 30);
    let digest = push(&mut client, &name, &layer, MIB).await.layer_digest;
    publish(&mut client, &name, &[&layer]).await;
    let (total, rest) = pull(&mut client, &name, &digest, Some(MIB as i64 + 5))
        .await
        .unwrap();
    assert_eq!(total, layer.len() as i64);
    assert!(rest == layer[MIB + 5..]);
    let past = pull(&mut client, &name, &digest, Some(layer.len() as i64))
        .await
        .unwrap_err();
    assert_eq!(past.code(), Code::InvalidArgument, "{past:?}");
    assert_eq!(violated_fields(&past), ["offset"]);
}

/// Pushes beyond --max-concurrent-pushes are refused with RetryInfo, and a
/// push whose caller cancels gives its slot back.
#[tokio::test]
async fn pushes_are_capped_and_cancelled_pushes_free_their_slot() {
    let (_emulator, facade) =
        facade_on_emulator(|b| b.settings.transfer.max_concurrent_pushes = 1).await;
    let mut client = facade.client().await;
    let name = unique_name("cap");
    create(&mut client, &name).await;
    let (mut breakable, cut) = breakable_client(&facade).await;
    let (tx, mut first) = open_push(&mut breakable, header(&name)).await;
    // The push is under way once its first bytes started the upload.
    tx.send(pb::PushLayerRequest {
        message: Some(Send::Chunk(Bytes::from_static(b"first bytes"))),
    })
    .await
    .unwrap();
    assert!(matches!(
        first.message().await.unwrap().unwrap().message,
        Some(Received::Progress(_))
    ));
    assert_eq!(facade.facade.transfer().free_push_slots(), 0);
    let refused = push_messages(&mut client, messages(header(&name), b"x", 1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.get_details_retry_info().is_some());
    // The caller goes away mid-stream (its connection is cut): the slot
    // comes back; tx stays alive, so this is no clean half-close.
    cut();
    assert!(first.message().await.is_err());
    for _ in 0..200 {
        if facade.facade.transfer().free_push_slots() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(facade.facade.transfer().free_push_slots(), 1);
    push(&mut client, &name, b"after", 1).await;
    drop(tx);
}

/// Bytes that do not hash to the layer's digest (the emulator corrupts one
/// byte of the download) end the pull with DATA_LOSS, never OK; a resumed
/// pull of a corrupted download cannot be checked by the facade and is the
/// caller's to verify.
#[tokio::test]
async fn corrupted_downloads_end_with_data_loss() {
    let (emulator, facade) = facade_on_emulator(|_| {}).await;
    let mut client = facade.client().await;
    let name = unique_name("corrupt");
    create(&mut client, &name).await;
    let layer = layer_bytes(2 * MIB + 3, 40);
    let digest = push(&mut client, &name, &layer, MIB).await.layer_digest;
    publish(&mut client, &name, &[&layer]).await;
    emulator
        .set_fault(
            "GetDownloadUrlForLayer",
            ecr_facade::emulator::FaultSpec {
                corrupt_downloads: true,
                ..Default::default()
            },
        )
        .unwrap();
    let status = pull(&mut client, &name, &digest, None).await.unwrap_err();
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").reason,
        "LAYER_CORRUPT"
    );
    emulator
        .set_fault("GetDownloadUrlForLayer", Default::default())
        .unwrap();
    let (_, pulled) = pull(&mut client, &name, &digest, None).await.unwrap();
    assert!(pulled == layer, "without the fault the same pull is whole");
}
