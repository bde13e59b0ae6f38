//! The manifest conversions ECR documents for pulls by tag ("Amazon ECR image
//! manifest conversion" in the ECR user guide): an image pushed as Docker
//! image manifest v2 schema 2 is translated to OCI for a client that accepts
//! only OCI, and an image pushed as OCI to Docker v2 schema 2 for a client
//! that accepts only that. Both are media-type rewrites: the manifest's own
//! `mediaType`, its config's and each layer's become their counterparts in
//! the other format; digests, sizes and everything else stay.
//!
//! Not done: schema 2 → schema 1 (ECR documents it, but schema 1 rebuilds
//! the image history from the config blob and chains v1 layer ids — the
//! emulator answers `ImageNotFound` instead, see the README), and anything
//! ECR documents as "no translation available" (schema 1 → anything, OCI →
//! schema 1, lists and indexes, pulls by digest). An OCI manifest that is not
//! a plain image (an `artifactType` or `subject`, a config other than the
//! OCI image config, a layer type Docker has no name for) is not translated.

use serde_json::Value;

/// Docker image manifest v2 schema 2.
pub const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Config media types: (Docker, OCI).
const CONFIG: (&str, &str) = (
    "application/vnd.docker.container.image.v1+json",
    "application/vnd.oci.image.config.v1+json",
);

/// Layer media types: (Docker, OCI). The Docker names past the spec's
/// `tar.gzip` pair are the ones containerd and BuildKit write.
const LAYERS: [(&str, &str); 5] = [
    (
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ),
    (
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.oci.image.layer.v1.tar",
    ),
    (
        "application/vnd.docker.image.rootfs.foreign.diff.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar.zstd",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    ),
];

/// The manifest `text` (of media type `from`) translated to `to`, when ECR
/// documents that translation and the manifest allows it.
pub fn convert(text: &str, from: &str, to: &str) -> Option<String> {
    let to_oci = match (from, to) {
        (DOCKER_V2, OCI_MANIFEST) => true,
        (OCI_MANIFEST, DOCKER_V2) => false,
        _ => return None,
    };
    let mut doc: Value = serde_json::from_str(text).ok()?;
    let manifest = doc.as_object_mut()?;
    if !to_oci && (manifest.contains_key("artifactType") || manifest.contains_key("subject")) {
        return None;
    }
    manifest.insert("mediaType".into(), Value::String(to.to_owned()));
    rename(manifest.get_mut("config")?, &[CONFIG], to_oci)?;
    for layer in manifest.get_mut("layers")?.as_array_mut()? {
        rename(layer, &LAYERS, to_oci)?;
    }
    serde_json::to_string(&doc).ok()
}

/// Rewrites a descriptor's `mediaType` through `pairs` (Docker, OCI); `None`
/// when it has no counterpart.
fn rename(descriptor: &mut Value, pairs: &[(&str, &str)], to_oci: bool) -> Option<()> {
    let media_type = descriptor.get("mediaType")?.as_str()?;
    let renamed = pairs.iter().find_map(|&(docker, oci)| match to_oci {
        true => (media_type == docker).then_some(oci),
        false => (media_type == oci).then_some(docker),
    })?;
    descriptor["mediaType"] = Value::String(renamed.to_owned());
    Some(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn docker_image() -> Value {
        json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_V2,
            "config": { "mediaType": CONFIG.0, "size": 7, "digest": "sha256:c" },
            "layers": [
                { "mediaType": LAYERS[0].0, "size": 3, "digest": "sha256:a" },
                { "mediaType": LAYERS[1].0, "size": 4, "digest": "sha256:b",
                  "urls": ["https://example.invalid/b"] },
            ],
        })
    }

    fn oci_image() -> Value {
        let mut oci = docker_image();
        oci["mediaType"] = json!(OCI_MANIFEST);
        oci["config"]["mediaType"] = json!(CONFIG.1);
        oci["layers"][0]["mediaType"] = json!(LAYERS[0].1);
        oci["layers"][1]["mediaType"] = json!(LAYERS[1].1);
        oci
    }

    fn parsed(text: Option<String>) -> Value {
        serde_json::from_str(&text.expect("a conversion")).unwrap()
    }

    #[test]
    fn docker_v2_and_oci_translate_into_each_other() {
        let docker = docker_image().to_string();
        assert_eq!(
            parsed(convert(&docker, DOCKER_V2, OCI_MANIFEST)),
            oci_image()
        );
        let oci = oci_image().to_string();
        assert_eq!(
            parsed(convert(&oci, OCI_MANIFEST, DOCKER_V2)),
            docker_image()
        );
    }

    #[test]
    fn translations_ecr_does_not_document_are_refused() {
        let docker = docker_image().to_string();
        let v1 = "application/vnd.docker.distribution.manifest.v1+json";
        assert_eq!(convert(&docker, DOCKER_V2, v1), None);
        assert_eq!(convert(&docker, DOCKER_V2, DOCKER_V2), None);
        let index = "application/vnd.oci.image.index.v1+json";
        assert_eq!(convert(&docker, index, DOCKER_V2), None);
    }

    #[test]
    fn manifests_without_counterparts_are_not_translated() {
        let mut artifact = oci_image();
        artifact["artifactType"] = json!("application/vnd.example+json");
        assert_eq!(
            convert(&artifact.to_string(), OCI_MANIFEST, DOCKER_V2),
            None
        );
        let mut helm = oci_image();
        helm["config"]["mediaType"] = json!("application/vnd.cncf.helm.config.v1+json");
        assert_eq!(convert(&helm.to_string(), OCI_MANIFEST, DOCKER_V2), None);
        let mut odd_layer = docker_image();
        odd_layer["layers"][1]["mediaType"] = json!("application/x-unknown");
        assert_eq!(
            convert(&odd_layer.to_string(), DOCKER_V2, OCI_MANIFEST),
            None
        );
        assert_eq!(convert("not json", DOCKER_V2, OCI_MANIFEST), None);
    }
}
