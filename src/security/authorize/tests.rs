use std::collections::HashMap;

use tonic::Code;
use tonic_types::StatusExt;

use super::*;
use crate::error::{FACADE_DOMAIN, REASON_UNAUTHENTICATED};
use crate::pb;
use crate::security::tests::pki::TempDir;

const POLICY: &str = r#"
    [[caller]]
    certificate = "spiffe://cluster.local/ns/ci/sa/builder"
    actions = ["CreateRepository", "DescribeRepositories", "DescribeImages", "GetAuthorizationToken"]
    repositories = ["team-a/*"]

    [[caller]]
    certificate = "admin.example"
    actions = ["*"]
    repositories = ["*"]
"#;

fn authorizer(read_only: bool) -> Authorizer {
    let dir = TempDir::new("authorize");
    let path = dir.write("policy.toml", POLICY);
    // The store keeps the parsed policy: the file may go.
    Authorizer::new(Arc::new(PolicyStore::load(path).unwrap()), read_only)
}

fn builder() -> Identity {
    Identity::Certificate("spiffe://cluster.local/ns/ci/sa/builder".into())
}

fn error_info(status: &Status) -> (String, HashMap<String, String>) {
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.domain, FACADE_DOMAIN);
    (info.reason, info.metadata)
}

#[test]
fn a_granted_call_passes_and_another_repository_is_denied() {
    let authz = authorizer(false);
    let id = builder();
    let ok = authz.authorize(Some(&id), "CreateRepository", Scope::Repository("team-a/x"));
    assert!(ok.is_ok());

    let status = authz
        .authorize(Some(&id), "CreateRepository", Scope::Repository("team-b/x"))
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "caller spiffe://cluster.local/ns/ci/sa/builder may not call CreateRepository \
         on repository \"team-b/x\""
    );
    let (reason, metadata) = error_info(&status);
    assert_eq!(reason, REASON_NOT_ALLOWED);
    assert_eq!(metadata["action"], "CreateRepository");
    assert_eq!(metadata["repository"], "team-b/x");
    assert_eq!(
        metadata["caller"],
        "spiffe://cluster.local/ns/ci/sa/builder"
    );
}

#[test]
fn every_named_repository_must_be_allowed() {
    let authz = authorizer(false);
    let id = builder();
    let names = ["team-a/x".to_owned(), "team-a/y".to_owned()];
    assert!(
        authz
            .authorize(
                Some(&id),
                "DescribeRepositories",
                Scope::Repositories(&names)
            )
            .is_ok()
    );

    let names = ["team-a/x".to_owned(), "team-c/y".to_owned()];
    let status = authz
        .authorize(
            Some(&id),
            "DescribeRepositories",
            Scope::Repositories(&names),
        )
        .unwrap_err();
    assert!(
        status.message().ends_with("on repository \"team-c/y\""),
        "{}",
        status.message()
    );
    assert_eq!(error_info(&status).1["repository"], "team-c/y");

    // No names means every repository: `team-a/*` is not enough.
    let status = authz
        .authorize(Some(&id), "DescribeRepositories", Scope::Repositories(&[]))
        .unwrap_err();
    assert!(status.message().ends_with("on every repository"));
    assert_eq!(error_info(&status).1["repository"], "*");
    let admin = Identity::Certificate("admin.example".into());
    assert!(
        authz
            .authorize(
                Some(&admin),
                "DescribeRepositories",
                Scope::Repositories(&[])
            )
            .is_ok()
    );
}

#[test]
fn registry_wide_tokens_need_the_action_on_every_repository() {
    let authz = authorizer(false);
    let status = authz
        .authorize(Some(&builder()), "GetAuthorizationToken", Scope::Registry)
        .unwrap_err();
    assert_eq!(
        status.message(),
        "caller spiffe://cluster.local/ns/ci/sa/builder may not call GetAuthorizationToken (a token valid on every repository)"
    );
    assert!(!error_info(&status).1.contains_key("repository"));
    let admin = Identity::Certificate("admin.example".into());
    assert!(
        authz
            .authorize(Some(&admin), "GetAuthorizationToken", Scope::Registry)
            .is_ok()
    );
}

#[test]
fn unknown_callers_and_missing_identities() {
    let authz = authorizer(false);
    let stranger = Identity::Token("stranger".into());
    let status = authz
        .authorize(
            Some(&stranger),
            "DescribeImages",
            Scope::Repository("team-a/x"),
        )
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status
            .message()
            .starts_with("caller token:stranger may not call DescribeImages")
    );

    let status = authz
        .authorize(None, "DescribeImages", Scope::Repository("team-a/x"))
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(error_info(&status).0, REASON_UNAUTHENTICATED);
}

#[test]
fn read_only_refuses_mutations_even_for_admins_and_without_a_policy() {
    let admin = Identity::Certificate("admin.example".into());
    for authz in [
        authorizer(true),
        Authorizer::new(Arc::new(PolicyStore::open()), true),
    ] {
        let mutating = crate::model::Action::ALL.iter().filter(|a| a.is_mutating());
        for action in mutating.map(|a| a.name()) {
            let status = authz
                .authorize(Some(&admin), action, Scope::Repository("team-a/x"))
                .unwrap_err();
            assert_eq!(status.code(), Code::PermissionDenied);
            assert_eq!(
                status.message(),
                format!("the facade is read-only: {action} on repository \"team-a/x\" is refused")
            );
            let (reason, metadata) = error_info(&status);
            assert_eq!(reason, REASON_READ_ONLY);
            assert_eq!(metadata["action"], action);
            assert_eq!(metadata["repository"], "team-a/x");
        }
        assert!(
            authz
                .authorize(Some(&admin), "DescribeImages", Scope::Repository("a"))
                .is_ok()
        );
    }
}

#[test]
fn without_a_policy_everyone_may_do_everything() {
    let authz = Authorizer::allow_all();
    assert!(
        authz
            .authorize(None, "DeleteRepository", Scope::Repository("x"))
            .is_ok()
    );
    assert!(
        authz
            .authorize(None, "DescribeRepositories", Scope::Repositories(&[]))
            .is_ok()
    );
    assert_eq!(
        authz.startup_message(),
        "no authorization policy configured: every caller may call every action; read-write"
    );
    let message = authorizer(true).startup_message();
    assert!(message.starts_with("authorization policy "), "{message}");
    assert!(
        message
            .ends_with("policy.toml in force (2 callers); read-only: mutating actions are refused")
    );
}

#[test]
fn requests_are_authorized_from_their_extensions_and_message() {
    let authz = authorizer(false);
    let mut request = tonic::Request::new(pb::CreateRepositoryRequest {
        repository_name: "team-a/new".into(),
        ..Default::default()
    });
    assert_eq!(
        authz.authorize_request(&request).unwrap_err().code(),
        Code::Unauthenticated
    );
    request.extensions_mut().insert(builder());
    assert!(authz.authorize_request(&request).is_ok());
    request.get_mut().repository_name = "team-b/new".into();
    assert_eq!(
        authz.authorize_request(&request).unwrap_err().code(),
        Code::PermissionDenied
    );
}

#[test]
fn a_token_grant_on_some_repositories_does_not_hand_out_a_registry_token() {
    // The builder holds GetAuthorizationToken on team-a/* only: the token
    // would work on every repository, so it is refused.
    let status = authorizer(false)
        .authorize(Some(&builder()), "GetAuthorizationToken", Scope::Registry)
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    // Read-only refuses it even to a caller allowed everything.
    let admin = Identity::Certificate("admin.example".into());
    let status = authorizer(true)
        .authorize(Some(&admin), "GetAuthorizationToken", Scope::Registry)
        .unwrap_err();
    assert_eq!(error_info(&status).0, REASON_READ_ONLY);
}

const CROSS_ACCOUNT: &str = r#"
    own_registry_id = "123456789012"

    [[caller]]
    certificate = "admin.example"
    actions = ["*"]
    repositories = ["*"]

    [[caller]]
    certificate = "mirror.example"
    actions = ["*"]
    repositories = ["mirror/*"]
    registries = ["own", "999999999999"]
"#;

fn cross_account() -> Authorizer {
    let dir = TempDir::new("authorize-registries");
    let path = dir.write("policy.toml", CROSS_ACCOUNT);
    Authorizer::new(Arc::new(PolicyStore::load(path).unwrap()), false)
}

#[test]
fn a_request_naming_another_registry_needs_a_grant_there() {
    let authz = cross_account();
    let admin = Identity::Certificate("admin.example".into());
    let mut request = tonic::Request::new(pb::DeleteRepositoryRequest {
        registry_id: Some("999999999999".into()),
        repository_name: "team-a/app".into(),
        ..Default::default()
    });
    request.extensions_mut().insert(admin);
    let status = authz.authorize_request(&request).unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "caller admin.example may not call DeleteRepository on repository \"team-a/app\" \
         in registry \"999999999999\""
    );
    let (reason, metadata) = error_info(&status);
    assert_eq!(reason, REASON_NOT_ALLOWED);
    assert_eq!(metadata["registry"], "999999999999");
    assert_eq!(metadata["repository"], "team-a/app");
    assert_eq!(metadata["action"], "DeleteRepository");

    // The own account, named or not, is covered by the default.
    for own in [None, Some("123456789012".to_owned())] {
        request.get_mut().registry_id = own;
        assert!(authz.authorize_request(&request).is_ok());
    }
}

#[test]
fn a_grant_listing_a_registry_covers_its_repositories_there() {
    let authz = cross_account();
    let mirror = Identity::Certificate("mirror.example".into());
    let mut request = tonic::Request::new(pb::DescribeRepositoriesRequest {
        registry_id: Some("999999999999".into()),
        repository_names: vec!["mirror/a".into(), "mirror/b".into()],
        ..Default::default()
    });
    request.extensions_mut().insert(mirror);
    assert!(authz.authorize_request(&request).is_ok());
    request.get_mut().registry_id = Some("111111111111".into());
    let status = authz.authorize_request(&request).unwrap_err();
    assert_eq!(error_info(&status).1["registry"], "111111111111");
    // The repository patterns still apply in the granted registry.
    request.get_mut().registry_id = Some("999999999999".into());
    request.get_mut().repository_names.push("other/c".into());
    let status = authz.authorize_request(&request).unwrap_err();
    assert_eq!(error_info(&status).1["repository"], "other/c");
}

#[test]
fn every_registry_of_a_token_request_is_checked() {
    let authz = cross_account();
    let admin = Identity::Certificate("admin.example".into());
    let mut request = tonic::Request::new(pb::GetAuthorizationTokenRequest {
        registry_ids: vec!["123456789012".into()],
    });
    request.extensions_mut().insert(admin);
    assert!(authz.authorize_request(&request).is_ok());
    request.get_mut().registry_ids.push("999999999999".into());
    let status = authz.authorize_request(&request).unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(error_info(&status).1["registry"], "999999999999");
    assert!(!error_info(&status).1.contains_key("repository"));
}

#[test]
fn without_a_policy_any_registry_may_be_named() {
    let request = tonic::Request::new(pb::CreateRepositoryRequest {
        registry_id: Some("999999999999".into()),
        repository_name: "x".into(),
        ..Default::default()
    });
    assert!(Authorizer::allow_all().authorize_request(&request).is_ok());
}
