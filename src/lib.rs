//! ecr-facade: one validated, streaming gRPC API in front of Amazon ECR.
//!
//! The binary (`src/main.rs`) only parses flags and wires these modules:
//! - [`pb`]: the generated `ecr.v1` protobuf types and the descriptor set;
//! - [`codec`]: their codec (undecodable requests are INVALID_ARGUMENT);
//! - [`config`]: command-line flags, the settings built from them (the one
//!   place a flag becomes a setting) and the AWS SDK client;
//! - [`model`]: ECR's model shared by the facade and the emulator: every
//!   action (RPC) with its flags, ECR's patterns and limits;
//! - [`validate`]: ECR's request constraints, checked before any upstream call;
//! - [`budget`]: per-method request size limits and the budget of request
//!   bytes in flight;
//! - [`convert`]: protobuf ⇄ aws-sdk-ecr conversions;
//! - [`error`]: the one error type and its one mapping to `tonic::Status`;
//! - [`flag_parsers`]: byte sizes and the token lifetime as flags spell them;
//! - [`deadline`]: the caller's deadline, bounding every upstream call;
//! - [`call_bounds`]: the flags bounding calls and connections, and each
//!   call's deadline;
//! - [`call_slot`]: one call's permits, ended once, and the watchdog ending
//!   calls at their deadlines;
//! - [`caller_share`]: each authenticated caller's share of the slots;
//! - [`listener`]: the accept loop (connection cap, handshake timeout,
//!   keepalive, accept back-off) of every listener;
//! - [`token_cache`]: the authorization-token cache;
//! - [`layer_check`]: the streaming fan-out for BatchCheckLayerAvailability;
//! - [`producer`]: a stream fed by a producer task, ended by its outcome;
//! - [`metrics`]: Prometheus metrics and their listener;
//! - [`service`]: the thin tonic handlers;
//! - [`transfer`]: the streaming layer push and pull;
//! - [`upstream`]: one observed upstream call (errors classified, metrics);
//! - [`open_services`]: health and reflection, never authenticated, shed
//!   nor charged;
//! - [`rpc_kinds`]: which methods stream, from the protos' descriptors;
//! - [`rpc_layer`]: request ids, RPC spans and logs, load shedding, RPC metrics;
//! - [`telemetry`]: the log subscriber and OTLP span export;
//! - [`security`]: TLS/mTLS, caller identity and the authorization policy;
//! - [`emulator`]: the embedded ECR emulator (`serve --emulator`, `emulator`);
//! - [`server`]: health, reflection, limits and graceful shutdown.

pub mod budget;
pub mod call_bounds;
pub mod call_slot;
pub mod caller_share;
pub mod codec;
pub mod config;
pub mod convert;
pub mod deadline;
pub mod emulator;
pub mod error;
pub mod flag_parsers;
pub mod layer_check;
pub mod listener;
pub mod metrics;
pub mod model;
pub mod open_services;
pub mod pb;
pub mod producer;
pub mod rpc_kinds;
pub mod rpc_layer;
pub mod security;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod token_cache;
pub mod transfer;
pub mod upstream;
pub mod validate;
