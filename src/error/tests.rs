//! The statuses of the error module: every constructor's code, reason,
//! domain, metadata and `RetryInfo`, and that no status is built elsewhere.

use super::*;

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

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_status_is_built_outside_the_error_module() {
    // The one mapping stays one: a status built elsewhere would escape the
    // reasons, domain and details the tests above pin down.
    let builders = [
        "Status::with_error_details",
        "Status::new(",
        "Status::internal(",
        "Status::invalid_argument(",
        "Status::unauthenticated(",
        "Status::permission_denied(",
        "Status::resource_exhausted(",
        "Status::deadline_exceeded(",
        "Status::out_of_range(",
        "Status::unavailable(",
        "Status::failed_precondition(",
        "Status::not_found(",
        "Status::cancelled(",
        "Status::unknown(",
        "Status::data_loss(",
        "ErrorDetails::with_",
    ];
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        if relative == std::path::Path::new("error.rs") || relative.starts_with("error") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            if let Some(builder) = builders.iter().find(|b| line.contains(*b)) {
                found.push(format!("{}:{}: {builder}", relative.display(), number + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "statuses built outside src/error.rs:\n{}",
        found.join("\n")
    );
}
