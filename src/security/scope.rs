//! What a request asks to do: its action (RPC name) and the repositories it
//! touches, read from the decoded message.

use crate::pb;

/// The RPC names of `ecr.v1.EcrService`: the actions a policy grants.
pub const ACTIONS: [&str; 19] = [
    "BatchCheckLayerAvailability",
    "BatchDeleteImage",
    "BatchGetImage",
    "CompleteLayerUpload",
    "CreateRepository",
    "DeleteRepository",
    "DeleteRepositoryPolicy",
    "DescribeImages",
    "DescribeRepositories",
    "GetAuthorizationToken",
    "GetDownloadUrlForLayer",
    "GetRepositoryPolicy",
    "InitiateLayerUpload",
    "ListImages",
    "PullLayer",
    "PushLayer",
    "PutImage",
    "SetRepositoryPolicy",
    "UploadLayerPart",
];

/// The actions that change the registry, all refused by `--read-only`.
pub const MUTATING_ACTIONS: [&str; 11] = [
    "BatchDeleteImage",
    "CompleteLayerUpload",
    "CreateRepository",
    "DeleteRepository",
    "DeleteRepositoryPolicy",
    // The token is a `docker login` password with the facade's own IAM
    // rights (push and delete included): handing it out is never read-only.
    "GetAuthorizationToken",
    "InitiateLayerUpload",
    "PushLayer",
    "PutImage",
    "SetRepositoryPolicy",
    "UploadLayerPart",
];

/// Whether `action` changes the registry.
pub fn is_mutating(action: &str) -> bool {
    MUTATING_ACTIONS.contains(&action)
}

/// The repositories one request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The whole registry (GetAuthorizationToken): the token it returns works
    /// on every repository the facade's role can reach, so the caller needs
    /// the action on the pattern `*`.
    Registry,
    /// One repository.
    Repository(&'a str),
    /// Each of these repositories; an empty list means every repository
    /// (DescribeRepositories without names), which needs the pattern `*`.
    Repositories(&'a [String]),
}

/// A request message of `ecr.v1.EcrService`: its action and its scope.
pub trait RepositoryScoped {
    /// The RPC name, e.g. `CreateRepository`.
    const ACTION: &'static str;
    /// The repositories the request touches.
    fn scope(&self) -> Scope<'_>;
}

/// Implements [`RepositoryScoped`] for requests with one `repository_name`.
macro_rules! one_repository {
    ($($request:ident => $action:literal),+ $(,)?) => {$(
        impl RepositoryScoped for pb::$request {
            const ACTION: &'static str = $action;
            fn scope(&self) -> Scope<'_> {
                Scope::Repository(&self.repository_name)
            }
        }
    )+};
}

one_repository! {
    BatchCheckLayerAvailabilityRequest => "BatchCheckLayerAvailability",
    BatchDeleteImageRequest => "BatchDeleteImage",
    BatchGetImageRequest => "BatchGetImage",
    CompleteLayerUploadRequest => "CompleteLayerUpload",
    CreateRepositoryRequest => "CreateRepository",
    DeleteRepositoryRequest => "DeleteRepository",
    DeleteRepositoryPolicyRequest => "DeleteRepositoryPolicy",
    DescribeImagesRequest => "DescribeImages",
    GetDownloadUrlForLayerRequest => "GetDownloadUrlForLayer",
    GetRepositoryPolicyRequest => "GetRepositoryPolicy",
    InitiateLayerUploadRequest => "InitiateLayerUpload",
    ListImagesRequest => "ListImages",
    PullLayerRequest => "PullLayer",
    // PushLayer is authorized on its header, the stream's first message.
    PushLayerHeader => "PushLayer",
    PutImageRequest => "PutImage",
    SetRepositoryPolicyRequest => "SetRepositoryPolicy",
    UploadLayerPartRequest => "UploadLayerPart",
}

impl RepositoryScoped for pb::DescribeRepositoriesRequest {
    const ACTION: &'static str = "DescribeRepositories";
    fn scope(&self) -> Scope<'_> {
        Scope::Repositories(&self.repository_names)
    }
}

impl RepositoryScoped for pb::GetAuthorizationTokenRequest {
    const ACTION: &'static str = "GetAuthorizationToken";
    fn scope(&self) -> Scope<'_> {
        Scope::Registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_names_a_known_action_once() {
        let declared = [
            pb::BatchCheckLayerAvailabilityRequest::ACTION,
            pb::BatchDeleteImageRequest::ACTION,
            pb::BatchGetImageRequest::ACTION,
            pb::CompleteLayerUploadRequest::ACTION,
            pb::CreateRepositoryRequest::ACTION,
            pb::DeleteRepositoryRequest::ACTION,
            pb::DeleteRepositoryPolicyRequest::ACTION,
            pb::DescribeImagesRequest::ACTION,
            pb::DescribeRepositoriesRequest::ACTION,
            pb::GetAuthorizationTokenRequest::ACTION,
            pb::GetDownloadUrlForLayerRequest::ACTION,
            pb::GetRepositoryPolicyRequest::ACTION,
            pb::InitiateLayerUploadRequest::ACTION,
            pb::ListImagesRequest::ACTION,
            pb::PullLayerRequest::ACTION,
            pb::PushLayerHeader::ACTION,
            pb::PutImageRequest::ACTION,
            pb::SetRepositoryPolicyRequest::ACTION,
            pb::UploadLayerPartRequest::ACTION,
        ];
        assert_eq!(declared, ACTIONS);
        assert!(MUTATING_ACTIONS.iter().all(|a| ACTIONS.contains(a)));
    }

    #[test]
    fn scopes_come_from_the_message() {
        let create = pb::CreateRepositoryRequest {
            repository_name: "team-a/app".into(),
            ..Default::default()
        };
        assert_eq!(create.scope(), Scope::Repository("team-a/app"));
        let names = vec!["a".to_owned(), "b".to_owned()];
        let describe = pb::DescribeRepositoriesRequest {
            repository_names: names.clone(),
            ..Default::default()
        };
        assert_eq!(describe.scope(), Scope::Repositories(&names));
        assert_eq!(
            pb::GetAuthorizationTokenRequest::default().scope(),
            Scope::Registry
        );
        assert!(is_mutating("CreateRepository"));
        assert!(!is_mutating("DescribeImages"));
    }
}
