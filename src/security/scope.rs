//! What a request asks to do: its action (RPC name), the registries it
//! addresses and the repositories it touches, read from the decoded message.

use crate::model::Action;
use crate::pb;

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

/// The registries (AWS account ids) one request addresses. `None` and an
/// empty list both mean the facade's own registry: ECR's default when a
/// request names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registries<'a> {
    /// A request's optional `registry_id`.
    One(Option<&'a str>),
    /// GetAuthorizationToken's `registry_ids`.
    Each(&'a [String]),
}

impl<'a> Registries<'a> {
    /// Each registry id named; `None` for the facade's own registry.
    pub fn iter(self) -> impl Iterator<Item = Option<&'a str>> {
        let (one, each): (Option<Option<&'a str>>, &'a [String]) = match self {
            Registries::One(id) => (Some(id), &[]),
            Registries::Each([]) => (Some(None), &[]),
            Registries::Each(ids) => (None, ids),
        };
        one.into_iter()
            .chain(each.iter().map(|id| Some(id.as_str())))
    }
}

/// A request message of `ecr.v1.EcrService`: its action and its scope.
///
/// `registries` has no default on purpose: a request type that forgot it
/// would otherwise pass as addressing the facade's own registry whatever
/// `registry_id` it carries. For a message with an optional `registry_id`
/// field it is one line in the impl: `registry_id_field!();`.
pub trait RepositoryScoped {
    /// The RPC, e.g. [`Action::CreateRepository`].
    const ACTION: Action;
    /// The repositories the request touches.
    fn scope(&self) -> Scope<'_>;
    /// The registries the request addresses.
    fn registries(&self) -> Registries<'_>;
}

/// The [`RepositoryScoped::registries`] of a message whose registry is its
/// `optional string registry_id` field.
macro_rules! registry_id_field {
    () => {
        fn registries(&self) -> Registries<'_> {
            Registries::One(self.registry_id.as_deref())
        }
    };
}

/// Implements [`RepositoryScoped`] for requests with one `repository_name`
/// and an optional `registry_id`.
macro_rules! one_repository {
    ($($request:ident => $action:ident),+ $(,)?) => {$(
        impl RepositoryScoped for pb::$request {
            const ACTION: Action = Action::$action;
            fn scope(&self) -> Scope<'_> {
                Scope::Repository(&self.repository_name)
            }
            registry_id_field!();
        }
    )+};
}

one_repository! {
    BatchCheckLayerAvailabilityRequest => BatchCheckLayerAvailability,
    BatchDeleteImageRequest => BatchDeleteImage,
    BatchGetImageRequest => BatchGetImage,
    CompleteLayerUploadRequest => CompleteLayerUpload,
    CreateRepositoryRequest => CreateRepository,
    DeleteRepositoryRequest => DeleteRepository,
    DeleteRepositoryPolicyRequest => DeleteRepositoryPolicy,
    DescribeImagesRequest => DescribeImages,
    GetDownloadUrlForLayerRequest => GetDownloadUrlForLayer,
    GetRepositoryPolicyRequest => GetRepositoryPolicy,
    InitiateLayerUploadRequest => InitiateLayerUpload,
    ListImagesRequest => ListImages,
    PullLayerRequest => PullLayer,
    // PushLayer is authorized on its header, the stream's first message.
    PushLayerHeader => PushLayer,
    PutImageRequest => PutImage,
    SetRepositoryPolicyRequest => SetRepositoryPolicy,
    UploadLayerPartRequest => UploadLayerPart,
}

impl RepositoryScoped for pb::DescribeRepositoriesRequest {
    const ACTION: Action = Action::DescribeRepositories;
    fn scope(&self) -> Scope<'_> {
        Scope::Repositories(&self.repository_names)
    }
    registry_id_field!();
}

impl RepositoryScoped for pb::GetAuthorizationTokenRequest {
    const ACTION: Action = Action::GetAuthorizationToken;
    fn scope(&self) -> Scope<'_> {
        Scope::Registry
    }
    fn registries(&self) -> Registries<'_> {
        Registries::Each(&self.registry_ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_the_action_of_one_request() {
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
        assert_eq!(declared, Action::ALL);
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
    }

    #[test]
    fn registries_come_from_the_message_and_none_means_the_own_one() {
        let own: Vec<Option<&str>> = vec![None];
        let create = pb::CreateRepositoryRequest {
            registry_id: Some("999999999999".into()),
            ..Default::default()
        };
        assert_eq!(
            create.registries().iter().collect::<Vec<_>>(),
            [Some("999999999999")]
        );
        let describe = pb::DescribeRepositoriesRequest::default();
        assert_eq!(describe.registries().iter().collect::<Vec<_>>(), own);
        let token = pb::GetAuthorizationTokenRequest::default();
        assert_eq!(token.registries().iter().collect::<Vec<_>>(), own);
        let token = pb::GetAuthorizationTokenRequest {
            registry_ids: vec!["111111111111".into(), "222222222222".into()],
        };
        assert_eq!(
            token.registries().iter().collect::<Vec<_>>(),
            [Some("111111111111"), Some("222222222222")]
        );
    }
}
