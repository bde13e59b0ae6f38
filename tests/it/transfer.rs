//! Writing through the facade: PushLayer, PutImage (tagging and promotion),
//! ListImages, the repository policy, the upload actions, and PullLayer —
//! against moto and the emulator (PullLayer against the emulator only: moto
//! has no download URLs). Large and faulted transfers run against an
//! emulator directly, without the counting proxy in between.

mod faults;
mod refusals;
mod round_trip;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use ecr_facade::pb::push_layer_request::Message as Send;
use ecr_facade::pb::push_layer_response::Message as Received;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::common::images::*;
use crate::common::upstream::{
    Kind, against_both, assert_ecr_error, create, facade_on_emulator, setup, violated_fields,
};
use crate::common::{TestFacade, sha256_digest, unique_name};
