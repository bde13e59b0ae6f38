//! Demo data (`--seed-demo`): repository `demo/hello` holding one OCI image
//! tagged `latest` — a config blob and one uncompressed tar layer with
//! `hello.txt` — pushed through the same operations a client would call, so
//! every facade RPC has something to work on.

use anyhow::Context;
use serde_json::{Value, json};

use super::operation::Operation;
use super::ops::{self, Ctx};
use super::shared::Shared;

/// The demo repository.
pub const DEMO_REPOSITORY: &str = "demo/hello";
/// The demo image's tag.
pub const DEMO_TAG: &str = "latest";

const GREETING: &[u8] = b"hello from the ecr-facade emulator\n";

/// Creates the demo repository and image.
pub fn seed_demo(shared: &Shared) -> anyhow::Result<()> {
    let ctx = Ctx {
        shared,
        base_url: &shared.base_url,
    };
    let call = |op: Operation, body: Value| {
        ops::dispatch(&ctx, op, body.to_string().as_bytes())
            .with_context(|| format!("seeding the demo repository: {op}"))
    };
    call(
        Operation::CreateRepository,
        json!({ "repositoryName": DEMO_REPOSITORY }),
    )?;
    let layer = tar_with_one_file("hello.txt", GREETING);
    let layer_digest = upload(&call, &layer)?;
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["cat", "/hello.txt"] },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    })
    .to_string();
    let config_digest = upload(&call, config.as_bytes())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    });
    call(
        Operation::PutImage,
        json!({
            "repositoryName": DEMO_REPOSITORY,
            "imageManifest": manifest.to_string(),
            "imageTag": DEMO_TAG,
        }),
    )?;
    Ok(())
}

fn upload(
    call: &impl Fn(Operation, Value) -> anyhow::Result<Value>,
    bytes: &[u8],
) -> anyhow::Result<String> {
    use base64::Engine;
    let started = call(
        Operation::InitiateLayerUpload,
        json!({ "repositoryName": DEMO_REPOSITORY }),
    )?;
    let upload_id = started["uploadId"].clone();
    call(
        Operation::UploadLayerPart,
        json!({
            "repositoryName": DEMO_REPOSITORY,
            "uploadId": upload_id,
            "partFirstByte": 0,
            "partLastByte": bytes.len() - 1,
            "layerPartBlob": base64::engine::general_purpose::STANDARD.encode(bytes),
        }),
    )?;
    let digest = super::ops::sha256_digest(bytes);
    call(
        Operation::CompleteLayerUpload,
        json!({
            "repositoryName": DEMO_REPOSITORY,
            "uploadId": upload_id,
            "layerDigests": [digest],
        }),
    )?;
    Ok(digest)
}

/// A POSIX ustar archive holding one regular file.
fn tar_with_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let mut put = |at: usize, field: &[u8]| header[at..at + field.len()].copy_from_slice(field);
    put(0, name.as_bytes());
    put(100, b"0000644\0");
    put(108, b"0000000\0");
    put(116, b"0000000\0");
    put(124, format!("{:011o}\0", content.len()).as_bytes());
    put(136, b"00000000000\0");
    put(148, b"        ");
    put(156, b"0");
    put(257, b"ustar\0");
    put(263, b"00");
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().next_multiple_of(512) + 1024, 0);
    tar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tar_is_well_formed() {
        let tar = tar_with_one_file("hello.txt", GREETING);
        assert_eq!(tar.len(), 512 + 512 + 1024);
        assert_eq!(&tar[0..9], b"hello.txt");
        assert_eq!(&tar[257..262], b"ustar");
        assert_eq!(&tar[512..512 + GREETING.len()], GREETING);
        // The stored checksum is the byte sum with the field read as spaces.
        let stored = std::str::from_utf8(&tar[148..154]).unwrap();
        let mut blanked = tar[..512].to_vec();
        blanked[148..156].copy_from_slice(b"        ");
        let sum: u32 = blanked.iter().map(|&b| u32::from(b)).sum();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
    }
}
