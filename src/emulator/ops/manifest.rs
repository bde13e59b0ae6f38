//! What PutImage reads from a manifest: its media type, the blobs it names
//! (config and layers), or the manifests it names (manifest list / index).

use std::collections::HashSet;

use serde_json::Value;

use crate::emulator::error::ApiError;

/// Docker schema 1 (`schemaVersion: 1` carries no `mediaType`).
pub const DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// A blob or manifest named by a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    pub digest: String,
    pub media_type: Option<String>,
}

/// The parts of a manifest PutImage checks.
#[derive(Debug, Default, PartialEq)]
pub struct Manifest {
    /// The top-level `mediaType` (or Docker schema 1's implied one).
    pub media_type: Option<String>,
    /// `artifactType`, else the config's media type.
    pub artifact_media_type: Option<String>,
    /// The config blob.
    pub config: Option<Descriptor>,
    /// Layer blobs (`layers[]`, or schema 1 `fsLayers[].blobSum`).
    pub layers: Vec<Descriptor>,
    /// Child manifests of a manifest list or image index, without repeats.
    pub manifests: Vec<Descriptor>,
    /// Config then layers, without repeats (see [`Manifest::blobs`]).
    unique_blobs: Vec<Descriptor>,
}

fn invalid(why: &str) -> ApiError {
    ApiError::constraint("ImageManifest", why)
}

impl Manifest {
    /// Parses manifest text; malformed JSON is ECR's "Invalid JSON syntax".
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let doc: Value = serde_json::from_str(text).map_err(|_| invalid("Invalid JSON syntax"))?;
        if !doc.is_object() {
            return Err(invalid("Invalid JSON syntax"));
        }
        let mut media_type = doc["mediaType"].as_str().map(str::to_owned);
        if media_type.is_none() && doc["schemaVersion"] == 1 {
            media_type = Some(DOCKER_V1.to_owned());
        }
        let config = match &doc["config"] {
            Value::Null => None,
            config => Some(descriptor(config, "digest")?),
        };
        let layers = match (&doc["layers"], &doc["fsLayers"]) {
            (Value::Null, Value::Null) => Vec::new(),
            (Value::Null, fs_layers) => descriptors(fs_layers, "blobSum")?,
            (layers, _) => descriptors(layers, "digest")?,
        };
        let manifests = match &doc["manifests"] {
            Value::Null => Vec::new(),
            manifests => unique(descriptors(manifests, "digest")?.iter()),
        };
        let unique_blobs = unique(config.iter().chain(&layers));
        let artifact_media_type = doc["artifactType"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| config.as_ref().and_then(|c| c.media_type.clone()));
        Ok(Self {
            media_type,
            artifact_media_type,
            config,
            layers,
            manifests,
            unique_blobs,
        })
    }

    /// Every blob the manifest names, config first, without repeats
    /// (computed once, at parse time, outside the store's lock).
    pub fn blobs(&self) -> &[Descriptor] {
        &self.unique_blobs
    }
}

/// `descriptors` without repeated digests, first occurrence kept, in O(n):
/// a manifest may name hundreds of thousands of them.
fn unique<'a>(descriptors: impl Iterator<Item = &'a Descriptor>) -> Vec<Descriptor> {
    let mut seen = HashSet::new();
    descriptors
        .filter(|d| seen.insert(d.digest.as_str()))
        .cloned()
        .collect()
}

fn descriptor(value: &Value, digest_key: &str) -> Result<Descriptor, ApiError> {
    let digest = value[digest_key].as_str().ok_or_else(|| {
        invalid(&format!(
            "every descriptor must have a string '{digest_key}'"
        ))
    })?;
    Ok(Descriptor {
        digest: digest.to_owned(),
        media_type: value["mediaType"].as_str().map(str::to_owned),
    })
}

fn descriptors(value: &Value, digest_key: &str) -> Result<Vec<Descriptor>, ApiError> {
    value
        .as_array()
        .ok_or_else(|| invalid("descriptor lists must be arrays"))?
        .iter()
        .map(|d| descriptor(d, digest_key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_manifest_names_config_and_layers() {
        let text = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:c"},
            "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:l"},
                      {"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:l"}]}"#;
        let manifest = Manifest::parse(text).unwrap();
        assert_eq!(
            manifest.media_type.as_deref(),
            Some("application/vnd.docker.distribution.manifest.v2+json")
        );
        assert_eq!(
            manifest.artifact_media_type.as_deref(),
            Some("application/vnd.docker.container.image.v1+json")
        );
        let digests: Vec<_> = manifest.blobs().iter().map(|b| b.digest.as_str()).collect();
        assert_eq!(digests, ["sha256:c", "sha256:l"]);
        assert!(manifest.manifests.is_empty());
    }

    #[test]
    fn indexes_schema1_and_bare_oci_manifests() {
        let index = Manifest::parse(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"sha256:a","mediaType":"m"}]}"#).unwrap();
        assert_eq!(index.manifests[0].digest, "sha256:a");
        assert!(index.blobs().is_empty());
        let v1 =
            Manifest::parse(r#"{"schemaVersion":1,"fsLayers":[{"blobSum":"sha256:b"}]}"#).unwrap();
        assert_eq!(v1.media_type.as_deref(), Some(DOCKER_V1));
        assert_eq!(v1.layers[0].digest, "sha256:b");
        let bare =
            Manifest::parse(r#"{"schemaVersion":2,"config":{"digest":"sha256:c"},"layers":[]}"#)
                .unwrap();
        assert_eq!(bare.media_type, None);
    }

    #[test]
    fn malformed_manifests_are_invalid_parameters() {
        for bad in [
            "",
            "{",
            "[]",
            r#"{"layers":{}}"#,
            r#"{"config":{"digest":1}}"#,
        ] {
            let err = Manifest::parse(bad).unwrap_err();
            assert_eq!(err.code(), "InvalidParameterException", "{bad}");
        }
        assert!(
            Manifest::parse("nope")
                .unwrap_err()
                .to_string()
                .contains("Invalid JSON syntax")
        );
    }
}
