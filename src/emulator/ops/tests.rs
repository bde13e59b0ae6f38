//! The operations driven through `dispatch` with JSON bodies, as the wire
//! delivers them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::*;
use crate::emulator::EmulatorConfig;
use crate::emulator::shared::Shared;
use std::sync::Arc;

pub(super) const REPO: &str = "team/app";

pub(super) fn emulator(max_blob_bytes: u64) -> Arc<Shared> {
    let config = EmulatorConfig {
        max_blob_bytes,
        ..Default::default()
    };
    Shared::new(config, "127.0.0.1:9".parse().unwrap()).unwrap()
}

pub(super) fn call(shared: &Shared, op: Operation, body: Value) -> Result<Value, ApiError> {
    let ctx = Ctx {
        shared,
        base_url: "http://emulator:1",
    };
    dispatch(&ctx, op, body.to_string().as_bytes())
}

pub(super) fn ok(shared: &Shared, op: Operation, body: Value) -> Value {
    call(shared, op, body).unwrap_or_else(|err| panic!("{op}: {err:?}"))
}

pub(super) fn code(shared: &Shared, op: Operation, body: Value) -> &'static str {
    call(shared, op, body).expect_err("an error").code()
}

pub(super) fn create(shared: &Shared, name: &str, mutability: &str) {
    let body = json!({ "repositoryName": name, "imageTagMutability": mutability });
    ok(shared, Operation::CreateRepository, body);
}

/// InitiateLayerUpload in `repo`: the upload id.
fn initiate(shared: &Shared, repo: &str) -> Value {
    ok(
        shared,
        Operation::InitiateLayerUpload,
        json!({ "repositoryName": repo }),
    )["uploadId"]
        .clone()
}

pub(super) fn upload(shared: &Shared, repo: &str, bytes: &[u8]) -> String {
    let id = initiate(shared, repo);
    ok(
        shared,
        Operation::UploadLayerPart,
        part(repo, &id, 0, bytes),
    );
    let digest = sha256_digest(bytes);
    let body = json!({ "repositoryName": repo, "uploadId": id, "layerDigests": [digest] });
    ok(shared, Operation::CompleteLayerUpload, body)["layerDigest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn part(repo: &str, id: &Value, first: usize, bytes: &[u8]) -> Value {
    json!({
        "repositoryName": repo,
        "uploadId": id,
        "partFirstByte": first,
        "partLastByte": first + bytes.len() - 1,
        "layerPartBlob": STANDARD.encode(bytes),
    })
}

pub(super) fn manifest(config: &str, layers: &[&str]) -> String {
    let layers: Vec<Value> = layers
        .iter()
        .map(|d| json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": 1 }))
        .collect();
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1 },
        "layers": layers,
    })
    .to_string()
}

pub(super) fn put(
    shared: &Shared,
    repo: &str,
    manifest: &str,
    tag: Option<&str>,
) -> Result<Value, ApiError> {
    let mut body = json!({ "repositoryName": repo, "imageManifest": manifest });
    if let Some(tag) = tag {
        body["imageTag"] = json!(tag);
    }
    call(shared, Operation::PutImage, body)
}

/// A repository with config + two layers uploaded; returns their digests.
pub(super) fn pushed_blobs(shared: &Shared, mutability: &str) -> (String, String, String) {
    create(shared, REPO, mutability);
    (
        upload(shared, REPO, b"{}"),
        upload(shared, REPO, b"layer-one"),
        upload(shared, REPO, b"layer-two!"),
    )
}

#[test]
fn created_repositories_have_ecr_defaults() {
    let shared = emulator(1 << 20);
    let repo = ok(
        &shared,
        Operation::CreateRepository,
        json!({ "repositoryName": REPO }),
    )["repository"]
        .clone();
    assert_eq!(
        repo["repositoryArn"],
        "arn:aws:ecr:us-east-1:123456789012:repository/team/app"
    );
    assert_eq!(
        repo["repositoryUri"],
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app"
    );
    assert_eq!(repo["imageTagMutability"], "MUTABLE");
    assert_eq!(repo["imageScanningConfiguration"]["scanOnPush"], false);
    assert_eq!(
        repo["encryptionConfiguration"],
        json!({ "encryptionType": "AES256" })
    );
    assert!(repo["createdAt"].as_f64().unwrap() > 1.6e9);
    let again = json!({ "repositoryName": REPO });
    assert_eq!(
        code(&shared, Operation::CreateRepository, again),
        "RepositoryAlreadyExistsException"
    );
    let elsewhere = json!({ "repositoryName": REPO, "registryId": "210987654321" });
    assert_eq!(
        ok(&shared, Operation::CreateRepository, elsewhere)["repository"]["registryId"],
        "210987654321"
    );
}

#[test]
fn invalid_input_is_answered_as_ecr_does() {
    let shared = emulator(1 << 20);
    let err = call(
        &shared,
        Operation::CreateRepository,
        json!({ "repositoryName": "a" }),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must have length greater than or equal to 2'"
    );
    let err = call(&shared, Operation::ListImages, json!({})).unwrap_err();
    assert!(
        err.to_string()
            .contains("'repositoryName' failed to satisfy constraint: 'must not be null'")
    );
    let bad_mode = json!({ "repositoryName": REPO, "imageTagMutability": "SOMETIMES" });
    assert_eq!(
        code(&shared, Operation::CreateRepository, bad_mode),
        "InvalidParameterException"
    );
    let exclusion_without_filters =
        json!({ "repositoryName": REPO, "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION" });
    assert_eq!(
        code(
            &shared,
            Operation::CreateRepository,
            exclusion_without_filters
        ),
        "InvalidParameterException"
    );
    let too_many_tags: Vec<Value> = (0..51)
        .map(|i| json!({ "Key": format!("k{i}"), "Value": "v" }))
        .collect();
    let body = json!({ "repositoryName": REPO, "tags": too_many_tags });
    assert_eq!(
        code(&shared, Operation::CreateRepository, body),
        "TooManyTagsException"
    );
    let reserved = json!({ "repositoryName": REPO, "tags": [{ "Key": "aws:x", "Value": "v" }] });
    assert_eq!(
        code(&shared, Operation::CreateRepository, reserved),
        "InvalidTagParameterException"
    );
    let wrong_type = json!({ "repositoryName": 7 });
    assert_eq!(
        code(&shared, Operation::CreateRepository, wrong_type),
        "SerializationException"
    );
    let ctx = Ctx {
        shared: &shared,
        base_url: "http://e",
    };
    assert_eq!(
        dispatch(&ctx, Operation::ListImages, b"[]")
            .unwrap_err()
            .code(),
        "SerializationException"
    );
    assert_eq!(
        dispatch(&ctx, Operation::DescribeRepositories, b"").unwrap()["repositories"],
        json!([])
    );
}

#[test]
fn parts_must_be_contiguous() {
    let shared = emulator(1 << 20);
    create(&shared, REPO, "MUTABLE");
    let id = initiate(&shared, REPO);
    let answer = ok(
        &shared,
        Operation::UploadLayerPart,
        part(REPO, &id, 0, b"abc"),
    );
    assert_eq!(answer["lastByteReceived"], 2);
    let gap = call(
        &shared,
        Operation::UploadLayerPart,
        part(REPO, &id, 5, b"def"),
    )
    .unwrap_err();
    assert_eq!(gap.body()["lastValidByteReceived"], 2);
    assert_eq!(gap.body()["uploadId"], id);
    let mut wrong_end = part(REPO, &id, 3, b"def");
    wrong_end["partLastByte"] = json!(9);
    assert_eq!(
        code(&shared, Operation::UploadLayerPart, wrong_end),
        "InvalidLayerPartException"
    );
    ok(
        &shared,
        Operation::UploadLayerPart,
        part(REPO, &id, 3, b"def"),
    );
    let unknown = part(
        REPO,
        &json!("0d5f1c2e-1a2b-4c3d-8e9f-0123456789ab"),
        0,
        b"x",
    );
    assert_eq!(
        code(&shared, Operation::UploadLayerPart, unknown),
        "UploadNotFoundException"
    );

    let wrong =
        json!({ "repositoryName": REPO, "uploadId": id, "layerDigests": [sha256_digest(b"abc")] });
    assert_eq!(
        code(&shared, Operation::CompleteLayerUpload, wrong.clone()),
        "InvalidLayerException"
    );
    // The failed attempt consumed the upload.
    assert_eq!(
        code(&shared, Operation::CompleteLayerUpload, wrong),
        "UploadNotFoundException"
    );
    assert_eq!(shared.store().space.used(), 0);
}

#[test]
fn completion_needs_parts_and_new_bytes() {
    let shared = emulator(1 << 20);
    create(&shared, REPO, "MUTABLE");
    let id = initiate(&shared, REPO);
    let body =
        json!({ "repositoryName": REPO, "uploadId": id, "layerDigests": [sha256_digest(b"")] });
    assert_eq!(
        code(&shared, Operation::CompleteLayerUpload, body),
        "EmptyUploadException"
    );
    let digest = upload(&shared, REPO, b"bytes");
    assert_eq!(digest, sha256_digest(b"bytes"));
    let id = initiate(&shared, REPO);
    ok(
        &shared,
        Operation::UploadLayerPart,
        part(REPO, &id, 0, b"bytes"),
    );
    let body = json!({ "repositoryName": REPO, "uploadId": id, "layerDigests": [digest] });
    assert_eq!(
        code(&shared, Operation::CompleteLayerUpload, body),
        "LayerAlreadyExistsException"
    );
    // Same bytes in a second repository are stored once.
    create(&shared, "team/other", "MUTABLE");
    upload(&shared, "team/other", b"bytes");
    assert_eq!(shared.store().space.used(), 5);
}

#[test]
fn the_blob_budget_is_enforced() {
    let shared = emulator(8);
    create(&shared, REPO, "MUTABLE");
    let id = initiate(&shared, REPO);
    ok(
        &shared,
        Operation::UploadLayerPart,
        part(REPO, &id, 0, b"12345"),
    );
    let over = part(REPO, &id, 5, b"6789");
    assert_eq!(
        code(&shared, Operation::UploadLayerPart, over),
        "LimitExceededException"
    );
    let del = json!({ "repositoryName": REPO, "force": true });
    ok(&shared, Operation::DeleteRepository, del);
    assert_eq!(shared.store().space.used(), 0);
}

#[test]
fn put_image_checks_digest_layers_and_tags() {
    let shared = emulator(1 << 20);
    let (config, one, two) = pushed_blobs(&shared, "MUTABLE");
    let text = manifest(&config, &[&one, &two]);
    let missing = manifest(&config, &[&sha256_digest(b"never uploaded")]);
    assert_eq!(
        put(&shared, REPO, &missing, None).unwrap_err().code(),
        "LayersNotFoundException"
    );
    let mut mismatch = json!({ "repositoryName": REPO, "imageManifest": text, "imageDigest": sha256_digest(b"x") });
    assert_eq!(
        code(&shared, Operation::PutImage, mismatch.clone()),
        "ImageDigestDoesNotMatchException"
    );
    mismatch["imageDigest"] = json!(sha256_digest(text.as_bytes()));
    mismatch["imageTag"] = json!("v1");
    let image = ok(&shared, Operation::PutImage, mismatch)["image"].clone();
    assert_eq!(
        image["imageId"]["imageDigest"],
        sha256_digest(text.as_bytes())
    );
    assert_eq!(
        image["imageManifestMediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        put(&shared, REPO, &text, Some("v1")).unwrap_err().code(),
        "ImageAlreadyExistsException"
    );
    assert_eq!(
        put(&shared, REPO, &text, None).unwrap_err().code(),
        "ImageAlreadyExistsException"
    );
    put(&shared, REPO, &text, Some("latest")).unwrap();

    // A mutable tag moves; the image it leaves stays, untagged.
    let other = manifest(&config, &[&one]);
    put(&shared, REPO, &other, Some("latest")).unwrap();
    let details = ok(
        &shared,
        Operation::DescribeImages,
        json!({ "repositoryName": REPO }),
    )["imageDetails"]
        .clone();
    assert_eq!(details[0]["imageTags"], json!(["v1"]));
    assert_eq!(details[0]["imageSizeInBytes"], 9 + 10);
    assert_eq!(
        details[0]["artifactMediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(details[1]["imageTags"], json!(["latest"]));
    put(&shared, REPO, &other, Some("v1")).unwrap();
    let details = ok(
        &shared,
        Operation::DescribeImages,
        json!({ "repositoryName": REPO }),
    )["imageDetails"]
        .clone();
    assert!(details[0].get("imageTags").is_none());
}

#[test]
fn immutable_tags_do_not_move() {
    let shared = emulator(1 << 20);
    let (config, one, two) = pushed_blobs(&shared, "IMMUTABLE");
    put(&shared, REPO, &manifest(&config, &[&one]), Some("v1")).unwrap();
    let err = put(&shared, REPO, &manifest(&config, &[&two]), Some("v1")).unwrap_err();
    assert_eq!(err.code(), "ImageTagAlreadyExistsException");
    // A second tag for the same image is fine.
    put(&shared, REPO, &manifest(&config, &[&one]), Some("v1.0")).unwrap();
}

#[test]
fn batch_calls_report_per_item_failures() {
    let shared = emulator(1 << 20);
    let (config, one, two) = pushed_blobs(&shared, "MUTABLE");
    let first = manifest(&config, &[&one]);
    let first_digest = sha256_digest(first.as_bytes());
    put(&shared, REPO, &first, Some("a")).unwrap();
    put(&shared, REPO, &first, Some("b")).unwrap();
    put(&shared, REPO, &manifest(&config, &[&two]), Some("c")).unwrap();
    let ids = json!([
        { "imageTag": "a" },
        { "imageDigest": first_digest },
        {},
        { "imageDigest": "nope" },
        { "imageTag": "zzz" },
        { "imageTag": "c", "imageDigest": first_digest },
    ]);
    let got = ok(
        &shared,
        Operation::BatchGetImage,
        json!({ "repositoryName": REPO, "imageIds": ids }),
    );
    assert_eq!(got["images"].as_array().unwrap().len(), 2);
    assert_eq!(
        got["images"][0]["imageId"],
        json!({ "imageDigest": first_digest, "imageTag": "a" })
    );
    let codes: Vec<&str> = got["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["failureCode"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "MissingDigestAndTag",
            "InvalidImageDigest",
            "ImageNotFound",
            "ImageTagDoesNotMatchDigest"
        ]
    );

    // By digest ECR translates nothing (translations by tag: media_tests).
    let accepted = json!({ "repositoryName": REPO, "imageIds": [{ "imageDigest": first_digest }],
        "acceptedMediaTypes": ["application/vnd.docker.distribution.manifest.v2+json"] });
    let got = ok(&shared, Operation::BatchGetImage, accepted);
    assert_eq!(got["failures"][0]["failureCode"], "ImageNotFound");

    // By tag: only that tag goes while others remain.
    let del = json!({ "repositoryName": REPO, "imageIds": [{ "imageTag": "a" }] });
    let deleted = ok(&shared, Operation::BatchDeleteImage, del);
    assert_eq!(
        deleted["imageIds"],
        json!([{ "imageDigest": first_digest, "imageTag": "a" }])
    );
    // By digest: the image with all its remaining tags.
    let del = json!({ "repositoryName": REPO, "imageIds": [{ "imageDigest": first_digest }, { "imageTag": "a" }] });
    let deleted = ok(&shared, Operation::BatchDeleteImage, del);
    assert_eq!(
        deleted["imageIds"],
        json!([{ "imageDigest": first_digest, "imageTag": "b" }])
    );
    assert_eq!(deleted["failures"][0]["failureCode"], "ImageNotFound");
    // The last tag takes the image with it.
    let del = json!({ "repositoryName": REPO, "imageIds": [{ "imageTag": "c" }] });
    ok(&shared, Operation::BatchDeleteImage, del);
    let listed = ok(
        &shared,
        Operation::ListImages,
        json!({ "repositoryName": REPO }),
    );
    assert_eq!(listed["imageIds"], json!([]));
    assert_eq!(shared.store().space.used(), 2 + 9 + 10);
}

#[test]
fn listings_page_and_filter() {
    let shared = emulator(1 << 20);
    for i in 0..5 {
        create(&shared, &format!("repo-{i}"), "MUTABLE");
    }
    let mut names = Vec::new();
    let mut body = json!({ "maxResults": 2 });
    loop {
        let page = ok(&shared, Operation::DescribeRepositories, body.clone());
        names.extend(
            page["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["repositoryName"].clone()),
        );
        match page.get("nextToken") {
            Some(token) => body["nextToken"] = token.clone(),
            None => break,
        }
    }
    assert_eq!(names, ["repo-0", "repo-1", "repo-2", "repo-3", "repo-4"]);
    let forged = json!({ "nextToken": "abc.def" });
    assert_eq!(
        code(&shared, Operation::DescribeRepositories, forged),
        "InvalidParameterException"
    );
    let combined = json!({ "repositoryNames": ["repo-1"], "maxResults": 1 });
    assert_eq!(
        code(&shared, Operation::DescribeRepositories, combined),
        "InvalidParameterException"
    );
    let missing = json!({ "repositoryNames": ["repo-1", "repo-9"] });
    assert_eq!(
        code(&shared, Operation::DescribeRepositories, missing),
        "RepositoryNotFoundException"
    );

    let (config, one, _) = pushed_blobs(&shared, "MUTABLE");
    put(&shared, REPO, &manifest(&config, &[&one]), None).unwrap();
    put(&shared, REPO, &manifest(&config, &[]), Some("t")).unwrap();
    let untagged = json!({ "repositoryName": REPO, "filter": { "tagStatus": "UNTAGGED" } });
    let listed = ok(&shared, Operation::ListImages, untagged);
    assert_eq!(listed["imageIds"].as_array().unwrap().len(), 1);
    assert!(listed["imageIds"][0].get("imageTag").is_none());
    let archived = json!({ "repositoryName": REPO, "filter": { "imageStatus": "ARCHIVED" } });
    assert_eq!(
        ok(&shared, Operation::DescribeImages, archived)["imageDetails"],
        json!([])
    );
    let page = ok(
        &shared,
        Operation::ListImages,
        json!({ "repositoryName": REPO, "maxResults": 1 }),
    );
    let token = page["nextToken"].clone();
    let wrong_scope = json!({ "repositoryName": "repo-1", "nextToken": token });
    assert_eq!(
        code(&shared, Operation::ListImages, wrong_scope),
        "InvalidParameterException"
    );
    let next = ok(
        &shared,
        Operation::ListImages,
        json!({ "repositoryName": REPO, "nextToken": token }),
    );
    assert_eq!(next["imageIds"][0]["imageTag"], "t");
    assert!(next.get("nextToken").is_none());
}

#[test]
fn downloads_need_a_referencing_image() {
    let shared = emulator(1 << 20);
    let (config, one, _) = pushed_blobs(&shared, "MUTABLE");
    let body = json!({ "repositoryName": REPO, "layerDigest": one });
    assert_eq!(
        code(&shared, Operation::GetDownloadUrlForLayer, body.clone()),
        "LayerInaccessibleException"
    );
    let unknown = json!({ "repositoryName": REPO, "layerDigest": sha256_digest(b"?") });
    assert_eq!(
        code(&shared, Operation::GetDownloadUrlForLayer, unknown),
        "LayersNotFoundException"
    );
    put(&shared, REPO, &manifest(&config, &[&one]), Some("v1")).unwrap();
    let url = ok(&shared, Operation::GetDownloadUrlForLayer, body)["downloadUrl"].clone();
    let prefix = format!("http://emulator:1/_emulator/blobs/123456789012/{one}/{REPO}?expires=");
    assert!(url.as_str().unwrap().starts_with(&prefix), "{url}");

    let check = json!({ "repositoryName": REPO, "layerDigests": [one, "", sha256_digest(b"?")] });
    let checked = ok(&shared, Operation::BatchCheckLayerAvailability, check);
    assert_eq!(checked["layers"][0]["layerSize"], 9);
    assert_eq!(
        checked["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(checked["failures"][0]["failureCode"], "InvalidLayerDigest");
    assert_eq!(checked["failures"][1]["failureCode"], "MissingLayerDigest");
}

#[test]
fn policies_and_deletion() {
    let shared = emulator(1 << 20);
    let (config, one, _) = pushed_blobs(&shared, "MUTABLE");
    let get = json!({ "repositoryName": REPO });
    assert_eq!(
        code(&shared, Operation::GetRepositoryPolicy, get.clone()),
        "RepositoryPolicyNotFoundException"
    );
    // The two policies of issue 10 are refused as ECR refuses them.
    for bad in [
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*","Action":"ecr:*"}]}"#,
    ] {
        let set = json!({ "repositoryName": REPO, "policyText": bad });
        let err = call(&shared, Operation::SetRepositoryPolicy, set).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'"
        );
    }
    let too_long = format!(r#"{{"Statement":[],"Sid":"{}"}}"#, "x".repeat(10240));
    let set = json!({ "repositoryName": REPO, "policyText": too_long });
    assert!(
        call(&shared, Operation::SetRepositoryPolicy, set)
            .unwrap_err()
            .to_string()
            .contains("'policyText' failed to satisfy constraint: 'must have length less than or equal to 10240'")
    );
    assert_eq!(
        code(&shared, Operation::GetRepositoryPolicy, get.clone()),
        "RepositoryPolicyNotFoundException"
    );
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}"#;
    let set = json!({ "repositoryName": REPO, "policyText": policy });
    ok(&shared, Operation::SetRepositoryPolicy, set);
    assert_eq!(
        ok(&shared, Operation::GetRepositoryPolicy, get.clone())["policyText"],
        policy
    );
    assert_eq!(
        ok(&shared, Operation::DeleteRepositoryPolicy, get.clone())["policyText"],
        policy
    );
    assert_eq!(
        code(&shared, Operation::DeleteRepositoryPolicy, get.clone()),
        "RepositoryPolicyNotFoundException"
    );
    let bad = json!({ "repositoryName": REPO, "policyText": "not json" });
    assert_eq!(
        code(&shared, Operation::SetRepositoryPolicy, bad),
        "InvalidParameterException"
    );

    put(&shared, REPO, &manifest(&config, &[&one]), Some("v1")).unwrap();
    assert_eq!(
        code(&shared, Operation::DeleteRepository, get.clone()),
        "RepositoryNotEmptyException"
    );
    let forced = json!({ "repositoryName": REPO, "force": true });
    assert_eq!(
        ok(&shared, Operation::DeleteRepository, forced)["repository"]["repositoryName"],
        REPO
    );
    assert_eq!(
        code(&shared, Operation::DeleteRepository, get),
        "RepositoryNotFoundException"
    );
    assert_eq!(shared.store().space.used(), 0);
}

#[test]
fn authorization_tokens_decode_to_aws_credentials() {
    let shared = emulator(1 << 20);
    let body = json!({ "registryIds": ["123456789012", "210987654321"] });
    let data = ok(&shared, Operation::GetAuthorizationToken, body)["authorizationData"].clone();
    assert_eq!(data.as_array().unwrap().len(), 2);
    assert_eq!(
        data[1]["proxyEndpoint"],
        "https://210987654321.dkr.ecr.us-east-1.amazonaws.com"
    );
    let token = STANDARD
        .decode(data[0]["authorizationToken"].as_str().unwrap())
        .unwrap();
    let token = String::from_utf8(token).unwrap();
    assert!(token.starts_with("AWS:") && token.len() > 40, "{token}");
    let expires = data[0]["expiresAt"].as_f64().unwrap();
    let in_twelve_hours = crate::emulator::clock::now_secs() + 12.0 * 3600.0;
    assert!((expires - in_twelve_hours).abs() < 60.0);
    let eleven: Vec<String> = (0..11).map(|i| format!("{i:012}")).collect();
    let too_many = json!({ "registryIds": eleven });
    assert_eq!(
        code(&shared, Operation::GetAuthorizationToken, too_many),
        "InvalidParameterException"
    );
}

#[test]
fn the_demo_seed_is_a_complete_image() {
    let config = EmulatorConfig {
        seed_demo: true,
        ..Default::default()
    };
    let shared = crate::emulator::seeded_state(config, "127.0.0.1:9".parse().unwrap()).unwrap();
    let body = json!({ "repositoryName": "demo/hello", "imageIds": [{ "imageTag": "latest" }] });
    let image = ok(&shared, Operation::BatchGetImage, body)["images"][0].clone();
    let manifest: Value = serde_json::from_str(image["imageManifest"].as_str().unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].clone();
    let url = json!({ "repositoryName": "demo/hello", "layerDigest": layer });
    ok(&shared, Operation::GetDownloadUrlForLayer, url);
}
