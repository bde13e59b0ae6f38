//! Upstream failures classified: the code and reason of every ECR error and
//! transport failure, throttling's back-off, and scrubbing.

use tonic_types::StatusExt;

use super::*;
use crate::error::Error;

fn service(code: &str) -> UpstreamError {
    UpstreamError {
        action: "DescribeImages",
        kind: UpstreamErrorKind::Service {
            code: code.to_owned(),
            message: Some("something happened".to_owned()),
        },
        request_id: Some("req-123".to_owned()),
    }
}

#[test]
fn every_ecr_error_maps_to_its_code() {
    let table = [
        ("EmptyUploadException", Code::FailedPrecondition),
        ("ImageAlreadyExistsException", Code::AlreadyExists),
        ("ImageDigestDoesNotMatchException", Code::InvalidArgument),
        ("ImageNotFoundException", Code::NotFound),
        ("ImageTagAlreadyExistsException", Code::AlreadyExists),
        ("InvalidLayerException", Code::InvalidArgument),
        ("InvalidLayerPartException", Code::OutOfRange),
        ("InvalidParameterException", Code::InvalidArgument),
        ("InvalidTagParameterException", Code::InvalidArgument),
        ("KmsException", Code::FailedPrecondition),
        ("LayerAlreadyExistsException", Code::AlreadyExists),
        ("LayerInaccessibleException", Code::FailedPrecondition),
        ("LayerPartTooSmallException", Code::FailedPrecondition),
        ("LayersNotFoundException", Code::NotFound),
        ("LimitExceededException", Code::ResourceExhausted),
        (
            "ReferencedImagesNotFoundException",
            Code::FailedPrecondition,
        ),
        ("RepositoryAlreadyExistsException", Code::AlreadyExists),
        ("RepositoryNotEmptyException", Code::FailedPrecondition),
        ("RepositoryNotFoundException", Code::NotFound),
        ("RepositoryPolicyNotFoundException", Code::NotFound),
        ("ServerException", Code::Internal),
        ("TooManyTagsException", Code::InvalidArgument),
        ("UnableToGetUpstreamImageException", Code::Unavailable),
        ("UnableToGetUpstreamLayerException", Code::Unavailable),
        ("UploadNotFoundException", Code::NotFound),
        ("AccessDeniedException", Code::PermissionDenied),
        ("ThrottlingException", Code::ResourceExhausted),
        ("ServiceUnavailable", Code::Unavailable),
        ("UnrecognizedClientException", Code::Internal),
        ("ExpiredTokenException", Code::Internal),
        ("InvalidSignatureException", Code::Internal),
        ("SomethingNewException", Code::Unknown),
    ];
    for (name, code) in table {
        let status = Error::from(service(name)).to_status();
        assert_eq!(status.code(), code, "{name}");
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, name);
        assert_eq!(info.domain, ECR_DOMAIN);
        assert_eq!(
            info.metadata.get("request_id").map(String::as_str),
            Some("req-123")
        );
        assert_eq!(
            info.metadata.get("action").map(String::as_str),
            Some("DescribeImages")
        );
    }
}

#[test]
fn throttling_carries_retry_info() {
    let status = Error::from(service("ThrottlingException")).to_status();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let retry = status.get_details_retry_info().expect("retry info");
    assert_eq!(retry.retry_delay, Some(THROTTLE_RETRY_DELAY));
    let not_throttled = Error::from(service("ServerException")).to_status();
    assert!(not_throttled.get_details_retry_info().is_none());
}

#[test]
fn transport_failures_map_to_retryable_or_deadline_codes() {
    let cases = [
        (
            UpstreamErrorKind::Timeout,
            Code::DeadlineExceeded,
            "UPSTREAM_TIMEOUT",
        ),
        (
            UpstreamErrorKind::DeadlineExceeded,
            Code::DeadlineExceeded,
            "DEADLINE_EXCEEDED",
        ),
        (
            UpstreamErrorKind::Unreachable,
            Code::Unavailable,
            "UPSTREAM_UNREACHABLE",
        ),
        (
            UpstreamErrorKind::BadResponse { http_status: 500 },
            Code::Unavailable,
            "UPSTREAM_BAD_RESPONSE",
        ),
        (
            UpstreamErrorKind::BadResponse { http_status: 404 },
            Code::Unknown,
            "UPSTREAM_BAD_RESPONSE",
        ),
        (
            UpstreamErrorKind::MissingCredentials,
            Code::Internal,
            "UPSTREAM_CREDENTIALS_MISSING",
        ),
    ];
    for (kind, code, reason) in cases {
        let err = UpstreamError {
            action: "CreateRepository",
            kind,
            request_id: None,
        };
        let status = Error::from(err).to_status();
        assert_eq!(status.code(), code);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, reason);
        assert_eq!(info.domain, FACADE_DOMAIN);
    }
}

#[test]
fn credential_errors_tell_the_operator_and_hide_upstream_text() {
    let err = UpstreamError {
        action: "CreateRepository",
        kind: UpstreamErrorKind::Service {
            code: "InvalidSignatureException".into(),
            message: Some("The Canonical String for this request should have been x-amz-security-token:FQoGZXIvYXdzEJr".into()),
        },
        request_id: None,
    };
    let status = Error::from(err).to_status();
    assert!(
        status.message().contains("operator"),
        "{}",
        status.message()
    );
    assert!(!status.message().contains("FQoGZXIvYXdzEJr"));
    let missing = Error::from(UpstreamError {
        action: "CreateRepository",
        kind: UpstreamErrorKind::MissingCredentials,
        request_id: None,
    })
    .to_status();
    assert!(missing.message().contains("credentials"));
}

#[test]
fn scrub_removes_keys_and_tokens_but_keeps_names() {
    let message = "key AKIAIOSFODNN7EXAMPLE token=QVdTOmV4YW1wbGUtcGFzc3dvcmQtMTIzNDU2Nzg5MA== \
                   repository 'my-team/some-really-long-service-name-here' digest sha256:0123456789abcdef0123456789abcdef";
    let scrubbed = scrub(message);
    assert!(!scrubbed.contains("AKIAIOSFODNN7EXAMPLE"), "{scrubbed}");
    assert!(
        !scrubbed.contains("QVdTOmV4YW1wbGUtcGFzc3dvcmQtMTIzNDU2Nzg5MA"),
        "{scrubbed}"
    );
    assert!(scrubbed.contains("my-team/some-really-long-service-name-here"));
    assert!(scrubbed.contains("sha256:0123456789abcdef0123456789abcdef"));
    assert_eq!(
        scrub("the repository 'x' does not exist"),
        "the repository 'x' does not exist"
    );
}

#[test]
fn scrub_finds_keys_next_to_punctuation() {
    for message in [
        "(AKIAIOSFODNN7EXAMPLE)",
        "key AKIAIOSFODNN7EXAMPLE.",
        "id:ASIAIOSFODNN7EXAMPLE;",
    ] {
        let scrubbed = scrub(message);
        assert!(!scrubbed.contains("IOSFODNN7EXAMPLE"), "{scrubbed}");
        assert!(scrubbed.contains("<redacted>"), "{scrubbed}");
    }
}
