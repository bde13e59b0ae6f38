//! Layers and images that go up and come back: push, tag, list and pull;
//! ListImages pages; the unary upload and policy actions; large layers in
//! odd chunk sizes.

use super::*;

against_both!(
    push_tag_list_and_pull_an_image,
    list_images_pages,
    unary_upload_and_policy_actions,
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
