//! The ECR calls of a push that are not its parts: whether the layer is
//! there already (BatchCheckLayerAvailability), starting the upload
//! (InitiateLayerUpload, with the part size clamped) and completing it
//! (CompleteLayerUpload).

use aws_sdk_ecr::types::LayerAvailability;
use sha2::{Digest, Sha256};

use super::{MIN_PART_BYTES, Push, Upload};
use crate::convert::requests;
use crate::error::{Error, UpstreamError};
use crate::model::{Action, LAYER_PART_MAX_BYTES};
use crate::pb;
use crate::upstream::observed;

impl Push {
    /// Whether the repository already holds the layer `digest`.
    pub(super) async fn present(&self, digest: &str) -> Result<bool, Error> {
        let call = Box::pin(
            requests::batch_check_layer_availability(
                &self.inner.client,
                self.registry_id.clone(),
                self.repository_name.clone(),
                vec![digest.to_owned()],
            )
            .send(),
        );
        let output = observed(
            &self.inner.metrics,
            Action::BatchCheckLayerAvailability.name(),
            call,
        )
        .await?;
        Ok(output.layers().iter().any(|layer| {
            layer.layer_digest() == Some(digest)
                && layer.layer_availability() == Some(&LayerAvailability::Available)
        }))
    }

    /// Starts the upload, at ECR's part size within what the facade uploads.
    pub(super) async fn initiate(&self) -> Result<Upload, Error> {
        let call = Box::pin(
            requests::initiate_layer_upload(
                &self.inner.client,
                pb::InitiateLayerUploadRequest {
                    registry_id: self.registry_id.clone(),
                    repository_name: self.repository_name.clone(),
                },
            )
            .send(),
        );
        let output = observed(
            &self.inner.metrics,
            Action::InitiateLayerUpload.name(),
            call,
        )
        .await?;
        let Some(id) = output.upload_id else {
            return Err(UpstreamError::bad_response(Action::InitiateLayerUpload.name()).into());
        };
        let announced = output.part_size.unwrap_or(0).max(0) as usize;
        Ok(Upload {
            _lease: self.lease(&id),
            id,
            part_size: announced.clamp(MIN_PART_BYTES, LAYER_PART_MAX_BYTES),
            committed: 0,
            hasher: Sha256::new(),
        })
    }

    /// Completes the upload with `digest`: whether the layer was there
    /// already (another push of it won the race).
    pub(super) async fn complete(&self, upload_id: &str, digest: &str) -> Result<bool, Error> {
        let call = Box::pin(
            requests::complete_layer_upload(
                &self.inner.client,
                pb::CompleteLayerUploadRequest {
                    registry_id: self.registry_id.clone(),
                    repository_name: self.repository_name.clone(),
                    upload_id: upload_id.to_owned(),
                    layer_digests: vec![digest.to_owned()],
                },
            )
            .send(),
        );
        let already_present = match observed(
            &self.inner.metrics,
            Action::CompleteLayerUpload.name(),
            call,
        )
        .await
        {
            Ok(_) => false,
            // Another push of the same layer won the race: the layer is there.
            Err(err) if err.reason() == "LayerAlreadyExistsException" => true,
            Err(err) => return Err(err.into()),
        };
        Ok(already_present)
    }
}
