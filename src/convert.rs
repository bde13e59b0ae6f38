//! Conversions between the `ecr.v1` protobuf messages and aws-sdk-ecr types.
//!
//! - [`enums`]: protobuf enum numbers ⇄ SDK enums, tolerant of values either
//!   side does not know;
//! - [`types`]: shared structures (Repository, ImageDetail, Layer, …);
//! - [`requests`]: validated protobuf requests → ready-to-send SDK calls;
//! - [`responses`]: SDK outputs → protobuf responses.

pub mod enums;
pub mod requests;
pub mod responses;
pub mod types;
