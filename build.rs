//! Compiles `proto/` with the pure-Rust `protox` compiler (no system `protoc`
//! needed) and generates the tonic/prost code for `ecr.v1`.
//!
//! Two artefacts land in `OUT_DIR`:
//! - `ecr.v1.rs`: messages, client and server for the `ecr.v1` package;
//! - `ecr_descriptor.bin`: a file descriptor set with `ecr.v1` *and* the
//!   `google.rpc` error-detail types, served by reflection so that `grpcurl`
//!   can decode `BadRequest`, `ErrorInfo` and `RetryInfo` details.

use std::path::PathBuf;

const PROTO_ROOT: &str = "proto";
const ENTRY_FILES: &[&str] = &[
    "ecr/v1/service.proto",
    "ecr/v1/types.proto",
    "google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    for file in ENTRY_FILES {
        println!("cargo:rerun-if-changed={PROTO_ROOT}/{file}");
    }

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let full_set = protox::compile(ENTRY_FILES, [PROTO_ROOT])?;
    std::fs::write(
        out_dir.join("ecr_descriptor.bin"),
        prost::Message::encode_to_vec(&full_set),
    )?;

    // No Rust code for google.rpc: tonic-types has it. (google.protobuf stays in
    // the set for type resolution; prost maps it to prost-types.)
    let mut ecr_only = full_set;
    ecr_only.file.retain(|file| file.package() != "google.rpc");
    // `[deprecated = true]` tells callers what ECR deprecates; the server
    // still honours those fields as ECR does, so its own code must not warn.
    // (Reflection keeps the option: it serves `full_set`.)
    for message in ecr_only
        .file
        .iter_mut()
        .flat_map(|file| &mut file.message_type)
    {
        for field in &mut message.field {
            if let Some(options) = field.options.as_mut() {
                options.deprecated = None;
            }
        }
    }

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Request messages that do not decode are INVALID_ARGUMENT.
        .codec_path("crate::codec::FacadeCodec")
        // AuthorizationData carries a registry password: its Debug is written
        // by hand (src/pb.rs) so the token can never reach a log line.
        .skip_debug(["ecr.v1.AuthorizationData"])
        // Layer bytes as `bytes::Bytes`: decoded without a copy, and sliced
        // into upstream parts and stream chunks without one either.
        .bytes(".ecr.v1.PushLayerRequest.chunk")
        .bytes(".ecr.v1.PullLayerResponse.chunk")
        .bytes(".ecr.v1.UploadLayerPartRequest.layer_part_blob")
        .compile_fds(ecr_only)?;
    Ok(())
}
