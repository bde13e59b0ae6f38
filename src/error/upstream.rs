//! Upstream failures: an ECR call's `SdkError` classified once into an
//! [`UpstreamError`] (its gRPC code, `ErrorInfo` reason and lowercase,
//! secret-free message), and the scrubbing of credential-like strings from
//! whatever ECR or the SDK said.

use std::collections::HashMap;
use std::error::Error as StdError;

use aws_sdk_ecr::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_types::request_id::RequestId;
use tonic::Code;
use tonic_types::ErrorDetails;

use super::reasons::{
    ECR_DOMAIN, FACADE_DOMAIN, REASON_DEADLINE_EXCEEDED, REASON_UPSTREAM_BAD_RESPONSE,
    REASON_UPSTREAM_CREDENTIALS_MISSING, REASON_UPSTREAM_REQUEST_FAILED, REASON_UPSTREAM_TIMEOUT,
    REASON_UPSTREAM_UNREACHABLE, THROTTLE_RETRY_DELAY,
};

/// A failed upstream call, classified.
#[derive(Debug, Clone)]
pub struct UpstreamError {
    /// ECR action, e.g. `DescribeImages`.
    pub action: &'static str,
    /// What went wrong.
    pub kind: UpstreamErrorKind,
    /// ECR's request id, when a response arrived.
    pub request_id: Option<String>,
}

/// Classes of upstream failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// ECR answered with an error shape (`__type`), e.g.
    /// `RepositoryNotFoundException`.
    Service {
        /// The error name without namespace.
        code: String,
        /// ECR's message (already scrubbed of credential-like strings).
        message: Option<String>,
    },
    /// ECR answered with something that is not a valid response.
    BadResponse {
        /// HTTP status of that response.
        http_status: u16,
    },
    /// The call (or one attempt) ran out of the SDK's configured time.
    Timeout,
    /// The RPC's deadline (the caller's `grpc-timeout`, capped by the
    /// server's default) passed before ECR answered; the call was abandoned.
    DeadlineExceeded,
    /// ECR could not be reached (connection refused, reset, DNS…).
    Unreachable,
    /// The facade has no AWS credentials to sign with.
    MissingCredentials,
    /// The request could not be built or sent for another reason.
    Other,
}

/// Error names ECR (and AWS generally) uses for throttling.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
];

/// Error names that mean the facade's own credentials were rejected.
const CREDENTIAL_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "InvalidClientTokenId",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "SignatureDoesNotMatch",
];

/// gRPC code for an ECR error name (see the mapping table in
/// `shared/ecr-api-reference.md` §10). Unknown names fall back on the HTTP
/// class: ECR marks only `ServerException` as a fault.
pub fn code_for_ecr_error(name: &str) -> Code {
    match name {
        "InvalidParameterException"
        | "InvalidTagParameterException"
        | "TooManyTagsException"
        | "ImageDigestDoesNotMatchException"
        | "InvalidLayerException"
        | "ValidationException"
        | "SerializationException" => Code::InvalidArgument,
        "InvalidLayerPartException" => Code::OutOfRange,
        "LayerPartTooSmallException"
        | "EmptyUploadException"
        | "RepositoryNotEmptyException"
        | "ReferencedImagesNotFoundException"
        | "LayerInaccessibleException"
        | "KmsException" => Code::FailedPrecondition,
        "RepositoryNotFoundException"
        | "RepositoryPolicyNotFoundException"
        | "ImageNotFoundException"
        | "LayersNotFoundException"
        | "UploadNotFoundException" => Code::NotFound,
        "RepositoryAlreadyExistsException"
        | "LayerAlreadyExistsException"
        | "ImageAlreadyExistsException"
        | "ImageTagAlreadyExistsException" => Code::AlreadyExists,
        "LimitExceededException" => Code::ResourceExhausted,
        "UnableToGetUpstreamImageException"
        | "UnableToGetUpstreamLayerException"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "InternalFailure" => Code::Unavailable,
        "ServerException" => Code::Internal,
        "AccessDeniedException" | "AccessDenied" => Code::PermissionDenied,
        name if THROTTLING_CODES.contains(&name) => Code::ResourceExhausted,
        // The facade's own credentials: not the caller's fault, and nothing the
        // caller can fix; the message tells the operator what to do.
        name if CREDENTIAL_CODES.contains(&name) => Code::Internal,
        _ => Code::Unknown,
    }
}

impl UpstreamError {
    /// The RPC's deadline passed while waiting for `action`.
    pub fn deadline_exceeded(action: &'static str) -> Self {
        UpstreamError {
            action,
            kind: UpstreamErrorKind::DeadlineExceeded,
            request_id: None,
        }
    }

    /// ECR answered `action` without a member the facade needs.
    pub fn bad_response(action: &'static str) -> Self {
        UpstreamError {
            action,
            kind: UpstreamErrorKind::BadResponse { http_status: 200 },
            request_id: None,
        }
    }

    /// Classifies an SDK error of the ECR action `action`.
    pub fn from_sdk<E>(action: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let request_id = err.request_id().map(str::to_owned);
        let kind = match &err {
            SdkError::TimeoutError(_) => UpstreamErrorKind::Timeout,
            SdkError::DispatchFailure(failure) => {
                if failure.is_timeout() {
                    UpstreamErrorKind::Timeout
                } else if chain_has_credentials_error(&err) {
                    UpstreamErrorKind::MissingCredentials
                } else if failure.is_io() || failure.is_other() {
                    UpstreamErrorKind::Unreachable
                } else {
                    UpstreamErrorKind::Other
                }
            }
            SdkError::ResponseError(response) => UpstreamErrorKind::BadResponse {
                http_status: response.raw().status().as_u16(),
            },
            SdkError::ServiceError(service) => match service.err().code() {
                Some(code) => UpstreamErrorKind::Service {
                    code: code.to_owned(),
                    message: service.err().message().map(scrub),
                },
                None => UpstreamErrorKind::BadResponse {
                    http_status: service.raw().status().as_u16(),
                },
            },
            // ConstructionFailure and anything newer: logged below.
            _ => UpstreamErrorKind::Other,
        };
        let request_id = request_id.or_else(|| match &err {
            SdkError::ServiceError(service) => service.err().meta().request_id().map(str::to_owned),
            _ => None,
        });
        if matches!(kind, UpstreamErrorKind::Other) {
            // Not shown to callers (it could name local configuration), but the
            // operator needs it.
            tracing::warn!(action, error = %display_chain(&err), "upstream call failed");
        }
        UpstreamError {
            action,
            kind,
            request_id,
        }
    }

    /// The gRPC code for this failure.
    pub fn code(&self) -> Code {
        match &self.kind {
            UpstreamErrorKind::Service { code, .. } => code_for_ecr_error(code),
            UpstreamErrorKind::BadResponse { http_status } if *http_status >= 500 => {
                Code::Unavailable
            }
            UpstreamErrorKind::BadResponse { .. } => Code::Unknown,
            UpstreamErrorKind::Timeout | UpstreamErrorKind::DeadlineExceeded => {
                Code::DeadlineExceeded
            }
            UpstreamErrorKind::Unreachable => Code::Unavailable,
            UpstreamErrorKind::MissingCredentials => Code::Internal,
            UpstreamErrorKind::Other => Code::Internal,
        }
    }

    /// `ErrorInfo.reason`: the ECR error name, or the facade's own reason.
    pub fn reason(&self) -> &str {
        match &self.kind {
            UpstreamErrorKind::Service { code, .. } => code,
            UpstreamErrorKind::BadResponse { .. } => REASON_UPSTREAM_BAD_RESPONSE,
            UpstreamErrorKind::Timeout => REASON_UPSTREAM_TIMEOUT,
            UpstreamErrorKind::DeadlineExceeded => REASON_DEADLINE_EXCEEDED,
            UpstreamErrorKind::Unreachable => REASON_UPSTREAM_UNREACHABLE,
            UpstreamErrorKind::MissingCredentials => REASON_UPSTREAM_CREDENTIALS_MISSING,
            UpstreamErrorKind::Other => REASON_UPSTREAM_REQUEST_FAILED,
        }
    }

    /// Whether ECR throttled the call.
    pub fn is_throttling(&self) -> bool {
        matches!(&self.kind, UpstreamErrorKind::Service { code, .. } if THROTTLING_CODES.contains(&code.as_str()))
    }

    /// Lowercase, secret-free message for the caller.
    pub fn message(&self) -> String {
        let action = self.action;
        match &self.kind {
            UpstreamErrorKind::Service { code, .. }
                if CREDENTIAL_CODES.contains(&code.as_str()) =>
            {
                format!(
                    "ecr rejected the facade's own aws credentials ({code}) on {action}: \
                     the operator must fix the service's credentials"
                )
            }
            UpstreamErrorKind::Service { code, message } => match message {
                Some(message) => format!("ecr {action} failed: {code}: {message}"),
                None => format!("ecr {action} failed: {code}"),
            },
            UpstreamErrorKind::BadResponse { http_status } => format!(
                "ecr {action} answered http {http_status} with a body that is not an ecr response"
            ),
            UpstreamErrorKind::Timeout => format!("ecr {action} timed out"),
            UpstreamErrorKind::DeadlineExceeded => {
                format!("the call's deadline passed before ecr {action} answered")
            }
            UpstreamErrorKind::Unreachable => format!("ecr could not be reached for {action}"),
            UpstreamErrorKind::MissingCredentials => format!(
                "the facade has no aws credentials to call ecr {action}: the operator must \
                 configure the service's credentials (environment, profile or workload identity)"
            ),
            UpstreamErrorKind::Other => format!("ecr {action} could not be sent"),
        }
    }

    pub(super) fn details(&self) -> ErrorDetails {
        let domain = match &self.kind {
            UpstreamErrorKind::Service { .. } => ECR_DOMAIN,
            _ => FACADE_DOMAIN,
        };
        let mut metadata = HashMap::from([("action".to_owned(), self.action.to_owned())]);
        if let Some(id) = &self.request_id {
            metadata.insert("request_id".to_owned(), id.clone());
        }
        let mut details = ErrorDetails::with_error_info(self.reason(), domain, metadata);
        if self.is_throttling() {
            details.set_retry_info(Some(THROTTLE_RETRY_DELAY));
        }
        details
    }
}

fn chain_has_credentials_error(err: &(dyn StdError + 'static)) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = source {
        if current
            .downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some()
        {
            return true;
        }
        source = current.source();
    }
    false
}

fn display_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(current) = source {
        out.push_str(": ");
        out.push_str(&current.to_string());
        source = current.source();
    }
    scrub(&out)
}

/// Removes what could be a credential from an upstream message: AWS access key
/// ids and long opaque tokens (session tokens, signatures, base64 blobs).
pub fn scrub(message: &str) -> String {
    // A token character can be part of a key or a base64 blob; anything else
    // (spaces, quotes, brackets, dots, colons…) separates words.
    let separator =
        |c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-'));
    message
        .split_inclusive(separator)
        .map(|word| {
            let trimmed = word.trim_end_matches(separator);
            let tail = &word[trimmed.len()..];
            if looks_secret(trimmed) {
                format!("<redacted>{tail}")
            } else {
                word.to_owned()
            }
        })
        .collect()
}

fn looks_secret(word: &str) -> bool {
    let is_key_id = word.len() == 20
        && (word.starts_with("AKIA") || word.starts_with("ASIA"))
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    // Session tokens, secret keys, signatures and base64 tokens are long and
    // mix cases and digits; repository names, digests and ids do not.
    let opaque = word.len() >= 32
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-'))
        && word.chars().any(|c| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_lowercase())
        && word.chars().any(|c| c.is_ascii_digit());
    is_key_id || opaque
}

#[cfg(test)]
mod tests;
