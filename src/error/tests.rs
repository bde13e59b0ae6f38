use super::*;

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
fn invalid_request_lists_every_violation() {
    let err = Error::InvalidRequest(vec![
        FieldViolation::new("repository_name", "is required"),
        FieldViolation::new(
            "image_ids[3].image_tag",
            "must have length less than or equal to 300",
        ),
    ]);
    let status = err.to_status();
    assert_eq!(status.code(), Code::InvalidArgument);
    let bad = status.get_details_bad_request().unwrap();
    let fields: Vec<_> = bad
        .field_violations
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    assert_eq!(fields, ["repository_name", "image_ids[3].image_tag"]);
    assert!(status.message().contains("image_ids[3].image_tag"));
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

#[test]
fn a_long_list_of_violations_is_capped() {
    let violations = (0..100)
        .map(|i| FieldViolation::new(format!("layer_digests[{i}]"), "must match pattern x"))
        .collect();
    let status = Error::InvalidRequest(violations).to_status();
    let bad = status.get_details_bad_request().unwrap();
    assert_eq!(bad.field_violations.len(), MAX_LISTED_VIOLATIONS);
    assert!(
        status.message().ends_with("and 80 more"),
        "{}",
        status.message()
    );
}

/// The `ErrorInfo` of a status of the facade's own: its reason and metadata,
/// after checking the domain.
fn facade_info(status: &Status) -> (String, HashMap<String, String>) {
    let info = status.get_details_error_info().expect("error info");
    assert_eq!(info.domain, FACADE_DOMAIN);
    (info.reason, info.metadata)
}

#[test]
fn permission_denied_carries_its_reason_and_metadata() {
    for reason in [REASON_NOT_ALLOWED, REASON_READ_ONLY] {
        let status = Error::permission_denied(
            reason,
            "caller ci may not call PutImage on repository \"app\"",
            vec![
                ("action", "PutImage".to_owned()),
                ("repository", "app".to_owned()),
                ("caller", "ci".to_owned()),
            ],
        )
        .to_status();
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "caller ci may not call PutImage on repository \"app\""
        );
        let (got, metadata) = facade_info(&status);
        assert_eq!(got, reason);
        let expected = HashMap::from([
            ("action".to_owned(), "PutImage".to_owned()),
            ("repository".to_owned(), "app".to_owned()),
            ("caller".to_owned(), "ci".to_owned()),
        ]);
        assert_eq!(metadata, expected);
        assert!(status.get_details_retry_info().is_none());
    }
}

#[test]
fn unauthenticated_says_why() {
    let status = Error::unauthenticated("no credentials").to_status();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "no credentials");
    let (reason, metadata) = facade_info(&status);
    assert_eq!(reason, REASON_UNAUTHENTICATED);
    assert!(metadata.is_empty());
    assert!(status.get_details_retry_info().is_none());
}

#[test]
fn deadline_exceeded_is_the_facades_own() {
    let status =
        Error::deadline_exceeded("the call did not finish within its deadline").to_status();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(
        status.message(),
        "the call did not finish within its deadline"
    );
    let (reason, _) = facade_info(&status);
    assert_eq!(reason, REASON_DEADLINE_EXCEEDED);
    assert!(status.get_details_retry_info().is_none());
}

#[test]
fn overloaded_suggests_a_back_off() {
    let delay = Duration::from_millis(250);
    let status = Error::overloaded("at the limit; retry with backoff", delay).to_status();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let (reason, _) = facade_info(&status);
    assert_eq!(reason, REASON_OVERLOADED);
    let retry = status.get_details_retry_info().expect("retry info");
    assert_eq!(retry.retry_delay, Some(delay));
}

#[test]
fn message_too_large_names_the_method_and_its_limit() {
    let status = Error::message_too_large("CreateRepository", 300_000, 262_144).to_status();
    assert_eq!(status.code(), Code::OutOfRange);
    assert_eq!(
        status.message(),
        "request message of 300000 bytes is over CreateRepository's limit of 262144 bytes"
    );
    let (reason, metadata) = facade_info(&status);
    assert_eq!(reason, REASON_MESSAGE_TOO_LARGE);
    assert_eq!(
        metadata,
        HashMap::from([
            ("method".to_owned(), "CreateRepository".to_owned()),
            ("limit_bytes".to_owned(), "262144".to_owned()),
        ])
    );
    assert!(status.get_details_retry_info().is_none());
}

#[test]
fn budget_exhausted_names_the_budget_and_suggests_a_back_off() {
    let delay = Duration::from_millis(250);
    let status = Error::budget_exhausted(1024, delay).to_status();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.message(),
        "the facade is holding its budget of 1024 request bytes in flight; retry with backoff"
    );
    let (reason, metadata) = facade_info(&status);
    assert_eq!(reason, REASON_BUDGET_EXHAUSTED);
    assert!(metadata.is_empty());
    let retry = status.get_details_retry_info().expect("retry info");
    assert_eq!(retry.retry_delay, Some(delay));
}

#[test]
fn malformed_and_internal_carry_no_details() {
    // Neither has a field to name or a reason a caller could act on; the
    // statuses are what tonic's own `invalid_argument`/`internal` answer.
    let cases = [
        (
            Error::malformed("malformed request: the body ended inside a message"),
            Code::InvalidArgument,
            "malformed request: the body ended inside a message",
        ),
        (
            Error::internal("the facade failed internally; the error has been logged"),
            Code::Internal,
            "the facade failed internally; the error has been logged",
        ),
    ];
    for (err, code, message) in cases {
        assert_eq!(err.to_string(), message);
        let status = err.to_status();
        assert_eq!(status.code(), code);
        assert_eq!(status.message(), message);
        assert!(status.details().is_empty(), "{status:?}");
    }
}
