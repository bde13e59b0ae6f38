//! The facade's one error type and its one mapping to `tonic::Status`:
//! every status the facade answers — bad input, upstream failures,
//! authentication and authorization, its own limits and deadlines, layer
//! transfers, internal failures — is an [`Error`] turned into a status by
//! [`Error::to_status`], here and nowhere else.
//!
//! Upstream failures are classified once, from the SDK's `SdkError`, into an
//! [`UpstreamError`] (`upstream`); the `ErrorInfo` reasons and domains are
//! in `reasons`. Statuses carry canonical gRPC codes with `google.rpc`
//! details (`BadRequest`, `ErrorInfo`, `RetryInfo`). Messages are lowercase
//! and never carry credentials or tokens.

mod reasons;
mod upstream;

use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

pub use reasons::*;
pub use upstream::{UpstreamError, UpstreamErrorKind, code_for_ecr_error, scrub};

/// Most field violations listed in one status (message and `BadRequest`):
/// all of them could overflow the trailers of a 100-item request.
pub const MAX_LISTED_VIOLATIONS: usize = 20;

/// Every way a facade call can fail.
#[derive(Debug, Clone)]
pub enum Error {
    /// The request broke one or more of ECR's constraints; nothing was sent.
    InvalidRequest(Vec<FieldViolation>),
    /// The request's bytes are not a message of its type (they do not
    /// decode, or the body ended inside a message): INVALID_ARGUMENT without
    /// details, as there is no field to name. The message never quotes the
    /// bytes.
    Malformed(String),
    /// The upstream call failed.
    Upstream(UpstreamError),
    /// The facade itself refused or failed the call (a limit, a deadline,
    /// the policy, a layer transfer): the code, an `ErrorInfo` reason of the
    /// facade's domain with its metadata, a lowercase message and, when
    /// retrying later helps, a `RetryInfo`.
    Facade {
        /// The canonical code.
        code: Code,
        /// `ErrorInfo.reason`: one of the `REASON_*` constants.
        reason: &'static str,
        /// Lowercase, secret-free message for the caller.
        message: String,
        /// Back-off suggested in `RetryInfo`.
        retry_after: Option<Duration>,
        /// `ErrorInfo.metadata`: what the refusal was about.
        metadata: Vec<(&'static str, String)>,
    },
    /// The facade failed (a handler panicked, a task died): INTERNAL without
    /// details. The cause is logged; the message only says so.
    Internal(String),
}

impl Error {
    /// One violated field: INVALID_ARGUMENT with a `BadRequest` naming it.
    pub fn invalid_field(field: &str, description: impl Into<String>) -> Self {
        Error::InvalidRequest(vec![FieldViolation::new(field, description)])
    }

    /// The request's bytes are not a message: INVALID_ARGUMENT, no details.
    pub fn malformed(message: impl Into<String>) -> Self {
        Error::Malformed(message.into())
    }

    /// The facade failed internally: INTERNAL, no details.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// The facade's own failure with `code` and `reason`.
    pub fn facade(code: Code, reason: &'static str, message: impl Into<String>) -> Self {
        Error::Facade {
            code,
            reason,
            message: message.into(),
            retry_after: None,
            metadata: Vec::new(),
        }
    }

    /// A call shed at one of the facade's concurrency limits:
    /// [`Error::overloaded`] with a `RetryInfo` of [`SHED_RETRY_DELAY`].
    pub fn shed(message: impl Into<String>) -> Self {
        Self::overloaded(message, SHED_RETRY_DELAY)
    }

    /// A limit of the facade's own is reached: RESOURCE_EXHAUSTED
    /// (`OVERLOADED`) with a `RetryInfo` of `retry_after`.
    pub fn overloaded(message: impl Into<String>, retry_after: Duration) -> Self {
        Error::Facade {
            code: Code::ResourceExhausted,
            reason: REASON_OVERLOADED,
            message: message.into(),
            retry_after: Some(retry_after),
            metadata: Vec::new(),
        }
    }

    /// The call's deadline passed: DEADLINE_EXCEEDED (`DEADLINE_EXCEEDED`).
    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Error::facade(Code::DeadlineExceeded, REASON_DEADLINE_EXCEEDED, message)
    }

    /// No caller is known while a policy is in force: UNAUTHENTICATED
    /// (`UNAUTHENTICATED`).
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Error::facade(Code::Unauthenticated, REASON_UNAUTHENTICATED, message)
    }

    /// The caller may not make the call: PERMISSION_DENIED with `reason`
    /// ([`REASON_NOT_ALLOWED`] or [`REASON_READ_ONLY`]) and `metadata`
    /// naming the action, repository, registry and caller.
    pub fn permission_denied(
        reason: &'static str,
        message: impl Into<String>,
        metadata: Vec<(&'static str, String)>,
    ) -> Self {
        Error::Facade {
            code: Code::PermissionDenied,
            reason,
            message: message.into(),
            retry_after: None,
            metadata,
        }
    }

    /// One request message of `length` bytes is over `method`'s limit:
    /// OUT_OF_RANGE (`MESSAGE_TOO_LARGE`, what tonic's own limit answers).
    pub fn message_too_large(method: &str, length: usize, limit: usize) -> Self {
        Error::Facade {
            code: Code::OutOfRange,
            reason: REASON_MESSAGE_TOO_LARGE,
            message: format!(
                "request message of {length} bytes is over {method}'s limit of {limit} bytes"
            ),
            retry_after: None,
            metadata: vec![
                ("method", method.to_owned()),
                ("limit_bytes", limit.to_string()),
            ],
        }
    }

    /// The budget of `total` request bytes in flight is spent:
    /// RESOURCE_EXHAUSTED (`REQUEST_BYTES_BUDGET_EXHAUSTED`) with a
    /// `RetryInfo` of `retry_after`.
    pub fn budget_exhausted(total: usize, retry_after: Duration) -> Self {
        Error::Facade {
            code: Code::ResourceExhausted,
            reason: REASON_BUDGET_EXHAUSTED,
            message: format!(
                "the facade is holding its budget of {total} request bytes in flight; \
                 retry with backoff"
            ),
            retry_after: Some(retry_after),
            metadata: Vec::new(),
        }
    }

    /// The canonical status with its `google.rpc` details.
    pub fn to_status(&self) -> Status {
        match self {
            Error::InvalidRequest(violations) => Status::with_error_details(
                Code::InvalidArgument,
                self.to_string(),
                ErrorDetails::with_bad_request(
                    violations
                        .iter()
                        .take(MAX_LISTED_VIOLATIONS)
                        .cloned()
                        .collect::<Vec<_>>(),
                ),
            ),
            Error::Malformed(message) => Status::new(Code::InvalidArgument, message.clone()),
            Error::Upstream(err) => {
                Status::with_error_details(err.code(), err.message(), err.details())
            }
            Error::Facade {
                code,
                reason,
                message,
                retry_after,
                metadata,
            } => {
                let metadata: HashMap<String, String> = metadata
                    .iter()
                    .map(|(key, value)| ((*key).to_owned(), value.clone()))
                    .collect();
                let mut details = ErrorDetails::with_error_info(*reason, FACADE_DOMAIN, metadata);
                if let Some(delay) = retry_after {
                    details.set_retry_info(Some(*delay));
                }
                Status::with_error_details(*code, message.clone(), details)
            }
            Error::Internal(message) => Status::new(Code::Internal, message.clone()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidRequest(violations) => {
                write!(f, "invalid request: ")?;
                for (i, v) in violations.iter().take(MAX_LISTED_VIOLATIONS).enumerate() {
                    if i > 0 {
                        write!(f, "; ")?;
                    }
                    write!(f, "{}: {}", v.field, v.description)?;
                }
                if violations.len() > MAX_LISTED_VIOLATIONS {
                    write!(f, "; and {} more", violations.len() - MAX_LISTED_VIOLATIONS)?;
                }
                Ok(())
            }
            Error::Upstream(err) => write!(f, "{}", err.message()),
            Error::Malformed(message)
            | Error::Facade { message, .. }
            | Error::Internal(message) => write!(f, "{message}"),
        }
    }
}

impl StdError for Error {}

impl From<UpstreamError> for Error {
    fn from(err: UpstreamError) -> Self {
        Error::Upstream(err)
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        err.to_status()
    }
}

#[cfg(test)]
mod tests;
