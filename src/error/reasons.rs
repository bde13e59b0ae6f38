//! Every `ErrorInfo.domain` and `ErrorInfo.reason` the facade answers with,
//! and the back-offs it suggests in `RetryInfo`: the strings callers match
//! on, in one place so that none is spelled twice.

use std::time::Duration;

/// `ErrorInfo.domain` of errors raised by ECR.
pub const ECR_DOMAIN: &str = "ecr.amazonaws.com";
/// `ErrorInfo.domain` of errors raised by the facade itself.
pub const FACADE_DOMAIN: &str = "ecr-facade";

/// Back-off suggested in `RetryInfo` when ECR throttles.
pub const THROTTLE_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Back-off suggested in `RetryInfo` to a call shed at a concurrency limit.
pub const SHED_RETRY_DELAY: Duration = Duration::from_millis(250);

// Limits of the facade's own.

/// `ErrorInfo.reason` when the facade sheds work at one of its own limits.
pub const REASON_OVERLOADED: &str = "OVERLOADED";
/// `ErrorInfo.reason` of a request message over its method's limit.
pub const REASON_MESSAGE_TOO_LARGE: &str = "MESSAGE_TOO_LARGE";
/// `ErrorInfo.reason` of a call refused because the budget of request bytes
/// in flight is spent.
pub const REASON_BUDGET_EXHAUSTED: &str = "REQUEST_BYTES_BUDGET_EXHAUSTED";
/// `ErrorInfo.reason` when a call's deadline passed: in the RPC envelope, in
/// a transfer, or while waiting for ECR.
pub const REASON_DEADLINE_EXCEEDED: &str = "DEADLINE_EXCEEDED";

// Authentication and authorization.

/// `ErrorInfo.reason` when a policy is in force and the caller is unknown.
pub const REASON_UNAUTHENTICATED: &str = "UNAUTHENTICATED";
/// `ErrorInfo.reason` when the policy does not grant the call.
pub const REASON_NOT_ALLOWED: &str = "ACTION_NOT_ALLOWED";
/// `ErrorInfo.reason` when `--read-only` refuses a mutating action.
pub const REASON_READ_ONLY: &str = "READ_ONLY";

// Layer transfers.

/// `ErrorInfo.reason` when a pulled layer's bytes do not hash to its digest
/// or do not add up to its size.
pub const REASON_LAYER_CORRUPT: &str = "LAYER_CORRUPT";
/// `ErrorInfo.reason` when fetching a layer from its download URL failed.
pub const REASON_DOWNLOAD_FAILED: &str = "DOWNLOAD_FAILED";
/// `ErrorInfo.reason` when a push names an upload this replica cannot resume.
pub const REASON_UPLOAD_NOT_RESUMABLE: &str = "UPLOAD_NOT_RESUMABLE";
/// `ErrorInfo.reason` when a push names an upload another stream is pushing.
pub const REASON_UPLOAD_IN_USE: &str = "UPLOAD_IN_USE";
/// `ErrorInfo.reason` when a transfer's caller broke its stream.
pub const REASON_CALLER_CANCELLED: &str = "CALLER_CANCELLED";
/// `ErrorInfo.reason` when a transfer's caller sent nothing for too long.
pub const REASON_CALLER_IDLE: &str = "CALLER_IDLE";

// Upstream failures that are not an ECR error (those carry ECR's own error
// name, in the ECR domain).

/// `ErrorInfo.reason` when ECR answered with something that is not an ECR
/// response.
pub const REASON_UPSTREAM_BAD_RESPONSE: &str = "UPSTREAM_BAD_RESPONSE";
/// `ErrorInfo.reason` when the ECR call ran out of the SDK's time.
pub const REASON_UPSTREAM_TIMEOUT: &str = "UPSTREAM_TIMEOUT";
/// `ErrorInfo.reason` when ECR could not be reached.
pub const REASON_UPSTREAM_UNREACHABLE: &str = "UPSTREAM_UNREACHABLE";
/// `ErrorInfo.reason` when the facade has no AWS credentials to sign with.
pub const REASON_UPSTREAM_CREDENTIALS_MISSING: &str = "UPSTREAM_CREDENTIALS_MISSING";
/// `ErrorInfo.reason` when the ECR request could not be built or sent.
pub const REASON_UPSTREAM_REQUEST_FAILED: &str = "UPSTREAM_REQUEST_FAILED";
