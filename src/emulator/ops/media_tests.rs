//! Media types across operations: the size DescribeImages gives a manifest
//! list or index, and BatchGetImage's translations for `acceptedMediaTypes`.

use serde_json::{Value, json};

use super::convert::{DOCKER_V2, OCI_MANIFEST};
use super::tests::{REPO, manifest, ok, pushed_blobs, put};
use super::*;

const DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// `manifest(config, layers)` as Docker v2 schema 2.
fn docker_manifest(config: &str, layers: &[&str]) -> String {
    let mut doc: Value = serde_json::from_str(&manifest(config, layers)).unwrap();
    doc["mediaType"] = json!(DOCKER_V2);
    doc["config"]["mediaType"] = json!("application/vnd.docker.container.image.v1+json");
    for layer in doc["layers"].as_array_mut().unwrap() {
        layer["mediaType"] = json!("application/vnd.docker.image.rootfs.diff.tar.gzip");
    }
    doc.to_string()
}

fn list_of(media_type: &str, children: &[&str]) -> String {
    let manifests: Vec<Value> = children
        .iter()
        .map(|child| {
            json!({
                "mediaType": serde_json::from_str::<Value>(child).unwrap()["mediaType"],
                "digest": sha256_digest(child.as_bytes()),
                "size": child.len(),
                "platform": { "architecture": "amd64", "os": "linux" },
            })
        })
        .collect();
    json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": manifests }).to_string()
}

fn size_of(shared: &Shared, digest: &str) -> Value {
    let body = json!({ "repositoryName": REPO, "imageIds": [{ "imageDigest": digest }] });
    ok(shared, Operation::DescribeImages, body)["imageDetails"][0]["imageSizeInBytes"].clone()
}

#[test]
fn a_list_is_as_large_as_its_largest_manifest() {
    let shared = super::tests::emulator(1 << 20);
    let (config, one, two) = pushed_blobs(&shared, "MUTABLE");
    // Layer sizes: "layer-one" 9 bytes, "layer-two!" 10 bytes.
    let small = manifest(&config, &[&one]);
    let large = docker_manifest(&config, &[&one, &two]);
    put(&shared, REPO, &small, Some("small")).unwrap();
    put(&shared, REPO, &large, Some("large")).unwrap();
    assert_eq!(size_of(&shared, &sha256_digest(small.as_bytes())), 9);
    assert_eq!(size_of(&shared, &sha256_digest(large.as_bytes())), 19);
    for list_type in [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ] {
        let list = list_of(list_type, &[&small, &large]);
        put(&shared, REPO, &list, None).unwrap();
        assert_eq!(size_of(&shared, &sha256_digest(list.as_bytes())), 19);
    }
    let only_small = list_of("application/vnd.oci.image.index.v1+json", &[&small]);
    put(&shared, REPO, &only_small, None).unwrap();
    assert_eq!(size_of(&shared, &sha256_digest(only_small.as_bytes())), 9);
}

fn get(shared: &Shared, id: Value, accepted: &[&str]) -> Value {
    let body = json!({ "repositoryName": REPO, "imageIds": [id], "acceptedMediaTypes": accepted });
    ok(shared, Operation::BatchGetImage, body)
}

fn failure_code(answer: &Value) -> &str {
    assert_eq!(answer["images"], json!([]), "{answer}");
    answer["failures"][0]["failureCode"].as_str().unwrap()
}

/// A repository holding a two-layer Docker v2 image tagged `docker`: its
/// config and layer digests, and its manifest.
fn docker_image(shared: &Shared) -> (String, String, String, String) {
    let (config, one, two) = pushed_blobs(shared, "MUTABLE");
    let docker = docker_manifest(&config, &[&one, &two]);
    put(shared, REPO, &docker, Some("docker")).unwrap();
    (config, one, two, docker)
}

#[test]
fn a_docker_image_pulled_by_tag_as_oci_is_translated() {
    let shared = super::tests::emulator(1 << 20);
    let (config, one, two, docker) = docker_image(&shared);
    let got = get(&shared, json!({ "imageTag": "docker" }), &[OCI_MANIFEST]);
    let image = &got["images"][0];
    assert_eq!(image["imageManifestMediaType"], OCI_MANIFEST);
    let text = image["imageManifest"].as_str().unwrap();
    let translated: Value = serde_json::from_str(text).unwrap();
    assert_eq!(translated["mediaType"], OCI_MANIFEST);
    assert_eq!(
        translated["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(translated["config"]["digest"], config);
    let layers: Vec<_> = translated["layers"].as_array().unwrap().iter().collect();
    assert_eq!(layers.len(), 2);
    for (layer, digest) in layers.iter().zip([&one, &two]) {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(&layer["digest"], digest);
    }
    assert_eq!(
        image["imageId"],
        json!({ "imageDigest": sha256_digest(text.as_bytes()), "imageTag": "docker" })
    );
    assert_ne!(
        sha256_digest(text.as_bytes()),
        sha256_digest(docker.as_bytes())
    );
}

#[test]
fn the_stored_type_wins_and_nothing_is_translated_by_digest_or_to_schema1() {
    let shared = super::tests::emulator(1 << 20);
    let (_, _, _, docker) = docker_image(&shared);
    // An accepted stored type wins over any translation.
    let got = get(
        &shared,
        json!({ "imageTag": "docker" }),
        &[OCI_MANIFEST, DOCKER_V2],
    );
    assert_eq!(got["images"][0]["imageManifest"], docker);
    // By digest ECR translates nothing.
    let by_digest = json!({ "imageDigest": sha256_digest(docker.as_bytes()) });
    assert_eq!(
        failure_code(&get(&shared, by_digest, &[OCI_MANIFEST])),
        "ImageNotFound"
    );
    // Schema 1 is not produced (see the README): ImageNotFound.
    let v1 = get(&shared, json!({ "imageTag": "docker" }), &[DOCKER_V1]);
    assert_eq!(failure_code(&v1), "ImageNotFound");
}

#[test]
fn an_oci_image_is_translated_back_and_a_list_never_is() {
    let shared = super::tests::emulator(1 << 20);
    let (config, one, _, _) = docker_image(&shared);
    // OCI asked for as Docker v2 schema 2 only, by tag: translated back.
    let oci = manifest(&config, &[&one]);
    put(&shared, REPO, &oci, Some("oci")).unwrap();
    let got = get(
        &shared,
        json!({ "imageTag": "oci" }),
        &[DOCKER_V1, DOCKER_V2],
    );
    let image = &got["images"][0];
    assert_eq!(image["imageManifestMediaType"], DOCKER_V2);
    let translated: Value = serde_json::from_str(image["imageManifest"].as_str().unwrap()).unwrap();
    assert_eq!(
        translated["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar"
    );
    // A list is never translated.
    let list = list_of("application/vnd.oci.image.index.v1+json", &[&oci]);
    put(&shared, REPO, &list, Some("list")).unwrap();
    let got = get(
        &shared,
        json!({ "imageTag": "list" }),
        &[OCI_MANIFEST, DOCKER_V2],
    );
    assert_eq!(failure_code(&got), "ImageNotFound");
    // Translations are answers, not new images.
    let listed = ok(
        &shared,
        Operation::DescribeImages,
        json!({ "repositoryName": REPO }),
    );
    assert_eq!(listed["imageDetails"].as_array().unwrap().len(), 3);
}
