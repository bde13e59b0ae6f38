//! The integration tests, one binary (one link of aws-sdk-ecr, tonic and
//! axum instead of one per file): each module drives the real server over
//! real gRPC — against moto server, the embedded emulator, or the counting
//! proxy of `common::proxy` where moto cannot do what a test needs — or the
//! real `ecr-facade` binary. Modules are named for the behaviour they test.
//!
//! Run one module with a filter: `cargo test --test it forwarding::`.

mod common;

mod binary;
mod budget;
mod deadlines;
mod differential;
mod emulator;
mod errors;
mod forwarding;
mod layer_stream;
mod properties;
mod security;
mod server;
mod tokens;
mod transfer;
