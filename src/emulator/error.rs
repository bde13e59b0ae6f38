//! The emulator's one error type and its one mapping to an AWS JSON 1.1
//! error response: `{"__type": "<ErrorShape>", "message": "..."}` with 400 for
//! client errors and 500 for `ServerException` (the model's only fault).

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// An ECR error shape, with the members ECR puts next to `message`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The body is not a JSON object of the operation's input shape.
    #[error("{0}")]
    Serialization(String),
    /// `X-Amz-Target` names no ECR operation.
    #[error("{0}")]
    UnknownOperation(String),
    /// A request member breaks a model constraint (or a documented rule).
    #[error("{0}")]
    InvalidParameter(String),
    /// A tag key or value breaks the tag rules.
    #[error("{0}")]
    InvalidTagParameter(String),
    /// More tags than a repository may carry.
    #[error("{0}")]
    TooManyTags(String),
    /// The named repository does not exist.
    #[error(
        "The repository with name '{name}' does not exist in the registry with id '{registry}'"
    )]
    RepositoryNotFound { registry: String, name: String },
    /// The repository name is taken.
    #[error(
        "The repository with name '{name}' already exists in the registry with id '{registry}'"
    )]
    RepositoryAlreadyExists { registry: String, name: String },
    /// DeleteRepository without `force` on a repository holding images.
    #[error(
        "The repository with name '{name}' in registry with id '{registry}' cannot be deleted because it still contains images"
    )]
    RepositoryNotEmpty { registry: String, name: String },
    /// The repository has no policy.
    #[error(
        "Repository policy does not exist for the repository with name '{name}' in the registry with id '{registry}'"
    )]
    RepositoryPolicyNotFound { registry: String, name: String },
    /// DescribeImages named an image that does not exist.
    #[error("{0}")]
    ImageNotFound(String),
    /// PutImage of a manifest (and tag) already in the repository.
    #[error("{0}")]
    ImageAlreadyExists(String),
    /// PutImage would move a tag in an immutable repository.
    #[error("{0}")]
    ImageTagAlreadyExists(String),
    /// PutImage's `imageDigest` is not the digest of the manifest.
    #[error("{0}")]
    ImageDigestDoesNotMatch(String),
    /// Layers (or a config blob) named by a manifest or request are unknown.
    #[error("{0}")]
    LayersNotFound(String),
    /// The layer exists but no image references it.
    #[error("{0}")]
    LayerInaccessible(String),
    /// The layer is already stored in the repository.
    #[error("{0}")]
    LayerAlreadyExists(String),
    /// The uploaded bytes do not hash to the stated digest.
    #[error("{0}")]
    InvalidLayer(String),
    /// A part is not contiguous with what the upload holds.
    #[error(
        "The layer part upload for upload with id '{upload_id}' in the repository with name '{name}' in the registry with id '{registry}' is not contiguous: the last valid byte received is {last_valid}"
    )]
    InvalidLayerPart {
        registry: String,
        name: String,
        upload_id: String,
        last_valid: i64,
    },
    /// The upload id is unknown in this repository.
    #[error(
        "Upload with id '{upload_id}' could not be found for the repository with name '{name}' in the registry with id '{registry}'"
    )]
    UploadNotFound {
        registry: String,
        name: String,
        upload_id: String,
    },
    /// CompleteLayerUpload before any part.
    #[error("{0}")]
    EmptyUpload(String),
    /// A manifest list names images the repository does not hold.
    #[error("{0}")]
    ReferencedImagesNotFound(String),
    /// A quota (here: the emulator's memory bounds) is exhausted.
    #[error("{0}")]
    LimitExceeded(String),
    /// Injected throttling.
    #[error("Rate exceeded")]
    Throttling,
    /// Injected (or genuine) server fault.
    #[error("{0}")]
    Server(String),
}

impl ApiError {
    /// The error shape name, the `__type` on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Serialization(_) => "SerializationException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::InvalidParameter(_) => "InvalidParameterException",
            Self::InvalidTagParameter(_) => "InvalidTagParameterException",
            Self::TooManyTags(_) => "TooManyTagsException",
            Self::RepositoryNotFound { .. } => "RepositoryNotFoundException",
            Self::RepositoryAlreadyExists { .. } => "RepositoryAlreadyExistsException",
            Self::RepositoryNotEmpty { .. } => "RepositoryNotEmptyException",
            Self::RepositoryPolicyNotFound { .. } => "RepositoryPolicyNotFoundException",
            Self::ImageNotFound(_) => "ImageNotFoundException",
            Self::ImageAlreadyExists(_) => "ImageAlreadyExistsException",
            Self::ImageTagAlreadyExists(_) => "ImageTagAlreadyExistsException",
            Self::ImageDigestDoesNotMatch(_) => "ImageDigestDoesNotMatchException",
            Self::LayersNotFound(_) => "LayersNotFoundException",
            Self::LayerInaccessible(_) => "LayerInaccessibleException",
            Self::LayerAlreadyExists(_) => "LayerAlreadyExistsException",
            Self::InvalidLayer(_) => "InvalidLayerException",
            Self::InvalidLayerPart { .. } => "InvalidLayerPartException",
            Self::UploadNotFound { .. } => "UploadNotFoundException",
            Self::EmptyUpload(_) => "EmptyUploadException",
            Self::ReferencedImagesNotFound(_) => "ReferencedImagesNotFoundException",
            Self::LimitExceeded(_) => "LimitExceededException",
            Self::Throttling => "ThrottlingException",
            Self::Server(_) => "ServerException",
        }
    }

    /// 500 for the one modeled fault, 400 for everything else.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The error body: `__type`, `message`, and the shape's extra members.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("__type".into(), json!(self.code()));
        body.insert("message".into(), json!(self.to_string()));
        if let Self::InvalidLayerPart {
            registry,
            name,
            upload_id,
            last_valid,
        } = self
        {
            body.insert("registryId".into(), json!(registry));
            body.insert("repositoryName".into(), json!(name));
            body.insert("uploadId".into(), json!(upload_id));
            body.insert("lastValidByteReceived".into(), json!(last_valid));
        }
        Value::Object(body)
    }

    /// `InvalidParameterException` in ECR's wording for a broken constraint.
    pub fn constraint(field: &str, constraint: impl std::fmt::Display) -> Self {
        Self::InvalidParameter(format!(
            "Invalid parameter at '{field}' failed to satisfy constraint: '{constraint}'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_exception_is_the_only_5xx() {
        assert_eq!(ApiError::Server("x".into()).status(), 500);
        assert_eq!(ApiError::Throttling.status(), 400);
        assert_eq!(ApiError::InvalidParameter("x".into()).status(), 400);
    }

    #[test]
    fn invalid_layer_part_carries_its_members() {
        let body = ApiError::InvalidLayerPart {
            registry: "123456789012".into(),
            name: "a/b".into(),
            upload_id: "u".into(),
            last_valid: 9,
        }
        .body();
        assert_eq!(body["__type"], "InvalidLayerPartException");
        assert_eq!(body["lastValidByteReceived"], 9);
        assert_eq!(body["repositoryName"], "a/b");
        assert_eq!(body["registryId"], "123456789012");
        assert_eq!(body["uploadId"], "u");
    }

    #[test]
    fn constraint_messages_use_ecr_wording() {
        let err = ApiError::constraint(
            "repositoryName",
            "must have length greater than or equal to 2",
        );
        assert_eq!(
            err.to_string(),
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must have length greater than or equal to 2'"
        );
        assert_eq!(err.body()["__type"], "InvalidParameterException");
    }
}
